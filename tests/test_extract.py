"""Reading responses and streamed chunks: OpenAI- and Ollama-shaped, objects and dicts."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import ollama
import pydantic
import pytest
from openai.types import Completion, CompletionChoice, CompletionUsage, CreateEmbeddingResponse, Embedding
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
from openai.types.create_embedding_response import Usage as EmbeddingUsage
from openai.types.responses import Response, ResponseCompletedEvent, ResponseCreatedEvent, ResponseTextDeltaEvent

from otel_llm import llm_span, semconv
from otel_llm._safety import reset_for_tests
from otel_llm.call import LLMCall
from otel_llm.extract import StreamAccumulator, record_response
from otel_llm.streaming import wrap_sync

A = semconv


def recorded(response, **span_kwargs):
    """Attributes of a span on which ``response`` was recorded."""
    span_kwargs.setdefault("provider", "openai")
    with llm_span(**span_kwargs) as call:
        record_response(call, response)
    return call


def only_span(spans):
    (span,) = spans.get_finished_spans()
    return span


def chat_completion() -> ChatCompletion:
    return ChatCompletion(
        id="chatcmpl-42",
        object="chat.completion",
        created=1700000000,
        model="gpt-4o-mini-2024-07-18",
        choices=[
            Choice(
                index=0,
                finish_reason="tool_calls",
                message=ChatCompletionMessage(
                    role="assistant",
                    content=None,
                    tool_calls=[
                        ChatCompletionMessageFunctionToolCall(
                            id="call_a", type="function",
                            function=Function(name="get_weather", arguments='{"city": "Paris"}'),
                        ),
                        ChatCompletionMessageFunctionToolCall(
                            id="call_b", type="function",
                            function=Function(name="get_time", arguments='{"tz": "CET"}'),
                        ),
                    ],
                ),
            )
        ],
        usage=CompletionUsage(
            prompt_tokens=120, completion_tokens=30, total_tokens=150,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=100, cache_write_tokens=7),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=12),
        ),
    )


def assert_chat_completion_recorded(a):
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_RESPONSE_ID] == "chatcmpl-42"
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 30
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert a[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == 7
    assert a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert a[A.OTEL_LLM_TOOL_CALLS] == 2
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather", "get_time")
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_IDS]) == ("call_a", "call_b")


@pytest.fixture
def no_content(monkeypatch):
    monkeypatch.delenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, raising=False)


@pytest.fixture
def with_content(monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")


# --- OpenAI ---------------------------------------------------------------------------------
def test_openai_chat_completion_object(spans, no_content):
    recorded(chat_completion())
    a = only_span(spans).attributes
    assert_chat_completion_recorded(a)
    assert A.GEN_AI_OUTPUT_MESSAGES not in a
    # Tool-call arguments are content: never on the span unless capture is on.
    assert "Paris" not in json.dumps({k: str(v) for k, v in a.items()})


_ODD_COUNTS = {
    "plain": dict(prompt_tokens=7, completion_tokens=3),
    "zero": dict(prompt_tokens=0, completion_tokens=0),
    "details absent": dict(prompt_tokens=7, completion_tokens=3, details=False),
    "bool": dict(prompt_tokens=True, completion_tokens=3),
    "negative": dict(prompt_tokens=7, completion_tokens=-1),
    "float": dict(prompt_tokens=7.0, completion_tokens=3),
    "str": dict(prompt_tokens="7", completion_tokens=3),
    "input absent": dict(prompt_tokens=None, completion_tokens=3),
    "negative detail": dict(prompt_tokens=7, completion_tokens=3, cached=-2),
    "bool detail": dict(prompt_tokens=7, completion_tokens=3, reasoning=False),
    "cache write": dict(prompt_tokens=7, completion_tokens=3, written=5),
    "float cache write": dict(prompt_tokens=7, completion_tokens=3, written=5.0),
}


@pytest.mark.parametrize("case", list(_ODD_COUNTS))
def test_usage_counts_read_in_one_step_are_what_the_field_by_field_reader_records(spans, no_content, case):
    """A chat completion's usage is recorded in one step only when every count is one the
    field-by-field reader would store as it is; whatever the counts, both give the same
    attributes and the same token counts for the metrics."""
    from otel_llm.extract import _record_completion_totals, _record_completion_usage_object

    spec = dict(_ODD_COUNTS[case])
    details = spec.pop("details", True)
    cached, written, reasoning = spec.pop("cached", 2), spec.pop("written", None), spec.pop("reasoning", 1)
    # Plain objects of the usage object's shape: the SDK's own classes may convert what they are given.
    usage = SimpleNamespace(
        **spec, total_tokens=10,
        prompt_tokens_details=SimpleNamespace(cached_tokens=cached, cache_write_tokens=written) if details else None,
        completion_tokens_details=SimpleNamespace(reasoning_tokens=reasoning) if details else None,
    )
    one_step = LLMCall(provider="openai", model="m")
    _record_completion_totals(one_step, "m", "id-1", ["stop"], usage)
    one_step.end()
    by_field = LLMCall(provider="openai", model="m")
    by_field.set_response(model="m", id="id-1", finish_reasons=["stop"])
    _record_completion_usage_object(by_field, usage)
    by_field.end()
    first, second = spans.get_finished_spans()
    typed = [{k: (type(v), v) for k, v in span.attributes.items()} for span in (first, second)]
    assert typed[0] == typed[1]  # False == 0: the types are compared too
    assert (one_step._input_tokens, one_step._output_tokens) == (by_field._input_tokens, by_field._output_tokens)
    if case == "plain":  # the case itself is read: not two empty records
        assert first.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 7
        assert first.attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 2


def test_openai_chat_completion_dict(spans, no_content):
    recorded(chat_completion().model_dump(mode="json"))
    assert_chat_completion_recorded(only_span(spans).attributes)


def test_openai_chat_output_message_only_with_capture(spans, with_content):
    recorded(chat_completion())
    (message,) = json.loads(only_span(spans).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["role"] == "assistant"
    assert message["finish_reason"] == "tool_calls"
    assert [p["name"] for p in message["parts"] if p["type"] == "tool_call"] == ["get_weather", "get_time"]


def test_openai_legacy_completion(spans, no_content):
    response = Completion(
        id="cmpl-1", object="text_completion", created=0, model="gpt-3.5-turbo-instruct",
        choices=[CompletionChoice(index=0, finish_reason="length", text="Once upon")],
        usage=CompletionUsage(prompt_tokens=5, completion_tokens=16, total_tokens=21),
    )
    for shape in (response, response.model_dump(mode="json")):
        spans.clear()
        recorded(shape, operation=A.OP_TEXT_COMPLETION)
        a = only_span(spans).attributes
        assert a[A.GEN_AI_RESPONSE_ID] == "cmpl-1"
        assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
        assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 16)
        assert a[A.OTEL_LLM_TOOL_CALLS] == 0  # a finished response that named no tool call made none


def test_openai_legacy_completion_text_is_content(spans, with_content):
    response = Completion(
        id="cmpl-1", object="text_completion", created=0, model="m",
        choices=[CompletionChoice(index=0, finish_reason="stop", text="Once upon")],
    )
    recorded(response, operation=A.OP_TEXT_COMPLETION)
    (message,) = json.loads(only_span(spans).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "text", "content": "Once upon"}]


def test_openai_embeddings(spans):
    response = CreateEmbeddingResponse(
        object="list", model="text-embedding-3-small",
        data=[Embedding(object="embedding", index=0, embedding=[0.1, 0.2])],
        usage=EmbeddingUsage(prompt_tokens=9, total_tokens=9),
    )
    for shape in (response, response.model_dump(mode="json")):
        spans.clear()
        recorded(shape, operation=A.OP_EMBEDDINGS)
        a = only_span(spans).attributes
        assert a[A.GEN_AI_RESPONSE_MODEL] == "text-embedding-3-small"
        assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 9
        assert A.GEN_AI_USAGE_OUTPUT_TOKENS not in a


def responses_api_payload(status="completed", **extra):
    payload = {
        "id": "resp_1", "object": "response", "created_at": 1700000000.0, "model": "gpt-4.1-mini-2025-04-14",
        "status": status, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "output": [
            {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_w", "name": "get_weather",
             "arguments": '{"city": "Paris"}', "status": "completed"},
        ],
        "usage": {
            "input_tokens": 50, "output_tokens": 20, "total_tokens": 70,
            "input_tokens_details": {"cached_tokens": 32, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 8},
        },
    }
    payload.update(extra)
    return payload


def test_openai_responses_api_object_and_dict(spans, no_content):
    payload = responses_api_payload()
    for shape in (Response.model_validate(payload), payload):
        spans.clear()
        recorded(shape)
        span = only_span(spans)
        a = span.attributes
        assert a[A.GEN_AI_RESPONSE_ID] == "resp_1"
        assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4.1-mini-2025-04-14"
        assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (50, 20)
        assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 32
        assert a[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 8
        assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
        assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather",)
        assert tuple(a[A.OTEL_LLM_TOOL_CALL_IDS]) == ("call_w",)
        assert span.status.is_unset


def test_openai_responses_api_incomplete_and_failed(spans):
    recorded(responses_api_payload("incomplete", output=[], incomplete_details={"reason": "max_output_tokens"}))
    assert tuple(only_span(spans).attributes[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
    spans.clear()
    recorded(responses_api_payload("failed", output=[], error={"code": "server_error", "message": "boom"}))
    span = only_span(spans)
    assert not span.status.is_ok and not span.status.is_unset
    assert span.attributes[A.ERROR_TYPE] == "server_error"


def test_openai_responses_api_content(spans, with_content):
    recorded(Response.model_validate(responses_api_payload()))
    (message,) = json.loads(only_span(spans).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"][0] == {"type": "text", "content": "Let me check."}
    assert message["parts"][1]["name"] == "get_weather"


# --- Ollama ---------------------------------------------------------------------------------
OLLAMA_TIMINGS = dict(total_duration=2_500_000_000, load_duration=1_200_000_000,
                      prompt_eval_duration=300_000_000, eval_duration=900_000_000)


def ollama_chat_response() -> ollama.ChatResponse:
    return ollama.ChatResponse(
        model="llama3.2", created_at="2025-01-01T00:00:00Z", done=True, done_reason="stop",
        prompt_eval_count=26, eval_count=14, **OLLAMA_TIMINGS,
        message=ollama.Message(
            role="assistant", content="",
            tool_calls=[ollama.Message.ToolCall(function=ollama.Message.ToolCall.Function(
                name="get_weather", arguments={"city": "Paris"}))],
        ),
    )


def test_ollama_chat_response_object_and_dict(spans, no_content):
    response = ollama_chat_response()
    for shape in (response, response.model_dump(mode="json")):
        spans.clear()
        recorded(shape, provider="ollama")
        a = only_span(spans).attributes
        assert a[A.GEN_AI_RESPONSE_MODEL] == "llama3.2"
        assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
        assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (26, 14)
        assert a[A.OTEL_LLM_TOOL_CALLS] == 1
        assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather",)
        assert a[A.OTEL_LLM_OLLAMA_TOTAL_DURATION] == pytest.approx(2.5)
        assert a[A.OTEL_LLM_OLLAMA_LOAD_DURATION] == pytest.approx(1.2)
        assert a[A.OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION] == pytest.approx(0.3)
        assert a[A.OTEL_LLM_OLLAMA_EVAL_DURATION] == pytest.approx(0.9)
        assert A.GEN_AI_OUTPUT_MESSAGES not in a


def test_ollama_generate_and_embed(spans, with_content):
    generate = ollama.GenerateResponse(model="llama3.2", done=True, done_reason="length",
                                       prompt_eval_count=3, eval_count=64, response="Once upon a time")
    recorded(generate, provider="ollama", operation=A.OP_TEXT_COMPLETION)
    a = only_span(spans).attributes
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (3, 64)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
    (message,) = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"] == [{"type": "text", "content": "Once upon a time"}]
    spans.clear()
    embed = ollama.EmbedResponse(model="nomic-embed-text", embeddings=[[0.1, 0.2]], prompt_eval_count=4,
                                 total_duration=5_000_000)
    recorded(embed.model_dump(), provider="ollama", operation=A.OP_EMBEDDINGS)
    a = only_span(spans).attributes
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 4
    assert A.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    assert a[A.OTEL_LLM_OLLAMA_TOTAL_DURATION] == pytest.approx(0.005)


# --- bad input ----------------------------------------------------------------------------------
def test_token_count_of_wrong_type_is_skipped_and_logged_the_rest_kept(spans, caplog):
    reset_for_tests()
    response = chat_completion().model_dump(mode="json")
    response["usage"]["prompt_tokens"] = "a lot"
    response["usage"]["completion_tokens"] = [30]
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        recorded(response)
    a = only_span(spans).attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in a and A.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100  # the rest is kept
    assert a[A.GEN_AI_RESPONSE_ID] == "chatcmpl-42"
    assert a[A.OTEL_LLM_TOOL_CALLS] == 2
    assert any("input_tokens" in r.getMessage() for r in caplog.records)


def test_ollama_timing_of_wrong_type_is_skipped(spans):
    response = ollama_chat_response().model_dump(mode="json")
    response["load_duration"] = "slow"
    recorded(response, provider="ollama")
    a = only_span(spans).attributes
    assert A.OTEL_LLM_OLLAMA_LOAD_DURATION not in a
    assert a[A.OTEL_LLM_OLLAMA_TOTAL_DURATION] == pytest.approx(2.5)


class Exploding:
    """A response object whose every attribute read raises."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(f"no {name} for you")

    def __repr__(self):
        return "Exploding()"


@pytest.mark.parametrize("odd", [None, "text", b"bytes", 42, [1, 2], {"choices": "nope"},
                                 {"choices": [None, 3]}, {"usage": {"prompt_tokens": object()}, "data": []},
                                 Exploding(), {"output": [Exploding()], "status": "completed"}])
def test_odd_shapes_never_raise_and_the_span_still_ends(spans, odd):
    recorded(odd)
    span = only_span(spans)
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "chat"
    assert span.status.is_unset


# --- streams ------------------------------------------------------------------------------------
def openai_chunks():
    base = dict(id="chatcmpl-s", object="chat.completion.chunk", created=0, model="gpt-4o-mini-2024-07-18")
    deltas = [
        {"role": "assistant", "content": "Checking"},
        {"tool_calls": [{"index": 0, "id": "call_x", "type": "function", "function": {"name": "lookup", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]},
        {"tool_calls": [{"index": 1, "id": "call_y", "type": "function", "function": {"name": "search", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
    ]
    chunks = [ChatCompletionChunk.model_validate({**base, "choices": [{"index": 0, "delta": d}]}) for d in deltas]
    chunks.append(ChatCompletionChunk.model_validate(
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))
    chunks.append(ChatCompletionChunk.model_validate({**base, "choices": [], "usage": {
        "prompt_tokens": 40, "completion_tokens": 22, "total_tokens": 62,
        "prompt_tokens_details": {"cached_tokens": 16}}}))
    return chunks


def accumulate(chunks, **span_kwargs):
    span_kwargs.setdefault("provider", "openai")
    acc = StreamAccumulator()
    with llm_span(stream=True, **span_kwargs) as call:
        for chunk in chunks:
            acc.add(chunk)
        acc.finish(call)


@pytest.mark.parametrize("as_dicts", [False, True])
def test_openai_chat_chunks_assemble_tool_calls_and_usage(spans, no_content, as_dicts):
    chunks = openai_chunks()
    accumulate([c.model_dump(mode="json") for c in chunks] if as_dicts else chunks)
    a = only_span(spans).attributes
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[A.GEN_AI_RESPONSE_ID] == "chatcmpl-s"
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (40, 22)
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 16
    assert a[A.OTEL_LLM_TOOL_CALLS] == 2  # five deltas, two calls
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_IDS]) == ("call_x", "call_y")
    assert A.GEN_AI_OUTPUT_MESSAGES not in a


def test_openai_chat_chunks_content_assembled_when_captured(spans, with_content):
    accumulate(openai_chunks())
    (message,) = json.loads(only_span(spans).attributes[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"][0] == {"type": "text", "content": "Checking"}
    assert message["parts"][1]["arguments"] == {"q": "Paris"}  # argument deltas joined in order
    assert message["finish_reason"] == "tool_calls"


def test_responses_stream_events_use_the_completed_response(spans, no_content):
    created = responses_api_payload("in_progress", output=[], usage=None)
    events = [
        ResponseCreatedEvent(type="response.created", sequence_number=0, response=Response.model_validate(created)),
        ResponseTextDeltaEvent.model_validate({"type": "response.output_text.delta", "sequence_number": 1,
                                               "item_id": "msg_1", "output_index": 0, "content_index": 0,
                                               "delta": "Let me", "logprobs": []}),
        ResponseCompletedEvent(type="response.completed", sequence_number=2,
                               response=Response.model_validate(responses_api_payload())),
    ]
    accumulate(events)
    a = only_span(spans).attributes
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (50, 20)
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather",)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)


@pytest.mark.parametrize("as_dicts", [False, True])
def test_ollama_chunks_final_counts_and_streamed_tool_calls(spans, with_content, as_dicts):
    chunks = [
        ollama.ChatResponse(model="llama3.2", done=False, message=ollama.Message(role="assistant", content="Hel")),
        ollama.ChatResponse(model="llama3.2", done=False, message=ollama.Message(role="assistant", content="lo")),
        ollama.ChatResponse(model="llama3.2", done=False, message=ollama.Message(
            role="assistant", content="",
            tool_calls=[ollama.Message.ToolCall(function=ollama.Message.ToolCall.Function(name="lookup", arguments={}))])),
        ollama.ChatResponse(model="llama3.2", done=True, done_reason="stop", prompt_eval_count=11, eval_count=5,
                            message=ollama.Message(role="assistant", content=""), **OLLAMA_TIMINGS),
    ]
    accumulate([c.model_dump(mode="json") for c in chunks] if as_dicts else chunks, provider="ollama")
    a = only_span(spans).attributes
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (11, 5)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[A.OTEL_LLM_TOOL_CALLS] == 1
    assert a[A.OTEL_LLM_OLLAMA_EVAL_DURATION] == pytest.approx(0.9)
    (message,) = json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])
    assert message["parts"][0] == {"type": "text", "content": "Hello"}


def test_odd_chunks_are_skipped_and_the_rest_still_counts(spans, no_content):
    chunks = openai_chunks()
    mixed = [None, "text", 3, Exploding(), {"choices": [None]}, {"choices": 5}] + chunks
    accumulate(mixed)
    a = only_span(spans).attributes
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert a[A.OTEL_LLM_TOOL_CALLS] == 2


def test_ollama_chunks_without_content_capture(spans, no_content):
    chunks = [
        ollama.ChatResponse(model="llama3.2", done=False, message=ollama.Message(role="assistant", content="Hi")),
        ollama.ChatResponse(model="llama3.2", done=False, message=ollama.Message(
            role="assistant", content="",
            tool_calls=[ollama.Message.ToolCall(function=ollama.Message.ToolCall.Function(name="lookup", arguments={}))])),
        ollama.ChatResponse(model="llama3.2", done=True, done_reason="stop", prompt_eval_count=11, eval_count=5,
                            message=ollama.Message(role="assistant", content=""), **OLLAMA_TIMINGS),
    ]
    accumulate(chunks, provider="ollama")
    a = only_span(spans).attributes
    assert a[A.GEN_AI_RESPONSE_MODEL] == "llama3.2"
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (11, 5)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup",)
    assert a[A.OTEL_LLM_OLLAMA_LOAD_DURATION] == pytest.approx(1.2)
    assert A.GEN_AI_OUTPUT_MESSAGES not in a


def unvalidated(cls, **fields):
    """An SDK object whose nested fields stay plain dicts (pydantic's construct, which the
    SDK's own ``construct`` would otherwise replace with nested models)."""
    return pydantic.BaseModel.model_construct.__func__(cls, **fields)


def test_known_classes_holding_plain_dicts_are_still_read(spans, no_content):
    """An SDK object built without validation can hold dicts where models are expected:
    the attribute reads of the usual path fail, and the general reader takes over."""
    choice = {"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}}
    response = unvalidated(
        ChatCompletion, id="chatcmpl-c", object="chat.completion", created=0, model="gpt-4o-mini", choices=[choice],
        usage={"prompt_tokens": 9, "completion_tokens": 4},
    )
    recorded(response)
    a = only_span(spans).attributes
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 4)
    assert a[A.OTEL_LLM_TOOL_CALLS] == 1  # counted once, not once per reader


def test_a_chunk_holding_plain_dicts_mid_stream_is_still_read(spans, no_content):
    chunks = openai_chunks()
    odd = unvalidated(
        ChatCompletionChunk, id="chatcmpl-s", object="chat.completion.chunk", created=0, model="gpt-4o-mini-2024-07-18",
        choices=[{"index": 0, "delta": {"tool_calls": [
            {"index": 2, "id": "call_z", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]}}],
    )
    accumulate(chunks[:2] + [odd] + chunks[2:])
    a = only_span(spans).attributes
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search", "fetch")
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 40


def through_wrapper(chunks, provider="openai"):
    """Chunks read as the instrumentations read a stream: through the stream wrapper,
    which hands every chunk after the first to the accumulator's ``chunk_step()``."""
    call = LLMCall(provider=provider, model="m", stream=True)
    assert list(wrap_sync(call, iter(chunks), StreamAccumulator(), False)) == chunks


def test_chunk_step_is_the_short_path_for_chat_chunk_objects_only(no_content):
    openai_acc, ollama_acc, dict_acc = StreamAccumulator(), StreamAccumulator(), StreamAccumulator()
    openai_acc.add(openai_chunks()[0])
    ollama_acc.add(ollama.ChatResponse(model="llama3.2", message={"role": "assistant", "content": "w"}, done=False))
    dict_acc.add({"model": "m", "choices": []})
    # Model and id came with the first chunk: later ones are not asked for them again.
    assert openai_acc.chunk_step() == openai_acc._add_openai_later
    assert ollama_acc.chunk_step() == ollama_acc._add_ollama_later
    assert dict_acc.chunk_step() == dict_acc.add  # no short path: every chunk chooses


def test_model_and_id_a_first_chunk_lacks_are_taken_from_a_later_one(spans, no_content):
    chunks = openai_chunks()
    first = chunks[0].model_copy(update={"model": "", "id": ""})
    acc = StreamAccumulator()
    acc.add(first)
    assert acc.chunk_step() == acc._add_openai_chunk  # still looking for them
    through_wrapper([first, *chunks[1:]])
    a = only_span(spans).attributes
    assert a[A.GEN_AI_RESPONSE_MODEL] == chunks[1].model and a[A.GEN_AI_RESPONSE_ID] == chunks[1].id


def test_a_stream_read_through_the_wrapper_records_what_add_records(spans, no_content):
    through_wrapper(openai_chunks())
    a = only_span(spans).attributes
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_IDS]) == ("call_x", "call_y")
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (40, 22)
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 16


def test_a_later_chunk_the_short_path_cannot_read_goes_the_general_way(spans, no_content):
    # After a chat chunk object has chosen the short path, a plain dict (here the usage
    # chunk) has none of its attributes: it is read the general way, nothing lost.
    chunks = openai_chunks()
    usage = chunks[-1].model_dump()
    through_wrapper(chunks[:-1] + [usage])
    a = only_span(spans).attributes
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (40, 22)
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")


def test_an_ollama_stream_read_through_the_wrapper_keeps_its_tool_calls_and_final_chunk(spans, no_content):
    def part(**fields):
        return ollama.ChatResponse(model="llama3.2", **fields)

    chunks = [
        part(message={"role": "assistant", "content": "w"}, done=False),
        part(message={"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "lookup", "arguments": {"q": "Paris"}}}]}, done=False),
        part(message={"role": "assistant", "content": ""}, done=True, done_reason="stop",
             prompt_eval_count=7, eval_count=5, load_duration=2_000_000_000),
    ]
    through_wrapper(chunks, provider="ollama")
    a = only_span(spans).attributes
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup",)
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 5)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[A.OTEL_LLM_OLLAMA_LOAD_DURATION] == 2.0


def _two_choice_chunks() -> list[ChatCompletionChunk]:
    base = {"id": "chatcmpl-n", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini"}

    def chunk(choices, usage=None):
        return ChatCompletionChunk.model_validate({**base, "choices": choices, "usage": usage})

    return [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}},
               {"index": 1, "delta": {"role": "assistant", "content": ""}}]),
        chunk([{"index": 1, "delta": {"content": "b"}, "finish_reason": "length"}]),
        chunk([{"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}]),
        chunk([], {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}),
    ]


def _differential_streams() -> dict[str, list]:
    chunks = openai_chunks()
    odd = unvalidated(
        ChatCompletionChunk, id="chatcmpl-s", object="chat.completion.chunk", created=0, model="gpt-4o-mini-2024-07-18",
        choices=[{"index": 0, "delta": {"tool_calls": [
            {"index": 2, "id": "call_z", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]}}],
    )
    return {
        "tool calls and usage": chunks,
        "text only": [c for c in chunks if not (c.choices and c.choices[0].delta.tool_calls)],
        "an odd chunk mid-stream": chunks[:2] + [odd] + chunks[2:],
        "a usage chunk as a dict": chunks[:-1] + [chunks[-1].model_dump()],
        "a first chunk without model and id": [chunks[0].model_copy(update={"model": "", "id": ""}), *chunks[1:]],
        "two choices": _two_choice_chunks(),
        "ollama": [
            ollama.ChatResponse(model="llama3.2", message={"role": "assistant", "content": "w"}, done=False),
            ollama.ChatResponse(model="llama3.2", message={"role": "assistant", "content": ""}, done=True,
                                done_reason="stop", prompt_eval_count=7, eval_count=5),
        ],
    }


def _recorded_attributes(spans) -> dict:
    a = dict(only_span(spans).attributes)
    for key in (A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, A.OTEL_LLM_LOGICAL_CALL_ID):
        a.pop(key, None)
    spans.clear()
    return a


def _read(wrapper, chunks, how: str) -> list:
    """Consume ``wrapper`` the way ``how`` names; the chunks the consumer got."""
    got = []
    if how == "for":
        got.extend(wrapper)
    elif how == "next":
        got.extend(next(wrapper) for _ in chunks)
        with pytest.raises(StopIteration):
            next(wrapper)
    else:  # a loop left after two chunks, then taken up by another loop or by next()
        for chunk in wrapper:
            got.append(chunk)
            if len(got) == 2:
                break
        if how == "for, break, for":
            got.extend(wrapper)
        else:
            got.extend(next(wrapper) for _ in chunks[2:])
            with pytest.raises(StopIteration):
                next(wrapper)
    return got


@pytest.mark.parametrize("how", ["for", "next", "for, break, for", "for, break, next"])
@pytest.mark.parametrize("name", list(_differential_streams()))
def test_every_way_of_reading_a_stream_records_what_add_records(spans, no_content, name, how):
    """The wrapper's ``for`` loop reads OpenAI chat chunks itself; its ``__next__`` hands
    them to the accumulator's step; ``add`` takes them one by one: all record the same
    attributes, whatever the stream holds and however the consumer reads it."""
    chunks = _differential_streams()[name]
    accumulate(chunks, model="m")
    by_add = _recorded_attributes(spans)
    call = LLMCall(provider="openai", model="m", stream=True)
    wrapper = wrap_sync(call, iter(chunks), StreamAccumulator(), False)
    assert _read(wrapper, chunks, how) == chunks
    del wrapper
    assert _recorded_attributes(spans) == by_add


@pytest.mark.parametrize("name", list(_differential_streams()))
def test_a_stream_closed_in_its_loop_records_what_was_read_as_add_does(spans, no_content, name):
    chunks = _differential_streams()[name]
    accumulate(chunks[:2], model="m")
    by_add = _recorded_attributes(spans)
    call = LLMCall(provider="openai", model="m", stream=True)
    wrapper = wrap_sync(call, iter(chunks), StreamAccumulator(), False)
    for i, _chunk in enumerate(wrapper):
        if i == 1:
            wrapper.close()
    assert _recorded_attributes(spans) == by_add
