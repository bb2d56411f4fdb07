"""Every attribute and metric name otel-llm emits or reads, in one place.

Names follow the OpenTelemetry GenAI semantic conventions wherever they have one
(``gen_ai.*``, ``server.*``, ``error.type``, ``session.id``, ``user.id``). Our own names
live under ``otel_llm.`` and exist only where the conventions have no name.

No other module spells an attribute name as a string literal: import it from here, so
that a rename in the conventions is a one-line change.
"""

from __future__ import annotations

from typing import Final

# --- GenAI semantic conventions: operation and provider -------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
#: Older name of ``gen_ai.provider.name``; still emitted because many backends read it.
GEN_AI_SYSTEM: Final = "gen_ai.system"

# --- request -----------------------------------------------------------------------
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"

# --- response ----------------------------------------------------------------------
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
#: Seconds from the request to the first chunk of a streamed response.
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"

# --- usage (cache and reasoning counts are subsets of input/output) -------------------
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
#: Older usage names, read (never written) for spans of other instrumentations.
GEN_AI_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"

# --- agent, conversation, tools ------------------------------------------------------
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION: Final = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION: Final = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"

# --- content (opt-in only) ------------------------------------------------------------
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
#: Environment variable that turns on recording of prompts and completions.
CAPTURE_MESSAGE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# --- general conventions -----------------------------------------------------------
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
SESSION_ID: Final = "session.id"
USER_ID: Final = "user.id"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"

# --- operation names (values of gen_ai.operation.name) --------------------------------
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_GENERATE_CONTENT: Final = "generate_content"
OP_EMBEDDINGS: Final = "embeddings"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
#: Operations that are a call to a model provider (one route observation per attempt).
INFERENCE_OPERATIONS: Final = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT, OP_EMBEDDINGS})

#: ``error.type`` value when an operation failed without an exception class to name.
ERROR_TYPE_OTHER: Final = "_OTHER"

# --- otel-llm's own names: only where the conventions have none -------------------------
OTEL_LLM_ROUTE: Final = "otel_llm.route"
OTEL_LLM_ATTEMPT: Final = "otel_llm.attempt"
OTEL_LLM_FALLBACK: Final = "otel_llm.fallback"
OTEL_LLM_FALLBACK_REASON: Final = "otel_llm.fallback.reason"
#: Identifier shared by every attempt of one logical call (SDK retries, a fallback chain).
OTEL_LLM_LOGICAL_CALL_ID: Final = "otel_llm.logical_call.id"
OTEL_LLM_TOOLS_OFFERED: Final = "otel_llm.tools.offered"
OTEL_LLM_TOOL_CALLS: Final = "otel_llm.tool_calls"
OTEL_LLM_TOOL_CALL_NAMES: Final = "otel_llm.tool_calls.names"
OTEL_LLM_TOOL_CALL_IDS: Final = "otel_llm.tool_calls.ids"
OTEL_LLM_COST_USD: Final = "otel_llm.cost.usd"
OTEL_LLM_COST_BASIS: Final = "otel_llm.cost.basis"
OTEL_LLM_TAGS_PREFIX: Final = "otel_llm.tag."
OTEL_LLM_CHAIN_ATTEMPTS: Final = "otel_llm.chain.attempts"
OTEL_LLM_CHAIN_SELECTED: Final = "otel_llm.chain.selected"
OTEL_LLM_CHAIN_NAME: Final = "otel_llm.chain.name"
OTEL_LLM_CHAIN_OUTCOME: Final = "otel_llm.chain.outcome"
#: HTTP retry back-off the client waited before this attempt, in seconds.
OTEL_LLM_RETRY_BACKOFF_S: Final = "otel_llm.retry.backoff_s"
#: The model name a client sent, on a fallback attempt whose target names another
#: (``gen_ai.request.model`` keeps the target's model, which the route is keyed by).
OTEL_LLM_REQUEST_SENT_MODEL: Final = "otel_llm.request.sent_model"

# Routing decision (recorded on the chain or call it decided).
OTEL_LLM_ROUTING_COMPLEXITY: Final = "otel_llm.routing.complexity"
OTEL_LLM_ROUTING_SCORE: Final = "otel_llm.routing.score"
OTEL_LLM_ROUTING_PREFERENCE: Final = "otel_llm.routing.preference"
OTEL_LLM_ROUTING_CANDIDATES: Final = "otel_llm.routing.candidates"
OTEL_LLM_ROUTING_SELECTED: Final = "otel_llm.routing.selected"
OTEL_LLM_ROUTING_CAPABILITIES: Final = "otel_llm.routing.required_capabilities"

# Ollama's own server timings (seconds), so cold starts and decode speed are visible.
OTEL_LLM_OLLAMA_LOAD_DURATION: Final = "otel_llm.ollama.load_duration_s"
OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION: Final = "otel_llm.ollama.prompt_eval_duration_s"
OTEL_LLM_OLLAMA_EVAL_DURATION: Final = "otel_llm.ollama.eval_duration_s"
OTEL_LLM_OLLAMA_TOTAL_DURATION: Final = "otel_llm.ollama.total_duration_s"

# --- values -------------------------------------------------------------------------
COST_BASIS_REPORTED: Final = "reported"
COST_BASIS_COMPUTED: Final = "computed"
COST_BASIS_LOCAL: Final = "local"
COST_BASIS_UNKNOWN: Final = "unknown"

TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"

# --- metrics ------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"

#: Bucket boundaries the conventions give for gen_ai.client.operation.duration (s).
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
#: Bucket boundaries the conventions give for gen_ai.client.token.usage.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)

#: Instrumentation scope name of every span and metric otel-llm writes.
INSTRUMENTATION_NAME: Final = "otel_llm"

# --- read, never written: older convention names, exception events ----------------------
#: Older name of ``http.response.status_code``.
HTTP_STATUS_CODE_DEPRECATED: Final = "http.status_code"
#: Span event the SDK records for an exception, and its type attribute.
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"

# --- route-observation processor ---------------------------------------------------------
#: Key in an observation's ``attributes`` listing fields whose span value was unusable.
OTEL_LLM_INVALID_FIELDS: Final = "otel_llm.invalid_fields"
#: Metric attribute telling processors in one process apart.
OTEL_LLM_PROCESSOR_ID: Final = "otel_llm.processor.id"
METRIC_PROCESSOR_OBSERVED: Final = "otel_llm.processor.observed"
METRIC_PROCESSOR_EXPORTED: Final = "otel_llm.processor.exported"
METRIC_PROCESSOR_SPILLED: Final = "otel_llm.processor.spilled"
METRIC_PROCESSOR_DROPPED: Final = "otel_llm.processor.dropped"
METRIC_PROCESSOR_SKIPPED_MALFORMED: Final = "otel_llm.processor.skipped_malformed"
METRIC_PROCESSOR_QUEUE_SIZE: Final = "otel_llm.processor.queue.size"
#: Key in an observation's ``attributes`` listing fields inferred from the span's trace
#: (agent, attempt, fallback, logical call, request model) rather than read off the span.
OTEL_LLM_INFERRED: Final = "otel_llm.inferred"
