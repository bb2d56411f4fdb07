"""Auto-instrumented openai client: real client, real HTTP, a local fake provider.

Every endpoint (chat completions create/parse/stream, legacy completions, embeddings,
Responses create/stream), sync and async, every stream exit path, the SDK's own retry
loop seen attempt by attempt, and the context rules (scope, nesting, fallback chains,
concurrency).
"""

from __future__ import annotations

import asyncio
import gc
from typing import TypeVar

import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

import otel_llm
from otel_llm import extract, semconv
from otel_llm.fallback import Target, fallback_chain
from otel_llm.instrument import instrument
from processor.derive import derive
from tests.conftest import collect_points
from tests.instr_fixtures import _fresh, anyio_backend, fake, instrumented, llm_spans  # noqa: F401 - fixtures
from tests.fake_provider import CACHED_TOKENS, PROMPT_TOKENS

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "hi"}]
TOOLS = [
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=2) as c:
        yield c


@pytest.fixture
async def aclient(fake):
    async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=2) as c:
        yield c



def one_span(exporter):
    found = llm_spans(exporter)
    assert len(found) == 1, [s.name for s in found]
    return found[0]


# --- identity from the base URL ---------------------------------------------------------------
def test_a_client_subclass_with_its_own_base_url_property_is_identified_by_that_property(fake, spans):
    """The shortcut past the SDK's ``base_url`` property is taken only for the SDK's own
    property: a subclass's property is what the requests go to, and what names the server."""
    real = openai.OpenAI(base_url=fake.openai_base_url, api_key="k").base_url

    class Routed(openai.OpenAI):
        @property
        def base_url(self):  # the requests really go here, not to the configured host
            return real

    with Routed(base_url="https://api.openai.com/v1", api_key="k", max_retries=0) as c:
        c.chat.completions.create(model="gpt-4o-mini", messages=USER)
    a = one_span(spans).attributes
    assert a[semconv.SERVER_ADDRESS] == "127.0.0.1" and a[semconv.SERVER_PORT] == fake.port


# --- non-streamed endpoints -------------------------------------------------------------------
def test_chat_completion_span_has_request_response_usage_and_tool_calls(client, fake, spans):
    result = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, tools=TOOLS, temperature=0.2, max_completion_tokens=64, seed=7,
    )
    span = one_span(spans)
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is trace.SpanKind.CLIENT
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[semconv.SERVER_ADDRESS] == "127.0.0.1" and a[semconv.SERVER_PORT] == fake.port
    # An unknown host is named by itself, never silently "openai".
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "127.0.0.1"
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[semconv.GEN_AI_REQUEST_SEED] == 7
    assert a[semconv.GEN_AI_REQUEST_STREAM] is False
    assert a[semconv.GEN_AI_RESPONSE_ID] == result.id
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHED_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert a[semconv.OTEL_LLM_TOOLS_OFFERED] == 2
    assert a[semconv.OTEL_LLM_TOOL_CALLS] == 2
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_IDS]) == ("call_0", "call_1")
    assert a[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[semconv.OTEL_LLM_ATTEMPT] == 0 and a[semconv.OTEL_LLM_FALLBACK] is False
    assert a[semconv.OTEL_LLM_LOGICAL_CALL_ID]
    assert span.status.status_code is StatusCode.UNSET
    # No content unless the user opts in.
    assert semconv.GEN_AI_INPUT_MESSAGES not in a and semconv.GEN_AI_OUTPUT_MESSAGES not in a


def test_parse_is_recorded_like_create(client, spans):
    class Answer(BaseModel):
        answer: str

    result = client.chat.completions.parse(model="gpt-4o-mini", messages=USER, response_format=Answer)
    assert result.choices[0].message.parsed.answer
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_RESPONSE_ID] == result.id


def test_legacy_completion_is_a_text_completion(client, spans):
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    span = one_span(spans)
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert tuple(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("length",)
    assert span.attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 5


def test_embeddings_record_input_tokens_and_the_requested_dimensions(client, spans):
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=8)
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8  # the client still decodes base64
    span = one_span(spans)
    a = span.attributes
    assert span.name == "embeddings text-embedding-3-small"
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 8
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in a


def test_responses_api_with_tools(client, spans):
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}]
    result = client.responses.create(model="gpt-4.1-mini", input="hi", tools=tools, max_output_tokens=50)
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_RESPONSE_ID] == result.id
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert a[semconv.OTEL_LLM_TOOLS_OFFERED] == 1
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup",)
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_IDS]) == ("call_0",)


def test_raw_response_is_recorded_and_returned_unchanged(client, spans):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    assert raw.parse().usage.prompt_tokens == PROMPT_TOKENS
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.HTTP_RESPONSE_STATUS_CODE] == 200


def _raw_stream(client, model="gpt-4o-mini@chunks=4"):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=USER, stream=True, stream_options={"include_usage": True},
    )


def assert_read_to_the_end(span, chunks):
    a = span.attributes
    assert span.status.status_code is StatusCode.UNSET
    assert a[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert a[semconv.GEN_AI_RESPONSE_ID] == chunks[0].id
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens == 4
    ttft = a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0 < ttft <= (span.end_time - span.start_time) / 1e9


def test_raw_streamed_response_span_ends_with_the_stream_parse_returns(client, spans):
    raw = _raw_stream(client)
    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert raw.http_response.status_code == 200
    assert llm_spans(spans) == []  # the body has not been read yet
    stream = raw.parse()
    assert isinstance(stream, openai.Stream)  # still the SDK's type for the application
    assert raw.parse() is stream  # parsed once, as the SDK caches it
    assert llm_spans(spans) == []
    chunks = list(stream)
    assert_read_to_the_end(one_span(spans), chunks)


def test_raw_streamed_response_dropped_once_parsed_ends_when_its_stream_is_read(client, spans):
    stream = _raw_stream(client).parse()
    gc.collect()
    assert llm_spans(spans) == []  # the stream, not the raw response, owns the span now
    chunks = list(stream)
    assert_read_to_the_end(one_span(spans), chunks)


def test_raw_streamed_response_never_parsed_ends_its_span_once_when_collected(client, spans, metric_reader):
    with otel_llm.scope(route="raw-never-parsed"):
        raw = _raw_stream(client)
    assert llm_spans(spans) == []
    del raw
    gc.collect()
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes
    durations = [p for p in collect_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
                 if p.attributes.get(semconv.OTEL_LLM_ROUTE) == "raw-never-parsed"]
    assert sum(p.count for p in durations) == 1  # ended exactly once


def test_raw_streamed_response_break_then_close_ends_the_span_once(client, spans):
    raw = _raw_stream(client, "gpt-4o-mini@chunks=6")
    stream = raw.parse()
    for _chunk in stream:
        break
    assert llm_spans(spans) == []
    stream.close()
    del raw, stream
    gc.collect()
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


def test_raw_streamed_response_with_block_ends_the_span(client, spans):
    with _raw_stream(client, "gpt-4o-mini@chunks=6").parse() as stream:
        next(stream)
    assert one_span(spans).status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("mode", "error_type"), [("error", "APIError"), ("drop", "APIConnectionError")])
def test_raw_streamed_response_failing_mid_way_is_an_error(client, spans, mode, error_type):
    stream = _raw_stream(client, f"gpt-4o-mini@midstream={mode}").parse()
    with pytest.raises(openai.APIError) as info:
        for _chunk in stream:
            pass
    assert type(info.value).__name__ == error_type
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == error_type
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200


def test_a_raw_stream_that_cannot_be_wrapped_is_returned_as_it_is_and_its_span_still_ends(client, spans, monkeypatch):
    from otel_llm.instrumentation import _openai_raw
    from otel_llm.instrumentation import openai as instrumentation

    def broken(*args):
        raise RuntimeError("a broken wrapper")

    reported = []
    monkeypatch.setattr(instrumentation, "_wrap_parsed", broken)
    # Kept as text: a log record holding the exception would hold the raw response too.
    monkeypatch.setattr(_openai_raw, "report", lambda where, exc: reported.append(f"{where}: {exc}"))
    raw = _raw_stream(client)
    stream = raw.parse()
    assert type(stream) is openai.Stream  # the SDK's own, unwrapped
    assert reported == ["wrapping a raw OpenAI stream: a broken wrapper"]
    assert len(list(stream)) > 1
    assert llm_spans(spans) == []
    del raw, stream
    gc.collect()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_raw_streamed_response_span_ends_with_the_stream_parse_returns(aclient, spans):
    raw = await _raw_stream(aclient)
    assert llm_spans(spans) == []
    stream = raw.parse()
    assert isinstance(stream, openai.AsyncStream)
    assert raw.parse() is stream
    chunks = [c async for c in stream]
    assert_read_to_the_end(one_span(spans), chunks)


async def test_async_raw_streamed_response_never_parsed_ends_its_span_when_collected(aclient, spans):
    raw = await _raw_stream(aclient)
    assert llm_spans(spans) == []
    await raw.http_response.aclose()  # what an application done with it would do
    del raw
    gc.collect()
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200


async def test_async_raw_streamed_response_failing_mid_way_is_an_error(aclient, spans):
    stream = (await _raw_stream(aclient, "gpt-4o-mini@midstream=error")).parse()
    with pytest.raises(openai.APIError):
        async for _chunk in stream:
            pass
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR and span.attributes[semconv.ERROR_TYPE] == "APIError"


async def test_async_raw_streamed_response_break_then_close(aclient, spans):
    stream = (await _raw_stream(aclient, "gpt-4o-mini@chunks=6")).parse()
    async for _chunk in stream:
        break
    assert llm_spans(spans) == []
    await stream.close()
    assert one_span(spans).status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("seed", "recorded"), [
    (2**63 - 1, True), (-(2**63), True),
    (2**63, False), (2**64, False),  # beyond a span attribute's 64 bits: OTLP exporters drop it with an error
])
def test_a_seed_is_recorded_only_when_it_fits_64_bits(client, spans, seed, recorded):
    client.chat.completions.create(model="gpt-4o-mini", messages=USER, seed=seed)
    a = one_span(spans).attributes
    assert a.get(semconv.GEN_AI_REQUEST_SEED) == (seed if recorded else None)
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"  # the rest of the request is recorded


def test_other_endpoints_make_no_llm_span(client, spans):
    client.models.list()
    assert llm_spans(spans) == []


async def test_async_chat_completion(aclient, spans):
    result = await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=TOOLS)
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_RESPONSE_ID] == result.id
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert a[semconv.OTEL_LLM_TOOL_CALLS] == 2


async def test_async_embeddings_and_responses(aclient, spans):
    await aclient.embeddings.create(model="text-embedding-3-small", input="a")
    await aclient.responses.create(model="gpt-4.1-mini", input="hi")
    ops = sorted(s.attributes[semconv.GEN_AI_OPERATION_NAME] for s in llm_spans(spans))
    assert ops == ["chat", "embeddings"]


# --- streams: usage, ttft, and every exit path -------------------------------------------------
def test_stream_exhausted_records_usage_from_the_usage_chunk_and_ttft(client, spans):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True},
    )
    assert isinstance(stream, openai.Stream)  # still the SDK's type for the application
    chunks = list(stream)
    span = one_span(spans)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    ttft = a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0 < ttft <= (span.end_time - span.start_time) / 1e9
    assert span.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
def test_token_usage_metric_carries_the_answers_counts(client, spans, metric_reader, stream):
    """The token usage histogram gets the answer's input and output counts, once each, for a
    chat completion and for a stream (its usage chunk): what a dashboard of tokens reads."""
    route = f"token-metric-{'stream' if stream else 'chat'}"
    with otel_llm.scope(route=route):
        if stream:
            chunks = list(client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True},
            ))
            output = chunks[-1].usage.completion_tokens
        else:
            output = client.chat.completions.create(model="gpt-4o-mini", messages=USER).usage.completion_tokens
    assert output > 0
    points = {
        p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p
        for p in collect_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
        if p.attributes.get(semconv.OTEL_LLM_ROUTE) == route
    }
    assert set(points) == {semconv.TOKEN_TYPE_INPUT, semconv.TOKEN_TYPE_OUTPUT}
    assert (points[semconv.TOKEN_TYPE_INPUT].count, points[semconv.TOKEN_TYPE_INPUT].sum) == (1, PROMPT_TOKENS)
    assert (points[semconv.TOKEN_TYPE_OUTPUT].count, points[semconv.TOKEN_TYPE_OUTPUT].sum) == (1, output)


def test_stream_without_usage_leaves_tokens_unknown_and_asks_nothing(client, fake, spans):
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
    (body,) = fake.bodies("/chat/completions")
    assert "stream_options" not in body  # off by default: the request is the caller's
    a = one_span(spans).attributes
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in a and semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in a
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_include_usage_option_asks_for_the_usage_chunk(client, fake, spans):
    instrument(include_usage=True)
    try:
        list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
        list(client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": False},
        ))
    finally:
        instrument(include_usage=False)
    first, second = fake.bodies("/chat/completions")
    assert first["stream_options"] == {"include_usage": True}
    assert second["stream_options"] == {"include_usage": False}  # the caller's explicit choice stands
    asked, declined = llm_spans(spans)
    assert asked.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in declined.attributes


def test_next_and_a_loop_share_one_position_on_a_real_stream(client, spans):
    stream = client.chat.completions.create(
        model="gpt-4o-mini@chunks=6", messages=USER, stream=True, stream_options={"include_usage": True},
    )
    first = next(stream)
    rest = list(stream)
    assert list(stream) == []
    a = one_span(spans).attributes
    whole = list(client.chat.completions.create(
        model="gpt-4o-mini@chunks=6", messages=USER, stream=True, stream_options={"include_usage": True},
    ))
    assert _texts([first, *rest]) == _texts(whole)  # each chunk once, in order
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


_T = TypeVar("_T")


class _EveryOtherChunk(openai.Stream[_T]):
    """A stream class whose own iteration does more than pass the SDK's chunks through."""

    def __iter__(self):
        for i, item in enumerate(self._iterator):
            if i % 2 == 0:
                yield item

    def __next__(self):
        self._iterator.__next__()
        return self._iterator.__next__()


class _AsyncEveryOtherChunk(openai.AsyncStream[_T]):
    async def __anext__(self):
        await self._iterator.__anext__()
        return await self._iterator.__anext__()


def test_the_sdk_stream_classes_are_read_from_their_own_chunk_iterator(client):
    """Their iteration only passes ``_iterator`` through: read directly, one step less per chunk."""
    from otel_llm.instrumentation.openai import _chunk_source

    with client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as stream:
        sdk_stream = stream.__wrapped__
        assert _chunk_source(sdk_stream) is sdk_stream._iterator


def _stream_of(client, stream_cls):
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    return client.post(
        "/chat/completions", cast_to=ChatCompletion, stream=True, stream_cls=stream_cls[ChatCompletionChunk],
        body={"model": "gpt-4o-mini@chunks=6", "messages": USER, "stream": True},
    )


def _texts(chunks):
    """What identifies each chunk of a fake stream: its text, finish reason and usage."""
    return [
        (c.choices[0].delta.content, c.choices[0].finish_reason) if c.choices else ("usage", c.usage.total_tokens)
        for c in chunks
    ]


def test_a_stream_class_with_its_own_iteration_is_read_through_it(client, spans):
    every_other = list(_stream_of(client, _EveryOtherChunk))
    all_chunks = list(_stream_of(client, openai.Stream))
    assert len(all_chunks) > 2
    assert _texts(every_other) == _texts(all_chunks[::2])
    with _stream_of(client, _EveryOtherChunk) as stream:
        assert _texts([next(stream)]) == _texts(all_chunks[1:2])  # its own __next__ too
    assert len(llm_spans(spans)) == 3


async def test_an_async_stream_class_with_its_own_iteration_is_read_through_it(aclient, spans):
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    async def read(stream_cls):
        stream = await aclient.post(
            "/chat/completions", cast_to=ChatCompletion, stream=True, stream_cls=stream_cls[ChatCompletionChunk],
            body={"model": "gpt-4o-mini@chunks=6", "messages": USER, "stream": True},
        )
        return _texts([c async for c in stream])

    every_other, all_chunks = await read(_AsyncEveryOtherChunk), await read(openai.AsyncStream)
    assert len(all_chunks) > 2
    assert every_other == all_chunks[1::2]
    assert len(llm_spans(spans)) == 2


def test_stream_tool_calls_are_assembled_from_deltas(client, spans):
    list(client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=TOOLS, stream=True))
    a = one_span(spans).attributes
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_IDS]) == ("call_0", "call_1")
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)


def test_stream_break_ends_the_span_ok(client, spans):
    for _chunk in client.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True):
        break
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.ERROR_TYPE not in span.attributes
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


def test_stream_close_ends_the_span_once(client, spans):
    stream = client.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True)
    next(stream)
    stream.close()
    stream.close()
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET


def test_stream_with_block_ends_the_span(client, spans):
    with client.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True) as stream:
        next(stream)
    assert one_span(spans).status.status_code is StatusCode.UNSET


def test_stream_garbage_collected_unread_ends_the_span(client, spans):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    assert llm_spans(spans) == []
    del stream
    gc.collect()
    assert one_span(spans).status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("mode", "error_type"), [("error", "APIError"), ("drop", "APIConnectionError")])
def test_stream_failing_mid_way_is_an_error(client, spans, mode, error_type):
    stream = client.chat.completions.create(model=f"gpt-4o-mini@midstream={mode}", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert type(info.value).__name__ == error_type
    assert received  # it did fail mid-way
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == error_type


def test_responses_stream_helper_and_raw_event_stream(client, spans):
    with client.responses.stream(model="gpt-4.1-mini", input="hi") as stream:
        for _event in stream:
            pass
        final = stream.get_final_response()
    for _event in client.responses.create(model="gpt-4.1-mini", input="hi", stream=True):
        pass
    helper, raw = llm_spans(spans)
    for span in (helper, raw):
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
        assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
        assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert helper.attributes[semconv.GEN_AI_RESPONSE_ID] == final.id


def test_chat_stream_helper(client, spans):
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=USER, stream_options={"include_usage": True},
    ) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_RESPONSE_ID] == final.id
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_stream_helpers_left_early_end_their_span_at_once(client, spans):
    with client.chat.completions.stream(model="gpt-4o-mini@chunks=6", messages=USER) as chat_stream:
        for _event in chat_stream:
            break
    assert len(llm_spans(spans)) == 1  # ended on leaving the block, not when collected
    with client.responses.stream(model="gpt-4.1-mini@chunks=6", input="hi") as responses_stream:
        for _event in responses_stream:
            break
    assert len(llm_spans(spans)) == 2
    assert all(s.status.status_code is StatusCode.UNSET for s in llm_spans(spans))
    assert chat_stream is not None and responses_stream is not None  # both still referenced


async def test_async_stream_helper_left_early(aclient, spans):
    async with aclient.chat.completions.stream(model="gpt-4o-mini@chunks=6", messages=USER) as stream:
        async for _event in stream:
            break
    assert len(llm_spans(spans)) == 1
    assert stream is not None


async def test_async_stream_exhausted(aclient, spans):
    stream = await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True},
    )
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
    assert a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


async def test_async_stream_break_then_close(aclient, spans):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True)
    async for _chunk in stream:
        break
    await stream.close()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_stream_context_manager(aclient, spans):
    async with await aclient.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True) as s:
        await s.__anext__()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_stream_garbage_collected(aclient, spans):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini@chunks=6", messages=USER, stream=True)
    await stream.__anext__()
    del stream
    gc.collect()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_stream_cancelled_is_an_error(aclient, spans):
    first_chunk = asyncio.Event()

    async def consume():
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini@chunks=20@gap=0.2", messages=USER, stream=True,
        )
        async for _chunk in stream:
            first_chunk.set()

    task = asyncio.create_task(consume())
    await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "CancelledError"


async def test_async_stream_failing_mid_way(aclient, spans):
    stream = await aclient.chat.completions.create(model="gpt-4o-mini@midstream=error", messages=USER, stream=True)
    with pytest.raises(openai.APIError):
        async for _chunk in stream:
            pass
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR and span.attributes[semconv.ERROR_TYPE] == "APIError"


def test_responses_stream_with_an_in_band_error_event_fails_the_call(client, spans):
    events = list(client.responses.create(model="gpt-4.1-mini@midstream=error", input="hi", stream=True))
    assert events[-1].type == "error"  # the client hands the failure over as an event and raises nothing
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "server_error"  # the event's code


async def test_async_responses_stream_with_an_in_band_error_event_fails_the_call(aclient, spans):
    stream = await aclient.responses.create(model="gpt-4.1-mini@midstream=error", input="hi", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "error"
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "server_error"


def test_an_odd_answer_does_not_decide_how_later_answers_of_its_class_are_read(client, fake, spans, monkeypatch):
    """A proxy answering an error body with status 200, or an OpenAI-compatible server
    leaving usage out of an embeddings answer, is read as well as it can be; the next
    answers of the same classes are read in full (as in a process whose first answers
    these were)."""
    monkeypatch.setattr(extract, "_READER_BY_CLASS", {})
    fake.fail_next(200, body={"error": {"message": "upstream failed", "type": "upstream"}},
                   path_suffix="/chat/completions")
    fake.fail_next(200, path_suffix="/embeddings", body={
        "object": "list", "model": "nomic-embed-text",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    })
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    client.embeddings.create(model="nomic-embed-text", input="a", encoding_format="float")
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    embedded = client.embeddings.create(model="text-embedding-3-small", input="a", encoding_format="float")
    odd_chat, odd_embeddings, later_chat, later_embeddings = llm_spans(spans)
    assert semconv.GEN_AI_RESPONSE_FINISH_REASONS not in odd_chat.attributes
    assert odd_embeddings.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "nomic-embed-text"
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in odd_embeddings.attributes  # unknown, not estimated
    assert later_chat.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == (chat.choices[0].finish_reason,)
    assert later_chat.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == chat.usage.prompt_tokens
    assert later_chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == chat.usage.completion_tokens
    assert later_embeddings.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == embedded.usage.prompt_tokens


# --- per-attempt visibility ---------------------------------------------------------------------
def test_sdk_retry_of_429_gives_one_span_per_attempt_with_one_logical_call_id(client, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "20"})
    result = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(fake.bodies("/chat/completions")) == 2  # the SDK itself retried
    failed, ok = llm_spans(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert failed.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert failed.attributes[semconv.OTEL_LLM_ATTEMPT] == 0
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes[semconv.OTEL_LLM_ATTEMPT] == 1
    assert ok.attributes[semconv.HTTP_REQUEST_RESEND_COUNT] == 1
    assert ok.attributes[semconv.OTEL_LLM_RETRY_BACKOFF_S] == pytest.approx(0.02)
    assert ok.attributes[semconv.OTEL_LLM_FALLBACK] is False
    assert ok.attributes[semconv.GEN_AI_RESPONSE_ID] == result.id
    assert failed.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] == ok.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID]
    assert failed.end_time <= ok.start_time  # each span is its own attempt's time

    # The processor turns them into two observations of one logical call, one failed.
    observations = [derive(s) for s in (failed, ok)]
    assert [o.ok for o in observations] == [False, True]
    assert [o.attempt for o in observations] == [0, 1]
    assert [o.http_status for o in observations] == [429, 200]
    assert observations[0].error_type == "RateLimitError"
    assert observations[0].logical_call_id == observations[1].logical_call_id is not None

    client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    other = llm_spans(spans)[-1]
    assert other.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] != ok.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID]


def test_retries_exhausted_every_attempt_failed_and_the_error_reaches_the_caller(client, fake, spans):
    fake.fail_next(500, times=3, headers={"retry-after-ms": "1"})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    attempts = llm_spans(spans)
    assert [s.attributes[semconv.OTEL_LLM_ATTEMPT] for s in attempts] == [0, 1, 2]
    assert {s.attributes[semconv.ERROR_TYPE] for s in attempts} == {"InternalServerError"}
    assert {s.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for s in attempts} == {500}
    assert len({s.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] for s in attempts}) == 1


def test_streamed_call_retried_then_streamed(client, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "1"})
    list(client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True},
    ))
    failed, ok = llm_spans(spans)
    assert failed.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert ok.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert ok.attributes[semconv.OTEL_LLM_ATTEMPT] == 1


async def test_async_retry(aclient, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "1"})
    await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER)
    failed, ok = llm_spans(spans)
    assert failed.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert ok.attributes[semconv.OTEL_LLM_ATTEMPT] == 1
    assert failed.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] == ok.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID]


def test_timeout_is_named_as_the_sdk_names_it(fake, spans):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=1, timeout=0.05) as client:
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="gpt-4o-mini@slow=0.5", messages=USER)
    attempts = llm_spans(spans)
    assert len(attempts) == 2
    assert {s.attributes[semconv.ERROR_TYPE] for s in attempts} == {"APITimeoutError"}
    assert semconv.HTTP_RESPONSE_STATUS_CODE not in attempts[0].attributes


def test_connection_refused(spans):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    span = one_span(spans)
    assert span.attributes[semconv.ERROR_TYPE] == "APIConnectionError"
    assert span.status.status_code is StatusCode.ERROR


def test_client_error_is_not_retried_and_is_named(client, fake, spans):
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini@status=400", messages=USER)
    span = one_span(spans)
    assert span.attributes[semconv.ERROR_TYPE] == "BadRequestError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 400


# --- context: scope, nesting, fallback chains, concurrency ----------------------------------------
def test_scope_applies_to_auto_instrumented_calls(client, spans):
    with otel_llm.scope(agent="support", session="s-1", route="primary", tags={"tier": "gold"}):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_AGENT_NAME] == "support"
    assert a[semconv.SESSION_ID] == "s-1"
    assert a[semconv.OTEL_LLM_ROUTE] == "primary"
    assert a[semconv.OTEL_LLM_TAGS_PREFIX + "tier"] == "gold"


def test_span_is_current_while_the_request_is_sent_and_parented_to_the_caller(client, spans, tracer_provider):
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("handler") as parent:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    span = one_span(spans)
    assert span.parent.span_id == parent.get_span_context().span_id


def test_inside_a_hand_written_llm_span_no_second_span_is_made(client, spans):
    with otel_llm.llm_span(provider="openai", model="gpt-4o-mini") as call:
        call.record_response(client.chat.completions.create(model="gpt-4o-mini", messages=USER))
    span = one_span(spans)  # one provider call, one observation
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_inside_a_fallback_chain_the_attempt_span_gets_the_response(client, fake, spans):
    def ask(target):
        return client.chat.completions.create(model=target.model, messages=USER, tools=TOOLS)

    chain = fallback_chain("answer", [
        Target("openai", "gpt-4o-mini@status=400", route="primary"),
        Target("groq", "llama-3.1-8b", route="backup"),
    ], call=ask, fallback_on=openai.APIError)
    result = chain.run()
    assert result.usage.prompt_tokens == PROMPT_TOKENS
    first, second = llm_spans(spans)  # one span per chain attempt, none of our own
    assert first.attributes[semconv.OTEL_LLM_ATTEMPT] == 0
    assert first.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 400
    assert first.status.status_code is StatusCode.ERROR
    assert second.attributes[semconv.OTEL_LLM_FALLBACK] is True
    assert second.attributes[semconv.GEN_AI_PROVIDER_NAME] == "groq"  # the chain's target names it
    assert second.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert second.attributes[semconv.OTEL_LLM_TOOLS_OFFERED] == 2
    assert second.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 2
    assert second.attributes[semconv.SERVER_PORT] == fake.port


async def test_concurrent_calls_keep_their_spans_and_scopes_apart(aclient, spans, tracer_provider):
    tracer = tracer_provider.get_tracer("test")

    async def one(agent: str, model: str, stream: bool):
        with tracer.start_as_current_span(f"task {agent}") as parent:
            with otel_llm.scope(agent=agent, session=f"session-{agent}"):
                if stream:
                    s = await aclient.chat.completions.create(model=model, messages=USER, stream=True)
                    async for _chunk in s:
                        await asyncio.sleep(0)
                else:
                    await aclient.chat.completions.create(model=model, messages=USER)
        return parent.get_span_context().span_id

    agents = [f"agent-{i}" for i in range(8)]
    parents = await asyncio.gather(*[
        one(a, f"gpt-4o-mini@slow=0.0{i % 3}@gap=0.01", i % 2 == 0) for i, a in enumerate(agents)
    ])
    by_agent = {s.attributes[semconv.GEN_AI_AGENT_NAME]: s for s in llm_spans(spans)}
    assert sorted(by_agent) == sorted(agents)
    for agent, parent_id in zip(agents, parents):
        span = by_agent[agent]
        assert span.attributes[semconv.SESSION_ID] == f"session-{agent}"
        assert span.parent.span_id == parent_id
    assert len({s.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] for s in by_agent.values()}) == len(agents)


def test_a_call_that_fails_before_any_http_attempt_is_still_recorded(client, fake, spans):
    with pytest.raises(TypeError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": object()}])
    assert fake.bodies("/chat/completions") == []  # nothing reached the provider
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "TypeError"
    assert semconv.HTTP_RESPONSE_STATUS_CODE not in span.attributes
