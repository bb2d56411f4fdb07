"""Auto-instrumented clients called inside a fallback chain's attempt.

There the attempt's own span is the observation of the provider call (the
instrumentation runs in ``ATTEMPT`` mode and opens no span of its own), and it must
carry what the instrumentation would have recorded on its own span: a stream's data
until the stream ends, the request's attributes, and every HTTP attempt of an SDK retry
as an observation of its own. Real clients over real HTTP against the fake provider.
"""

from __future__ import annotations

import gc

import ollama
import openai
import pytest
from opentelemetry.trace import StatusCode

from otel_llm import semconv
from otel_llm.fallback import Target, fallback_chain
from tests.fake_provider import PROMPT_TOKENS
from tests.instr_fixtures import _fresh, anyio_backend, fake, instrumented  # noqa: F401 - fixtures

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "hi"}]
USAGE = {"include_usage": True}


@pytest.fixture
def client(fake):
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=2) as c:
        yield c


@pytest.fixture
async def aclient(fake):
    async with openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=2) as c:
        yield c


@pytest.fixture
def oclient(fake):
    with ollama.Client(host=fake.url) as c:
        yield c


@pytest.fixture
async def aoclient(fake):
    async with ollama.AsyncClient(host=fake.url) as c:
        yield c


def llm_spans(exporter):
    return [
        s for s in exporter.get_finished_spans()
        if s.attributes.get(semconv.GEN_AI_OPERATION_NAME) in semconv.INFERENCE_OPERATIONS
    ]


def chain_span(exporter):
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("fallback_chain ")]
    return span


def one_chain(call, provider="openai", model="gpt-4o"):
    return fallback_chain("answer", [Target(provider, model, route="primary", call=call)])


def assert_stream_recorded(span, output_tokens):
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens
    assert 0 < a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] <= (span.end_time - span.start_time) / 1e9
    assert span.status.status_code is StatusCode.UNSET
    # The chain's attributes stay: the target names provider, model and route.
    assert (a[semconv.OTEL_LLM_ROUTE], a[semconv.OTEL_LLM_ATTEMPT], a[semconv.OTEL_LLM_FALLBACK]) == ("primary", 0, False)


# --- (a) streams: the attempt's span ends with the stream ----------------------------------------
def test_openai_stream_inside_a_chain_attempt_is_recorded_until_it_ends(client, spans):
    chain = one_chain(lambda q: client.chat.completions.create(
        model="gpt-4o@chunks=5", messages=USER, stream=True, stream_options=USAGE,
    ))
    stream = chain.run("q")
    assert llm_spans(spans) == []  # still streaming
    chunks = list(stream)
    assert len(chunks) == 8  # role, five pieces, finish, usage
    (span,) = llm_spans(spans)
    assert_stream_recorded(span, chunks[-1].usage.completion_tokens)
    assert span.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert chain_span(spans).attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"


async def test_async_openai_stream_inside_a_chain_attempt_is_recorded_until_it_ends(aclient, spans):
    chain = one_chain(lambda q: aclient.chat.completions.create(
        model="gpt-4o@chunks=5", messages=USER, stream=True, stream_options=USAGE,
    ))
    stream = await chain.arun("q")
    assert llm_spans(spans) == []
    chunks = [c async for c in stream]
    (span,) = llm_spans(spans)
    assert_stream_recorded(span, chunks[-1].usage.completion_tokens)


def test_openai_stream_in_a_chain_left_early_ends_ok_when_collected(client, spans):
    chain = one_chain(lambda q: client.chat.completions.create(model="gpt-4o@chunks=6", messages=USER, stream=True))
    for _chunk in chain.run("q"):
        break
    gc.collect()
    (span,) = llm_spans(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


def test_openai_stream_in_a_chain_failing_mid_way_fails_the_attempt_without_a_fallback(client, spans):
    backup = []
    chain = fallback_chain("answer", [
        Target("openai", "gpt-4o", route="primary", call=lambda: client.chat.completions.create(
            model="gpt-4o@midstream=error", messages=USER, stream=True)),
        Target("openai", "gpt-4o-mini", route="backup", call=lambda: backup.append(1)),
    ])
    with pytest.raises(openai.APIError):
        for _chunk in chain.run():
            pass
    assert backup == []  # the caller already held the stream
    (span,) = llm_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIError"
    assert chain_span(spans).attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"


def test_ollama_stream_inside_a_chain_attempt_is_recorded_until_it_ends(oclient, spans):
    chain = one_chain(lambda: oclient.chat(model="llama3.2", messages=USER, stream=True), "ollama", "llama3.2")
    stream = chain.run()
    assert llm_spans(spans) == []
    chunks = list(stream)
    (span,) = llm_spans(spans)
    assert_stream_recorded(span, chunks[-1].eval_count)


async def test_async_ollama_stream_inside_a_chain_attempt_is_recorded_until_it_ends(aoclient, spans):
    async def ask():
        return await aoclient.chat(model="llama3.2", messages=USER, stream=True)

    stream = await one_chain(ask, "ollama", "llama3.2").arun()
    assert llm_spans(spans) == []
    chunks = [c async for c in stream]
    (span,) = llm_spans(spans)
    assert_stream_recorded(span, chunks[-1].eval_count)


# --- (c) the request's attributes on the attempt's span ------------------------------------------
def test_openai_request_attributes_fill_the_attempt_span_and_the_targets_names_stand(client, fake, spans):
    chain = fallback_chain("answer", [Target(
        "openai", "gpt-4o", route="primary", server_address="llm-gateway.internal",
        call=lambda: client.chat.completions.create(
            model="gpt-4o-2024-08-06", messages=USER, temperature=0.2, max_completion_tokens=64, seed=7,
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        ),
    )])
    chain.run()
    (span,) = llm_spans(spans)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is False
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64
    assert a[semconv.GEN_AI_REQUEST_SEED] == 7
    assert a[semconv.OTEL_LLM_TOOLS_OFFERED] == 1
    assert a[semconv.SERVER_PORT] == fake.port
    # What the target named stands; the model sent on the wire is kept beside it.
    assert span.name == "chat gpt-4o"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai"  # not the fake's address
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert a[semconv.OTEL_LLM_REQUEST_SENT_MODEL] == "gpt-4o-2024-08-06"
    assert a[semconv.SERVER_ADDRESS] == "llm-gateway.internal"
    assert a[semconv.OTEL_LLM_LOGICAL_CALL_ID] == format(chain_span(spans).context.span_id, "016x")  # the chain's
    assert a[semconv.OTEL_LLM_ATTEMPT] == 0 and a[semconv.OTEL_LLM_FALLBACK] is False


def test_ollama_request_attributes_fill_the_attempt_span(oclient, fake, spans):
    chain = one_chain(
        lambda: oclient.chat(model="llama3.2", messages=USER, options={"temperature": 0.5, "num_predict": 32}),
        "ollama", "llama3.2",
    )
    chain.run()
    (span,) = llm_spans(spans)
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is False
    assert a[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert a[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 32
    assert a[semconv.SERVER_PORT] == fake.port
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "llama3.2"
    assert semconv.OTEL_LLM_REQUEST_SENT_MODEL not in a  # the same model: nothing to add

