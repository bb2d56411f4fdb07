"""Fallback chains whose target returns a stream: the attempt's span ends with the stream.

The chain decides when the target returns (the caller gets the stream, no fallback
after that); the attempt's span is the observation of the streamed provider call, so it
stays open until the stream ends by the stream lifecycle rules (exhausted, break then
close or collection, an error mid-stream). These targets are plain and decorated
functions; the instrumented clients' streams are in the clients' own test modules.
"""

from __future__ import annotations

import gc

import pytest
from opentelemetry.trace import StatusCode

from otel_llm import llm_call, semconv
from otel_llm.fallback import Target, fallback_attempts, fallback_chain
from otel_llm.streaming import SyncStreamWrapper

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class MidStream(Exception):
    pass


def _chunks(model: str, fail: bool = False):
    yield {"model": model, "message": {"role": "assistant", "content": "he"}, "done": False}
    if fail:
        raise MidStream("connection lost")
    yield {"model": model, "message": {"role": "assistant", "content": "llo"}, "done": True,
           "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 2}


async def _achunks(model: str):
    for chunk in _chunks(model):
        yield chunk


def _attempts(spans):
    return [s for s in spans.get_finished_spans() if s.attributes.get(semconv.OTEL_LLM_ATTEMPT) is not None]


def _chain(spans):
    (chain,) = [s for s in spans.get_finished_spans() if s.name.startswith("fallback_chain ")]
    return chain


def _assert_streamed(span):
    a = span.attributes
    assert a[semconv.GEN_AI_REQUEST_STREAM] is True
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert (a[semconv.GEN_AI_USAGE_INPUT_TOKENS], a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS]) == (7, 2)
    assert 0 <= a[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] <= (span.end_time - span.start_time) / 1e9
    assert a[semconv.OTEL_LLM_ROUTE] == "local"  # the chain's attributes stay


def test_a_returned_stream_keeps_the_attempt_open_until_it_is_exhausted(spans):
    chain = fallback_chain("answer", [Target("ollama", "llama3.2", route="local", call=lambda: _chunks("llama3.2"))])
    stream = chain.run()
    assert _attempts(spans) == []  # the chain has decided; the attempt is still streaming
    assert _chain(spans).attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"
    assert [c["message"]["content"] for c in stream] == ["he", "llo"]
    (attempt,) = _attempts(spans)
    _assert_streamed(attempt)
    assert attempt.status.status_code is StatusCode.UNSET


def test_a_decorated_target_returning_a_stream_is_one_attempt_with_the_streams_data(spans):
    @llm_call(provider="ollama")
    def ask(model):
        return _chunks(model)

    @llm_call(provider="ollama")
    def ask_generator(model):
        yield from _chunks(model)

    for fn in (ask, ask_generator):
        spans.clear()
        chain = fallback_chain("answer", [Target("ollama", "llama3.2", route="local", call=lambda f=fn: f("llama3.2"))])
        assert len(list(chain.run())) == 2
        (attempt,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]  # one span, not two
        _assert_streamed(attempt)


def test_a_stream_left_early_ends_its_attempt_ok_when_closed_or_collected(spans):
    chain = fallback_chain("answer", [Target("ollama", "llama3.2", route="local", call=lambda: _chunks("llama3.2"))])
    stream = chain.run()
    next(stream)
    stream.close()
    (closed,) = _attempts(spans)
    assert closed.status.status_code is StatusCode.UNSET
    assert semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in closed.attributes

    spans.clear()
    for _chunk in chain.run():
        break  # the loop dropped the only reference
    gc.collect()
    (collected,) = _attempts(spans)
    assert collected.status.status_code is StatusCode.UNSET


def test_a_stream_failing_mid_way_fails_its_attempt_but_the_chain_does_not_fall_back(spans):
    backup = []
    chain = fallback_chain("answer", [
        Target("ollama", "llama3.2", route="local", call=lambda: _chunks("llama3.2", fail=True)),
        Target("openai", "gpt-4o", route="backup", call=lambda: backup.append(1)),
    ])
    received = []
    with pytest.raises(MidStream):
        for chunk in chain.run():
            received.append(chunk)
    assert len(received) == 1 and backup == []  # the caller held the stream: no fallback
    (attempt,) = _attempts(spans)
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.attributes[semconv.ERROR_TYPE] == "MidStream"
    assert _chain(spans).attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"


async def test_arun_keeps_the_attempt_open_for_an_async_stream(spans):
    async def ask():
        return _achunks("llama3.2")

    chain = fallback_chain("answer", [Target("ollama", "llama3.2", route="local", call=ask)])
    stream = await chain.arun()
    assert _attempts(spans) == []
    assert [c["message"]["content"] async for c in stream] == ["he", "llo"]
    (attempt,) = _attempts(spans)
    _assert_streamed(attempt)


def test_with_attempt_leaves_a_call_open_that_a_stream_wrapper_owns(spans):
    for attempt in fallback_attempts("answer", [Target("ollama", "llama3.2", route="local")]):
        with attempt as call:
            stream = SyncStreamWrapper(call, _chunks("llama3.2"))
    assert _attempts(spans) == []
    list(stream)
    (span,) = _attempts(spans)
    assert tuple(span.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)


def test_without_recording_responses_a_returned_stream_is_returned_as_is(spans):
    generator = _chunks("llama3.2")
    chain = fallback_chain("answer", [Target("ollama", "llama3.2", call=lambda: generator)], record_response=False)
    assert chain.run() is generator
    (attempt,) = _attempts(spans)  # ended when the target returned, as before
    assert semconv.GEN_AI_REQUEST_STREAM not in attempt.attributes
