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
from processor.derive import derive
from processor.trace_inference import derive_trace
from tests.fake_provider import PROMPT_TOKENS
from tests.instr_fixtures import _fresh, anyio_backend, fake, instrumented, llm_spans  # noqa: F401 - fixtures

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


def test_openai_raw_streamed_response_from_a_chain_target_is_recorded_until_its_stream_ends(client, spans):
    chain = one_chain(lambda q: client.chat.completions.with_raw_response.create(
        model="gpt-4o@chunks=5", messages=USER, stream=True, stream_options=USAGE,
    ))
    raw = chain.run("q")
    assert llm_spans(spans) == []  # the attempt left the call open for the raw response
    chunks = list(raw.parse())
    (span,) = llm_spans(spans)
    assert_stream_recorded(span, chunks[-1].usage.completion_tokens)


def test_openai_raw_streamed_response_from_a_chain_target_failing_mid_way_fails_the_attempt(client, spans):
    raw = one_chain(lambda q: client.chat.completions.with_raw_response.create(
        model="gpt-4o@midstream=error", messages=USER, stream=True,
    )).run("q")
    with pytest.raises(openai.APIError):
        list(raw.parse())
    (span,) = llm_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "APIError"


def test_openai_raw_streamed_response_from_a_chain_target_never_parsed_ends_once_when_collected(client, spans):
    raw = one_chain(lambda q: client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True,
    )).run("q")
    assert llm_spans(spans) == []
    del raw
    gc.collect()
    (span,) = llm_spans(spans)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200


def test_a_span_of_the_application_between_the_attempt_and_the_client_call_changes_nothing(client, spans):
    """The provider call is the attempt's, whatever spans the target opens around it: one
    observation, recorded on the attempt's span."""
    from opentelemetry import trace

    tracer = trace.get_tracer("app")

    def target(q):
        with tracer.start_as_current_span("app-step"):
            return client.chat.completions.create(model="gpt-4o", messages=USER)

    result = one_chain(target).run("q")
    (span,) = llm_spans(spans)
    a = span.attributes
    assert (a[semconv.OTEL_LLM_ROUTE], a[semconv.GEN_AI_PROVIDER_NAME]) == ("primary", "openai")
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens  # once, not twice


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_an_answer_recorded_by_the_target_as_well_as_by_the_client_counts_once(client, oclient, spans, provider):
    """The module's own pattern, ``with attempt as call: ...; call.record_response(r)``,
    with the client instrumented: the answer is on the attempt's span once."""
    tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
             for name in ("lookup", "search")]
    chain = fallback_chain("answer", [Target(provider, "m", route="primary")])
    for attempt in chain:
        with attempt as call:
            if provider == "openai":
                answer = client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=tools)
                emitted = len(answer.choices[0].message.tool_calls)
            else:
                answer = oclient.chat(model="llama3.2", messages=USER, tools=tools)
                emitted = len(answer.message.tool_calls)
            call.record_response(answer)
    (span,) = llm_spans(spans)
    assert emitted == 2
    assert span.attributes[semconv.OTEL_LLM_TOOL_CALLS] == emitted
    assert len(span.attributes[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == emitted


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_a_decorated_target_calling_an_instrumented_client_counts_its_answer_once(client, oclient, spans, provider):
    from otel_llm import llm_call

    tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
             for name in ("lookup", "search")]

    @llm_call(provider=provider, model="m")
    def ask(q):
        if provider == "openai":
            return client.chat.completions.create(model="gpt-4o-mini", messages=USER, tools=tools)
        return oclient.chat(model="llama3.2", messages=USER, tools=tools)

    fallback_chain("answer", [Target(provider, "m", route="primary", call=ask)]).run("q")
    (span,) = llm_spans(spans)
    assert span.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 2  # the two tool calls the answer carries
    assert span.attributes[semconv.OTEL_LLM_ROUTE] == "primary"


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


# --- (b) SDK retries inside an attempt: one span per HTTP attempt ---------------------------------
def _record(span):
    """A finished SDK span as the collector receives it (for trace-aware derivation)."""
    from processor.trace_inference import SpanRecord

    ctx, parent = span.get_span_context(), span.parent
    return SpanRecord(
        ctx.trace_id.to_bytes(16, "big"), ctx.span_id.to_bytes(8, "big"),
        parent.span_id.to_bytes(8, "big") if parent else None, span.name, span.kind.value,
        span.start_time, span.end_time, dict(span.attributes), span.status.status_code.value,
        dict(span.resource.attributes), scope_name=span.instrumentation_scope.name,
    )


def assert_retried_once(spans, failed, ok):
    chain = chain_span(spans)
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes[semconv.ERROR_TYPE] == "RateLimitError"
    assert failed.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    assert semconv.HTTP_REQUEST_RESEND_COUNT not in failed.attributes
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert ok.attributes[semconv.HTTP_REQUEST_RESEND_COUNT] == 1
    assert ok.attributes[semconv.OTEL_LLM_RETRY_BACKOFF_S] == pytest.approx(0.01)
    for span in (failed, ok):  # the fallback attributes on each, both children of the chain
        a = span.attributes
        assert (a[semconv.OTEL_LLM_ROUTE], a[semconv.OTEL_LLM_ATTEMPT], a[semconv.OTEL_LLM_FALLBACK]) == ("primary", 0, False)
        assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai" and a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
        assert span.parent.span_id == chain.context.span_id
    assert failed.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] == ok.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID]
    assert ok.start_time <= failed.start_time < failed.end_time <= ok.end_time  # the try's own time

    # One observation per provider attempt, in process and from the collector's trace.
    for observations in ([derive(s) for s in (failed, ok)], derive_trace([_record(s) for s in (chain, failed, ok)]).observations):
        by_ok = sorted(observations, key=lambda o: o.ok)
        assert [(o.ok, o.http_status, o.error_type) for o in by_ok] == [(False, 429, "RateLimitError"), (True, 200, None)]
        assert {o.route for o in by_ok} == {"primary"} and {o.attempt for o in by_ok} == {0}
        assert len({o.logical_call_id for o in by_ok}) == 1


def test_openai_sdk_retry_inside_a_chain_attempt_gives_one_span_per_http_attempt(client, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "10"})
    result = one_chain(lambda: client.chat.completions.create(model="gpt-4o", messages=USER)).run()
    assert len(fake.bodies("/chat/completions")) == 2
    failed, ok = llm_spans(spans)
    assert_retried_once(spans, failed, ok)
    assert ok.attributes[semconv.GEN_AI_RESPONSE_ID] == result.id


async def test_async_openai_sdk_retry_inside_a_chain_attempt_gives_one_span_per_http_attempt(aclient, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "10"})
    await one_chain(lambda: aclient.chat.completions.create(model="gpt-4o", messages=USER)).arun()
    failed, ok = llm_spans(spans)
    assert_retried_once(spans, failed, ok)


def test_openai_stream_retried_inside_a_chain_attempt(client, fake, spans):
    fake.fail_next(429, headers={"retry-after-ms": "10"})
    chunks = list(one_chain(lambda: client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options=USAGE)).run())
    failed, ok = llm_spans(spans)
    assert_retried_once(spans, failed, ok)
    assert_stream_recorded(ok, chunks[-1].usage.completion_tokens)


def test_retries_exhausted_then_the_chain_falls_back_every_http_attempt_observed(client, fake, spans):
    fake.fail_next(500, times=3, headers={"retry-after-ms": "1"})
    chain = fallback_chain("answer", [
        Target("openai", "gpt-4o", route="primary", call=lambda: client.chat.completions.create(model="gpt-4o", messages=USER)),
        Target("openai", "gpt-4o-mini", route="backup",
               call=lambda: client.chat.completions.create(model="gpt-4o-mini", messages=USER)),
    ], fallback_on=openai.APIError)
    chain.run()
    tries = llm_spans(spans)  # in the order they ended: each try before the next
    assert [s.attributes[semconv.OTEL_LLM_ROUTE] for s in tries] == ["primary"] * 3 + ["backup"]
    assert [s.attributes.get(semconv.HTTP_REQUEST_RESEND_COUNT) for s in tries] == [None, 1, 2, None]
    assert [s.attributes.get(semconv.ERROR_TYPE) for s in tries] == ["InternalServerError"] * 3 + [None]
    assert [s.attributes[semconv.HTTP_RESPONSE_STATUS_CODE] for s in tries] == [500, 500, 500, 200]
    assert [s.attributes[semconv.OTEL_LLM_ATTEMPT] for s in tries] == [0, 0, 0, 1]
    assert tries[3].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "InternalServerError"
    assert len({s.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] for s in tries}) == 1


def test_timeouts_retried_inside_a_chain_attempt_are_each_observed(fake, spans):
    from otel_llm.fallback import AllAttemptsFailed

    with openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=1, timeout=0.05) as slow_client:
        chain = one_chain(lambda: slow_client.chat.completions.create(model="gpt-4o@slow=0.5", messages=USER))
        with pytest.raises(AllAttemptsFailed):
            chain.run()
    first, last = llm_spans(spans)
    assert {s.attributes[semconv.ERROR_TYPE] for s in (first, last)} == {"APITimeoutError"}
    assert semconv.HTTP_RESPONSE_STATUS_CODE not in first.attributes
    assert [e.name for e in first.events] == ["exception"]
    assert last.attributes[semconv.HTTP_REQUEST_RESEND_COUNT] == 1
