"""Other instrumentations' attribute names, mapped onto route-observation fields.

Where names live: :mod:`otel_llm.semconv` holds every name the OpenTelemetry
conventions define (current and deprecated) plus our own ``otel_llm.*`` names. This
module holds the names that *other projects* defined and that we only ever read:
OpenLLMetry (Traceloop), OpenInference (Arize) and OpenLIT. They are not ours, so they
are not in ``semconv``; each group says where the names come from.

Each field has an ordered tuple of attribute names: the first one a span carries with a
usable value wins. Current convention names come first, then older convention names,
then other projects' names.

Sources, read from each project's own semantic-convention module:

- OpenTelemetry GenAI conventions and ``opentelemetry-instrumentation-openai-v2``
  (``gen_ai.system`` before ``gen_ai.provider.name``; ``gen_ai.usage.prompt_tokens``
  and ``completion_tokens`` before ``input_tokens``/``output_tokens``).
- OpenLLMetry ``opentelemetry-semantic-conventions-ai``: releases before 0.5 wrote
  ``llm.request.type``, ``llm.is_streaming``, ``llm.usage.total_tokens``,
  ``gen_ai.usage.cache_read_input_tokens``, ``gen_ai.usage.reasoning_tokens``,
  ``llm.request.functions.N.*`` and ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*``;
  0.5 moved to ``gen_ai.operation.name``, ``gen_ai.is_streaming``,
  ``gen_ai.usage.total_tokens`` and the dotted cache names of the conventions.
- OpenInference ``openinference-semantic-conventions``: ``openinference.span.kind``
  (``LLM``, ``EMBEDDING``, ...), ``llm.model_name``, ``llm.provider``, ``llm.system``,
  ``llm.token_count.*``, ``llm.invocation_parameters`` (JSON), ``llm.cost.total``,
  ``llm.tools.N.*``, ``llm.input_messages.*``/``llm.output_messages.*``,
  ``input.value``/``output.value``.
- OpenLIT ``openlit.semcov``: ``gen_ai.request.is_stream``,
  ``gen_ai.server.time_to_first_token`` (seconds), ``gen_ai.usage.cost``,
  ``gen_ai.usage.total_tokens``, ``gen_ai.request.user``, and in older releases
  ``gen_ai.type`` for the operation and ``gen_ai.content.*`` for content.
"""

from __future__ import annotations

from typing import Final, Mapping

from otel_llm import semconv

# --- OpenLLMetry (Traceloop) ---------------------------------------------------------
TL_LLM_REQUEST_TYPE: Final = "llm.request.type"
TL_LLM_IS_STREAMING: Final = "llm.is_streaming"
TL_GEN_AI_IS_STREAMING: Final = "gen_ai.is_streaming"
TL_LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
TL_LLM_USAGE_PROMPT_TOKENS: Final = "llm.usage.prompt_tokens"
TL_LLM_USAGE_COMPLETION_TOKENS: Final = "llm.usage.completion_tokens"
TL_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
TL_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation_input_tokens"
TL_GEN_AI_USAGE_REASONING_TOKENS: Final = "gen_ai.usage.reasoning_tokens"
TL_LLM_RESPONSE_FINISH_REASON: Final = "llm.response.finish_reason"
TL_LLM_RESPONSE_STOP_REASON: Final = "llm.response.stop_reason"
TL_GEN_AI_RESPONSE_FINISH_REASON: Final = "gen_ai.response.finish_reason"
TL_GEN_AI_RESPONSE_STOP_REASON: Final = "gen_ai.response.stop_reason"
TL_GEN_AI_COMPLETION_0_FINISH_REASON: Final = "gen_ai.completion.0.finish_reason"
TL_LLM_USER: Final = "llm.user"
TL_GEN_AI_USER: Final = "gen_ai.user"
TL_GEN_AI_OPENAI_API_BASE: Final = "gen_ai.openai.api_base"
TL_TRACELOOP_ENTITY_INPUT: Final = "traceloop.entity.input"
TL_TRACELOOP_ENTITY_OUTPUT: Final = "traceloop.entity.output"
#: ``traceloop.span.kind`` = ``workflow``/``task``/``agent``/``tool``; an agent span's name
#: is in ``traceloop.entity.name``.
TL_TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
TL_KIND_AGENT: Final = "agent"
TL_TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"
#: ``llm.request.functions.{i}.name`` — one index per tool offered (releases before 0.5).
TL_REQUEST_FUNCTIONS_PREFIX: Final = "llm.request.functions."
#: ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` — indexed message content.
TL_PROMPT_PREFIX: Final = "gen_ai.prompt"
TL_COMPLETION_PREFIX: Final = "gen_ai.completion"
#: ``gen_ai.completion.{i}.tool_calls.{j}.*`` — one (i, j) per tool call emitted.
TL_TOOL_CALLS_INFIX: Final = ".tool_calls."

# --- OpenInference (Arize) -------------------------------------------------------------
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_KIND_LLM: Final = "LLM"
OI_KIND_EMBEDDING: Final = "EMBEDDING"
OI_KIND_AGENT: Final = "AGENT"
OI_LLM_MODEL_NAME: Final = "llm.model_name"
OI_LLM_REQUEST_MODEL_NAME: Final = "llm.request.model_name"
OI_LLM_RESPONSE_MODEL_NAME: Final = "llm.response.model_name"
OI_EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
OI_LLM_PROVIDER: Final = "llm.provider"
OI_LLM_SYSTEM: Final = "llm.system"
OI_LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
OI_EMBEDDING_INVOCATION_PARAMETERS: Final = "embedding.invocation_parameters"
OI_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
OI_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
OI_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
OI_TOKEN_COUNT_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_TOKEN_COUNT_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
OI_TOKEN_COUNT_REASONING: Final = "llm.token_count.completion_details.reasoning"
OI_LLM_COST_TOTAL: Final = "llm.cost.total"
OI_LLM_FINISH_REASON: Final = "llm.finish_reason"
OI_AGENT_NAME: Final = "agent.name"
OI_INPUT_VALUE: Final = "input.value"
OI_OUTPUT_VALUE: Final = "output.value"
#: ``llm.tools.{i}.tool.json_schema`` — one index per tool offered.
OI_TOOLS_PREFIX: Final = "llm.tools."
OI_INPUT_MESSAGES_PREFIX: Final = "llm.input_messages"
OI_OUTPUT_MESSAGES_PREFIX: Final = "llm.output_messages"
OI_PROMPTS_PREFIX: Final = "llm.prompts"
OI_CHOICES_PREFIX: Final = "llm.choices"
OI_PROMPT_TEMPLATE_PREFIX: Final = "llm.prompt_template"
OI_EMBEDDING_EMBEDDINGS_PREFIX: Final = "embedding.embeddings"
#: ``llm.output_messages.{i}.message.tool_calls.{j}.*`` — one (i, j) per tool call emitted.
OI_TOOL_CALLS_INFIX: Final = ".message.tool_calls."
#: Key of the stream flag inside ``llm.invocation_parameters``.
OI_PARAM_STREAM: Final = "stream"
OI_PARAM_MODEL: Final = "model"

# --- OpenLIT -------------------------------------------------------------------------
OL_REQUEST_IS_STREAM: Final = "gen_ai.request.is_stream"
OL_SERVER_TTFT: Final = "gen_ai.server.time_to_first_token"
OL_USAGE_COST: Final = "gen_ai.usage.cost"
OL_USAGE_TOTAL_TOKENS: Final = "gen_ai.usage.total_tokens"
#: OpenLIT also writes the total on the span under the token-usage metric's name.
OL_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
OL_REQUEST_USER: Final = "gen_ai.request.user"
OL_GEN_AI_TYPE: Final = "gen_ai.type"
OL_CONTENT_PROMPT: Final = "gen_ai.content.prompt"
OL_CONTENT_COMPLETION: Final = "gen_ai.content.completion"
OL_CONTENT_REVISED_PROMPT: Final = "gen_ai.content.revised_prompt"

# --- field -> attribute names, in order of preference ---------------------------------
PROVIDER: Final = (semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_SYSTEM, OI_LLM_PROVIDER, OI_LLM_SYSTEM)
REQUEST_MODEL: Final = (semconv.GEN_AI_REQUEST_MODEL, OI_LLM_REQUEST_MODEL_NAME, OI_EMBEDDING_MODEL_NAME)
#: ``llm.model_name`` does not say whether it is the requested or the answering model;
#: it is the request model only when nothing better is on the span.
REQUEST_MODEL_LAST_RESORT: Final = (OI_LLM_MODEL_NAME,)
RESPONSE_MODEL: Final = (semconv.GEN_AI_RESPONSE_MODEL, OI_LLM_RESPONSE_MODEL_NAME, OI_LLM_MODEL_NAME)
INVOCATION_PARAMETERS: Final = (OI_LLM_INVOCATION_PARAMETERS, OI_EMBEDDING_INVOCATION_PARAMETERS)
STREAM: Final = (semconv.GEN_AI_REQUEST_STREAM, TL_GEN_AI_IS_STREAMING, TL_LLM_IS_STREAMING, OL_REQUEST_IS_STREAM)
SERVER_ADDRESS: Final = (semconv.SERVER_ADDRESS,)
#: Base URLs whose host is the server address when ``server.address`` is missing.
SERVER_URL: Final = (TL_GEN_AI_OPENAI_API_BASE,)
AGENT: Final = (semconv.GEN_AI_AGENT_NAME, OI_AGENT_NAME)
SESSION: Final = (semconv.SESSION_ID,)
#: ``gen_ai.request.user``/``llm.user``/``gen_ai.user`` carry the end-user id the
#: application passed to the provider's ``user`` parameter.
USER: Final = (semconv.USER_ID, OL_REQUEST_USER, TL_GEN_AI_USER, TL_LLM_USER)
HTTP_STATUS: Final = (semconv.HTTP_RESPONSE_STATUS_CODE, semconv.HTTP_STATUS_CODE_DEPRECATED)

INPUT_TOKENS: Final = (
    semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_PROMPT_TOKENS,
    OI_TOKEN_COUNT_PROMPT, TL_LLM_USAGE_PROMPT_TOKENS,
)
OUTPUT_TOKENS: Final = (
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS, semconv.GEN_AI_USAGE_COMPLETION_TOKENS,
    OI_TOKEN_COUNT_COMPLETION, TL_LLM_USAGE_COMPLETION_TOKENS,
)
CACHED_INPUT_TOKENS: Final = (
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, TL_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    OI_TOKEN_COUNT_CACHE_READ,
)
CACHE_CREATION_INPUT_TOKENS: Final = (
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, TL_GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    OI_TOKEN_COUNT_CACHE_WRITE,
)
REASONING_TOKENS: Final = (
    semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, TL_GEN_AI_USAGE_REASONING_TOKENS, OI_TOKEN_COUNT_REASONING,
)
#: Totals are redundant with input + output; read only to drop them from ``attributes``.
TOTAL_TOKENS: Final = (OL_USAGE_TOTAL_TOKENS, TL_LLM_USAGE_TOTAL_TOKENS, OI_TOKEN_COUNT_TOTAL, OL_CLIENT_TOKEN_USAGE)

FINISH_REASON: Final = (
    semconv.GEN_AI_RESPONSE_FINISH_REASONS, TL_GEN_AI_RESPONSE_FINISH_REASON, TL_LLM_RESPONSE_FINISH_REASON,
    OI_LLM_FINISH_REASON, TL_GEN_AI_COMPLETION_0_FINISH_REASON, TL_GEN_AI_RESPONSE_STOP_REASON,
    TL_LLM_RESPONSE_STOP_REASON,
)
#: Seconds to the first streamed chunk, as the conventions name it (trusted as given).
TTFT_SECONDS: Final = (semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,)
#: OpenLIT's time to first token (seconds). OpenLIT writes it for non-streamed calls too
#: (then it is the whole duration) and writes 0 when it did not measure it, so it is
#: read only for streamed calls and only when positive.
TTFT_SECONDS_STREAM_ONLY: Final = (OL_SERVER_TTFT,)

#: A cost the span reports, in US dollars (ours first).
COST_USD: Final = (semconv.OTEL_LLM_COST_USD, OI_LLM_COST_TOTAL, OL_USAGE_COST)
#: Foreign cost names whose 0 means "no price known" (OpenLIT writes 0 for models missing
#: from its price list), so a 0 there is not a reported cost.
COST_ZERO_IS_UNKNOWN: Final = frozenset({OL_USAGE_COST})

# --- what kind of span it is ----------------------------------------------------------
#: Attributes whose presence makes a span worth a closer look (the cheap pre-filter).
CANDIDATE_KEYS: Final = frozenset({
    semconv.GEN_AI_OPERATION_NAME, semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_SYSTEM,
    TL_LLM_REQUEST_TYPE, OI_SPAN_KIND, OL_GEN_AI_TYPE,
})

#: A span naming no operation is a call when it has a provider and a model under these
#: (convention) names; the provider names are among :data:`CANDIDATE_KEYS`.
PROVIDER_WITHOUT_OPERATION: Final = (semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_SYSTEM)
MODEL_WITHOUT_OPERATION: Final = (semconv.GEN_AI_REQUEST_MODEL, semconv.GEN_AI_RESPONSE_MODEL)

#: Operation values of every naming (``gen_ai.operation.name``, OpenLLMetry's
#: ``llm.request.type``, OpenLIT's older ``gen_ai.type``) -> the conventions' operation.
#: Only these are provider calls; anything else (``invoke_agent``, ``execute_tool``,
#: ``workflow``, ``vectordb``, ...) is not a route observation.
INFERENCE_OPERATION_VALUES: Final[Mapping[str, str]] = {
    semconv.OP_CHAT: semconv.OP_CHAT,
    semconv.OP_TEXT_COMPLETION: semconv.OP_TEXT_COMPLETION,
    semconv.OP_GENERATE_CONTENT: semconv.OP_GENERATE_CONTENT,
    semconv.OP_EMBEDDINGS: semconv.OP_EMBEDDINGS,
    "completion": semconv.OP_TEXT_COMPLETION,
    "embedding": semconv.OP_EMBEDDINGS,
}

# --- message content: never kept unless the user opted in --------------------------------
CONTENT_KEYS: Final = frozenset({
    semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES, semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
    semconv.GEN_AI_TOOL_CALL_ARGUMENTS, semconv.GEN_AI_TOOL_CALL_RESULT,
    OI_INPUT_VALUE, OI_OUTPUT_VALUE, TL_TRACELOOP_ENTITY_INPUT, TL_TRACELOOP_ENTITY_OUTPUT,
    OL_CONTENT_PROMPT, OL_CONTENT_COMPLETION, OL_CONTENT_REVISED_PROMPT,
})
#: Key prefixes of indexed content attributes (``gen_ai.prompt.0.content``, ...).
CONTENT_PREFIXES: Final = (
    TL_PROMPT_PREFIX, TL_COMPLETION_PREFIX, OI_INPUT_MESSAGES_PREFIX, OI_OUTPUT_MESSAGES_PREFIX,
    OI_PROMPTS_PREFIX, OI_CHOICES_PREFIX, OI_PROMPT_TEMPLATE_PREFIX, OI_EMBEDDING_EMBEDDINGS_PREFIX,
)
