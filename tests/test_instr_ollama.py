"""Auto-instrumented ollama client: real client, real HTTP (JSON and NDJSON), a local fake server.

chat, generate, embed and embeddings, sync and async, streaming and not; Ollama's own
timings; every stream exit path; failures; concurrency under ``asyncio.gather``.
"""

from __future__ import annotations

import asyncio
import gc
import socket

import ollama
import pytest
from opentelemetry.trace import StatusCode

import otel_llm
from otel_llm import semconv
from tests.instr_fixtures import _fresh, anyio_backend, fake, instrumented, llm_spans  # noqa: F401 - fixtures
from tests.fake_provider import OLLAMA_TIMINGS_NS, PROMPT_TOKENS

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "hi"}]
TOOLS = [
    {"type": "function", "function": {"name": "lookup", "description": "Look up",
                                      "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "search", "description": "Search",
                                      "parameters": {"type": "object", "properties": {}}}},
]
TIMINGS = {
    semconv.OTEL_LLM_OLLAMA_LOAD_DURATION: OLLAMA_TIMINGS_NS["load_duration"] / 1e9,
    semconv.OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION: OLLAMA_TIMINGS_NS["prompt_eval_duration"] / 1e9,
    semconv.OTEL_LLM_OLLAMA_EVAL_DURATION: OLLAMA_TIMINGS_NS["eval_duration"] / 1e9,
    semconv.OTEL_LLM_OLLAMA_TOTAL_DURATION: OLLAMA_TIMINGS_NS["total_duration"] / 1e9,
}


@pytest.fixture
def client(fake):
    with ollama.Client(host=fake.url) as c:
        yield c


@pytest.fixture
async def aclient(fake):
    async with ollama.AsyncClient(host=fake.url) as c:
        yield c



def one_span(exporter):
    found = llm_spans(exporter)
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def assert_timings(attributes):
    for key, seconds in TIMINGS.items():
        assert attributes[key] == pytest.approx(seconds), key


# --- non-streamed ------------------------------------------------------------------------------
def test_a_seed_beyond_64_bits_is_not_recorded(client, spans):
    client.chat(model="llama3.2", messages=USER, options={"seed": 2**64, "temperature": 0.5})
    a = one_span(spans).attributes
    assert semconv.GEN_AI_REQUEST_SEED not in a
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.5


def test_chat_span_has_identity_usage_and_ollama_timings(client, fake, spans):
    result = client.chat(model="llama3.2", messages=USER, options={"temperature": 0.1, "num_predict": 32, "seed": 3})
    span = one_span(spans)
    a = span.attributes
    assert span.name == "chat llama3.2"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "ollama"
    assert a[semconv.SERVER_ADDRESS] == "127.0.0.1" and a[semconv.SERVER_PORT] == fake.port
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "llama3.2"
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == pytest.approx(0.1)
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 32
    assert a[semconv.GEN_AI_REQUEST_SEED] == 3
    assert a[semconv.GEN_AI_REQUEST_STREAM] is False
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "llama3.2"
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == result.prompt_eval_count == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == result.eval_count
    assert_timings(a)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_INPUT_MESSAGES not in a


def test_chat_tool_calls_are_counted_with_names(client, spans):
    result = client.chat(model="llama3.2", messages=USER, tools=TOOLS)
    assert [t.function.name for t in result.message.tool_calls] == ["lookup", "search"]
    a = one_span(spans).attributes
    assert a[semconv.OTEL_LLM_TOOLS_OFFERED] == 2
    assert a[semconv.OTEL_LLM_TOOL_CALLS] == 2
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")


def test_generate_is_a_text_completion(client, spans):
    client.generate(model="llama3.2", prompt="Say hi", format="json")
    span = one_span(spans)
    assert span.name == "text_completion llama3.2"
    assert span.attributes[semconv.GEN_AI_OUTPUT_TYPE] == "json"
    assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert_timings(span.attributes)


def test_embed_and_legacy_embeddings(client, spans):
    client.embed(model="nomic-embed-text", input=["a", "b"])
    client.embeddings(model="nomic-embed-text", prompt="a")
    embed, legacy = llm_spans(spans)
    assert embed.name == legacy.name == "embeddings nomic-embed-text"
    assert embed.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert embed.attributes[semconv.OTEL_LLM_OLLAMA_LOAD_DURATION] == pytest.approx(TIMINGS[semconv.OTEL_LLM_OLLAMA_LOAD_DURATION])
    assert legacy.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in legacy.attributes  # not reported: unknown, not 0


def test_other_endpoints_make_no_llm_span(client, spans):
    client.list()
    assert llm_spans(spans) == []


def test_server_error_is_recorded_with_status(client, spans):
    with pytest.raises(ollama.ResponseError):
        client.chat(model="llama3.2@status=500", messages=USER)
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 500


def test_unreachable_server(spans):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError):
        ollama.Client(host=f"http://127.0.0.1:{port}").chat(model="llama3.2", messages=USER)
    span = one_span(spans)
    assert span.attributes[semconv.ERROR_TYPE] == "ConnectionError"
    assert span.attributes[semconv.SERVER_PORT] == port


async def test_async_chat_generate_embed(aclient, spans):
    await aclient.chat(model="llama3.2", messages=USER, tools=TOOLS)
    await aclient.generate(model="llama3.2", prompt="hi")
    await aclient.embed(model="nomic-embed-text", input="a")
    chat, generate, embed = llm_spans(spans)
    assert chat.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 2
    assert generate.attributes[semconv.GEN_AI_OPERATION_NAME] == "text_completion"
    assert embed.attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert_timings(chat.attributes)


# --- streams (NDJSON) ----------------------------------------------------------------------------
def test_stream_exhausted_records_counts_timings_and_ttft(client, spans):
    parts = list(client.chat(model="llama3.2@chunks=4", messages=USER, stream=True))
    span = one_span(spans)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == parts[-1].eval_count == 4
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert_timings(a)
    ttft = a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert 0 < ttft <= (span.end_time - span.start_time) / 1e9


def test_stream_tool_calls(client, spans):
    list(client.chat(model="llama3.2", messages=USER, tools=TOOLS, stream=True))
    a = one_span(spans).attributes
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")


def test_generate_stream(client, spans):
    text = "".join(p.response for p in client.generate(model="llama3.2", prompt="hi", stream=True))
    assert text
    assert one_span(spans).attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_stream_break_ends_the_span_ok_without_counts(client, spans):
    for _part in client.chat(model="llama3.2@chunks=6", messages=USER, stream=True):
        break
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in span.attributes  # the final chunk never came


def test_stream_close(client, spans):
    stream = client.chat(model="llama3.2@chunks=6", messages=USER, stream=True)
    next(stream)
    stream.close()
    assert one_span(spans).status.status_code is StatusCode.UNSET


def test_stream_never_read_then_collected(client, fake, spans):
    stream = client.chat(model="llama3.2", messages=USER, stream=True)
    del stream
    gc.collect()
    span = one_span(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert fake.bodies("/api/chat") == []  # the client sends nothing until the stream is read


def test_stream_error_mid_way(client, spans):
    received = []
    with pytest.raises(ollama.ResponseError):
        for part in client.chat(model="llama3.2@midstream=error", messages=USER, stream=True):
            received.append(part)
    assert received
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"


def test_stream_connection_dropped_mid_way(client, spans):
    with pytest.raises(Exception) as info:
        list(client.chat(model="llama3.2@midstream=drop", messages=USER, stream=True))
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == type(info.value).__qualname__


def test_stream_http_error_surfaces_on_first_read(client, spans):
    stream = client.chat(model="llama3.2@status=503", messages=USER, stream=True)
    with pytest.raises(ollama.ResponseError):
        next(stream)
    span = one_span(spans)
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"


@pytest.mark.parametrize("read", ["next", "for"])
def test_stream_http_error_records_the_status_as_a_whole_answer_does(client, spans, read):
    stream = client.chat(model="llama3.2@status=503", messages=USER, stream=True)
    with pytest.raises(ollama.ResponseError) as info:
        if read == "next":
            next(stream)
        else:
            for _part in stream:
                pass
    assert info.value.status_code == 503
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 503


def test_stream_error_line_mid_way_records_no_status(client, spans):
    """An in-band error line carries no HTTP status (the answer was a 200): none is recorded."""
    with pytest.raises(ollama.ResponseError):
        list(client.chat(model="llama3.2@midstream=error", messages=USER, stream=True))
    assert semconv.HTTP_RESPONSE_STATUS_CODE not in one_span(spans).attributes


async def test_async_stream_exhausted(aclient, spans):
    parts = [p async for p in await aclient.chat(model="llama3.2", messages=USER, stream=True)]
    a = one_span(spans).attributes
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == parts[-1].eval_count
    assert_timings(a)


async def test_async_stream_break_and_aclose(aclient, spans):
    stream = await aclient.chat(model="llama3.2@chunks=6", messages=USER, stream=True)
    async for _part in stream:
        break
    await stream.aclose()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_stream_collected(aclient, spans):
    stream = await aclient.chat(model="llama3.2@chunks=6", messages=USER, stream=True)
    await stream.__anext__()
    del stream
    gc.collect()
    assert one_span(spans).status.status_code is StatusCode.UNSET


async def test_async_stream_cancelled(aclient, spans):
    first = asyncio.Event()

    async def consume():
        async for _part in await aclient.chat(model="llama3.2@chunks=20@gap=0.2", messages=USER, stream=True):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "CancelledError"


async def test_async_stream_error_mid_way(aclient, spans):
    with pytest.raises(ollama.ResponseError):
        async for _part in await aclient.chat(model="llama3.2@midstream=error", messages=USER, stream=True):
            pass
    assert one_span(spans).attributes[semconv.ERROR_TYPE] == "ResponseError"


async def test_async_stream_http_error_records_the_status(aclient, spans):
    stream = await aclient.chat(model="llama3.2@status=503", messages=USER, stream=True)
    with pytest.raises(ollama.ResponseError):
        async for _part in stream:
            pass
    span = one_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ResponseError"
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 503


async def test_gather_keeps_spans_and_scopes_apart(aclient, spans, tracer_provider):
    tracer = tracer_provider.get_tracer("test")

    async def one(i: int):
        with tracer.start_as_current_span(f"task {i}") as parent:
            with otel_llm.scope(agent=f"agent-{i}", user=f"user-{i}"):
                if i % 2:
                    async for _part in await aclient.chat(model="llama3.2@gap=0.01", messages=USER, stream=True):
                        await asyncio.sleep(0)
                else:
                    await aclient.chat(model=f"llama3.2@slow=0.0{i % 3}", messages=USER)
        return parent.get_span_context().span_id

    parents = await asyncio.gather(*[one(i) for i in range(8)])
    by_agent = {s.attributes[semconv.GEN_AI_AGENT_NAME]: s for s in llm_spans(spans)}
    assert len(by_agent) == 8
    for i, parent_id in enumerate(parents):
        span = by_agent[f"agent-{i}"]
        assert span.attributes[semconv.USER_ID] == f"user-{i}"
        assert span.parent.span_id == parent_id
        assert span.attributes[semconv.GEN_AI_REQUEST_STREAM] is bool(i % 2)
