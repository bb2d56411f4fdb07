"""A stream's span ends exactly once on every exit path, for sync and async streams.

Each test uses its own route, so the GenAI duration metric (recorded once, when the
span ends) can show the span ended exactly once even where the SDK would hide a
second ``end()``.
"""

from __future__ import annotations

import asyncio
import gc
import time

import ollama
import openai
import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from otel_llm import semconv
from otel_llm.call import LLMCall
from otel_llm.decorator import llm_call
from otel_llm.extract import StreamAccumulator
from otel_llm.streaming import UNTIL_FIRST_CHUNK, AsyncStreamWrapper, ChunkHook, SyncStreamWrapper, wrap_async, wrap_sync
from tests.conftest import collect_points
from tests.fake_provider import CACHED_TOKENS, PROMPT_TOKENS, FakeProvider

A = semconv


class ProviderDown(Exception):
    """The provider dropped the stream."""


def ollama_chunks(n: int = 3) -> list[dict]:
    out = [{"model": "llama3.2", "message": {"role": "assistant", "content": f"w{i} "}, "done": False} for i in range(n)]
    out.append({"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
                "done_reason": "stop", "prompt_eval_count": 9, "eval_count": n})
    return out


@pytest.fixture
def route(request) -> str:
    """A route unique to the test, to pick its metric points out."""
    return f"route-{request.node.name}"


def ended_once(spans, metric_reader, route):
    """The test's one span, after checking it ended (and was measured) exactly once."""
    finished = [s for s in spans.get_finished_spans() if s.attributes.get(A.OTEL_LLM_ROUTE) == route]
    assert len(finished) == 1, finished
    points = [p for p in collect_points(metric_reader, A.METRIC_OPERATION_DURATION)
              if p.attributes.get(A.OTEL_LLM_ROUTE) == route]
    assert sum(p.count for p in points) == 1
    return finished[0]


def assert_ok(span):
    assert span.status.status_code is StatusCode.UNSET
    assert A.ERROR_TYPE not in span.attributes


def assert_failed(span, error_type):
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == error_type


# --- sync generator functions -------------------------------------------------------------------
def sync_stream(route, events=None, fail_after=None, error=None):
    @llm_call(provider="ollama", model="llama3.2", route=route)
    def chat():
        try:
            for i, chunk in enumerate(ollama_chunks()):
                if fail_after is not None and i == fail_after:
                    raise error
                yield chunk
        finally:
            if events is not None:
                events.append("generator finalised")

    return chat


def test_sync_exhausted(spans, metric_reader, route):
    chunks = list(sync_stream(route)())
    assert chunks == ollama_chunks()  # chunks are handed through unchanged
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    a = span.attributes
    assert a[A.GEN_AI_REQUEST_STREAM] is True
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 3)
    assert a[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0


def test_sync_break(spans, metric_reader, route):
    for chunk in sync_stream(route)():
        break
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the final chunk was never read


def test_a_loop_left_early_and_taken_up_again_reads_on_and_ends_once(spans, metric_reader, route):
    stream = sync_stream(route)()
    for first in stream:
        break
    assert spans.get_finished_spans() == ()  # the consumer still holds the stream: not ended yet
    rest = [chunk for chunk in stream]  # a second loop goes on where the first stopped
    assert [first, *rest] == ollama_chunks()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 3


def test_next_and_for_loops_share_one_position_on_an_iterable_stream(spans, metric_reader, route):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = SyncStreamWrapper(call, ollama_chunks())  # a list: iterable, not an iterator
    assert next(stream) == ollama_chunks()[0]
    assert list(stream) == ollama_chunks()[1:]  # not started again
    assert list(stream) == []
    span = ended_once(spans, metric_reader, route)
    assert (span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 3)


def test_close_inside_a_loop_ends_the_span_with_what_was_read(spans, metric_reader, route):
    events = []
    stream = sync_stream(route, events)()
    seen = []
    for chunk in stream:
        seen.append(chunk)
        stream.close()
    assert seen == ollama_chunks()[:1] and events == ["generator finalised"]
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


ACTIVATE = pytest.mark.parametrize("activate", [True, False, UNTIL_FIRST_CHUNK])


def wrapped_chunks(route, activate, events=None):
    """An Ollama-shaped chunk generator wrapped as the instrumentations wrap streams."""
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)

    def chunks():
        try:
            yield from ollama_chunks()
        finally:
            if events is not None:
                events.append("generator finalised")

    return SyncStreamWrapper(call, chunks(), activate=activate)


@ACTIVATE
def test_close_later_in_a_loop_over_an_iterable_keeps_what_was_read_before(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = SyncStreamWrapper(call, ollama_chunks(), activate=activate)  # a list: close() leaves the rest
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 2:
            stream.close()
    assert seen == ollama_chunks()  # the consumer still gets every chunk, as from the list itself
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes  # the final chunk came after the end


@ACTIVATE
def test_close_later_in_a_loop_over_a_generator_ends_it_there(spans, metric_reader, route, activate):
    events = []
    stream = wrapped_chunks(route, activate, events)
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 2:
            stream.close()
    assert seen == ollama_chunks()[:2] and events == ["generator finalised"]
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


@ACTIVATE
def test_an_error_thrown_into_the_loop_later_is_the_consumers(spans, metric_reader, route, activate):
    stream = wrapped_chunks(route, activate)
    iterator = iter(stream)
    next(iterator), next(iterator)
    with pytest.raises(KeyError):
        iterator.throw(KeyError("consumer side"))
    assert spans.get_finished_spans() == ()  # the stream is still the consumer's to read or close
    del iterator, stream
    gc.collect()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)


@ACTIVATE
def test_consumer_error_later_in_the_loop_does_not_fail_the_call(spans, metric_reader, route, activate):
    with pytest.raises(KeyError):
        for i, chunk in enumerate(wrapped_chunks(route, activate)):
            if i == 2:
                raise KeyError("consumer bug")
    gc.collect()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


@ACTIVATE
def test_stream_error_later_in_the_loop_fails_the_call(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)

    def chunks():
        yield from ollama_chunks()[:2]
        raise ProviderDown("connection reset")

    with pytest.raises(ProviderDown):
        for _chunk in SyncStreamWrapper(call, chunks(), activate=activate):
            pass
    assert_failed(ended_once(spans, metric_reader, route), "ProviderDown")


@ACTIVATE
def test_a_stream_that_fails_before_its_first_chunk_fails_the_call(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    boom = ProviderDown("refused")

    def chunks():
        raise boom
        yield  # a generator

    with pytest.raises(ProviderDown) as caught:
        for _chunk in SyncStreamWrapper(call, chunks(), activate=activate):
            pass
    assert caught.value is boom
    span = ended_once(spans, metric_reader, route)
    assert_failed(span, "ProviderDown")
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes


@ACTIVATE
def test_an_empty_stream_ends_ok_without_time_to_first_chunk(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    assert list(SyncStreamWrapper(call, iter(()), activate=activate)) == []
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes


@ACTIVATE
@pytest.mark.parametrize("again", ["for", "next"])
def test_a_loop_left_after_the_first_chunk_is_taken_up_where_it_stopped(spans, metric_reader, route, activate, again):
    stream = wrapped_chunks(route, activate)
    for first in stream:
        break
    assert spans.get_finished_spans() == ()  # still the consumer's
    if again == "for":
        rest = list(stream)
    else:
        rest = []
        while True:
            try:
                rest.append(next(stream))
            except StopIteration:
                break
    assert [first, *rest] == ollama_chunks()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert (span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 3)


class BrokenAccumulator:
    """Fails on every chunk and at the end."""

    def add(self, chunk):
        raise ValueError("cannot read")

    def finish(self, call):
        raise ValueError("cannot record")


@ACTIVATE
def test_a_broken_accumulator_never_breaks_the_loop(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = SyncStreamWrapper(call, iter(ollama_chunks()), BrokenAccumulator(), activate=activate)
    assert list(stream) == ollama_chunks()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


@ACTIVATE
def test_a_stream_closed_before_it_is_read_is_read_as_it_is(spans, metric_reader, route, activate):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    hooked = []
    hook = ChunkHook(call, lambda c, chunk: hooked.append(chunk))
    stream = SyncStreamWrapper(call, ollama_chunks(), hook, activate=activate)  # a list: close() leaves it readable
    stream.close()
    assert list(stream) == ollama_chunks()  # what the list gives, nothing recorded
    assert hooked == []
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


@pytest.mark.parametrize("activate, current_at", [
    (True, [True, True, True, True, True]),  # every step, the last (the end) included
    (UNTIL_FIRST_CHUNK, [True, False, False, False, False]),
    (False, [False, False, False, False, False]),
])
@pytest.mark.parametrize("first_read", ["for", "next"])
def test_the_span_is_current_while_the_steps_asked_for_run(spans, metric_reader, route, activate, current_at, first_read):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    seen = []

    def chunks():
        for chunk in ollama_chunks():
            seen.append(trace.get_current_span() is call.span)
            yield chunk
        seen.append(trace.get_current_span() is call.span)

    stream = SyncStreamWrapper(call, chunks(), activate=activate)
    first = [next(stream)] if first_read == "next" else []
    assert first + list(stream) == ollama_chunks()
    assert seen == current_at
    assert trace.get_current_span() is not call.span  # nothing left attached
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert (span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS]) == (9, 3)


def test_sync_close(spans, metric_reader, route):
    events = []
    stream = sync_stream(route, events)()
    next(stream)
    stream.close()
    assert events == ["generator finalised"]  # close reached the generator
    assert_ok(ended_once(spans, metric_reader, route))
    stream.close()  # a second close changes nothing
    ended_once(spans, metric_reader, route)


def test_sync_garbage_collected_without_close(spans, metric_reader, route):
    stream = sync_stream(route)()
    next(stream)
    next(stream)
    assert spans.get_finished_spans() == ()
    del stream
    gc.collect()
    assert_ok(ended_once(spans, metric_reader, route))


def test_sync_never_iterated_then_collected(spans, metric_reader, route):
    stream = sync_stream(route)()
    del stream
    gc.collect()
    span = ended_once(spans, metric_reader, route)
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in span.attributes


def test_sync_exception_mid_stream_propagates_unchanged_and_stays_error(spans, metric_reader, route):
    boom = ProviderDown("connection reset")
    stream = sync_stream(route, fail_after=2, error=boom)()
    received = []
    with pytest.raises(ProviderDown) as caught:
        for chunk in stream:
            received.append(chunk)
    assert caught.value is boom
    assert len(received) == 2
    stream.close()  # closing afterwards never turns the failure into OK
    del stream
    gc.collect()
    span = ended_once(spans, metric_reader, route)
    assert_failed(span, "ProviderDown")
    assert span.events[0].name == "exception"


def test_sync_stream_consumed_by_a_cancelled_task_ends_once(spans, metric_reader, route):
    """A sync stream cannot be interrupted inside ``next``; a cancelled consumer abandons it."""
    async def main():
        got_one = asyncio.Event()

        async def consume():
            for _ in sync_stream(route)():
                got_one.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gc.collect()
    assert_ok(ended_once(spans, metric_reader, route))


def test_consumer_error_does_not_fail_the_call(spans, metric_reader, route):
    with pytest.raises(KeyError):
        for chunk in sync_stream(route)():
            raise KeyError("consumer bug")
    gc.collect()
    assert_ok(ended_once(spans, metric_reader, route))


def test_with_block_closes_and_ends(spans, metric_reader, route):
    events = []
    with sync_stream(route, events)() as stream:
        next(stream)
    assert events == ["generator finalised"]
    assert_ok(ended_once(spans, metric_reader, route))


def test_generator_send_is_forwarded(spans, metric_reader, route):
    @llm_call(provider="ollama", model="llama3.2", route=route)
    def echo():
        received = yield {"model": "llama3.2", "done": False}
        yield {"model": "llama3.2", "done": True, "eval_count": len(received)}

    stream = echo()
    next(stream)
    assert stream.send("abcd") == {"model": "llama3.2", "done": True, "eval_count": 4}
    with pytest.raises(StopIteration):
        next(stream)
    assert ended_once(spans, metric_reader, route).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


# --- async generator functions --------------------------------------------------------------------
def async_stream(route, events=None, fail_after=None, error=None, wait_after=None, gate=None):
    @llm_call(provider="ollama", model="llama3.2", route=route)
    async def chat():
        try:
            for i, chunk in enumerate(ollama_chunks()):
                if fail_after is not None and i == fail_after:
                    raise error
                if wait_after is not None and i == wait_after:
                    await gate.wait()
                await asyncio.sleep(0)
                yield chunk
        finally:
            if events is not None:
                events.append("generator finalised")

    return chat


def test_async_exhausted(spans, metric_reader, route):
    async def main():
        return [c async for c in async_stream(route)()]

    assert asyncio.run(main()) == ollama_chunks()
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes


def test_async_break(spans, metric_reader, route):
    async def main():
        async for chunk in async_stream(route)():
            break
        gc.collect()

    asyncio.run(main())
    assert_ok(ended_once(spans, metric_reader, route))


def test_async_aclose(spans, metric_reader, route):
    events = []

    async def main():
        stream = async_stream(route, events)()
        await stream.__anext__()
        await stream.aclose()
        assert events == ["generator finalised"]
        await stream.aclose()

    asyncio.run(main())
    assert_ok(ended_once(spans, metric_reader, route))


def test_async_garbage_collected_without_close(spans, metric_reader, route):
    async def main():
        stream = async_stream(route)()
        await stream.__anext__()
        assert spans.get_finished_spans() == ()
        del stream
        gc.collect()

    asyncio.run(main())
    assert_ok(ended_once(spans, metric_reader, route))


def test_async_cancelled_while_waiting_for_a_chunk(spans, metric_reader, route):
    async def main():
        got_one = asyncio.Event()
        never = asyncio.Event()

        async def consume():
            async for _ in async_stream(route, wait_after=1, gate=never)():
                got_one.set()

        task = asyncio.create_task(consume())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gc.collect()
    span = ended_once(spans, metric_reader, route)
    assert_failed(span, "CancelledError")


def test_async_exception_mid_stream_propagates_unchanged(spans, metric_reader, route):
    boom = ProviderDown("reset")

    async def main():
        stream = async_stream(route, fail_after=1, error=boom)()
        with pytest.raises(ProviderDown) as caught:
            async for _ in stream:
                pass
        assert caught.value is boom
        await stream.aclose()

    asyncio.run(main())
    assert_failed(ended_once(spans, metric_reader, route), "ProviderDown")


def test_async_with_block(spans, metric_reader, route):
    async def main():
        async with async_stream(route)() as stream:
            await stream.__anext__()

    asyncio.run(main())
    assert_ok(ended_once(spans, metric_reader, route))


# --- time to first chunk ------------------------------------------------------------------------------
def test_time_to_first_chunk_is_measured_from_the_call(spans, metric_reader, route):
    marks = {}

    @llm_call(provider="openai", model="gpt-4o-mini", route=route)
    def request():
        time.sleep(0.02)  # waiting for response headers: part of time to first chunk
        marks["returned"] = time.time_ns()
        return iter(ollama_chunks())

    before = time.time_ns()
    stream = request()
    next(stream)
    after_first = time.time_ns()
    list(stream)
    span = ended_once(spans, metric_reader, route)
    ttfc_ns = span.attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] * 1e9
    tolerance_ns = 1_000  # the attribute is float seconds
    assert span.start_time >= before
    assert ttfc_ns >= marks["returned"] - span.start_time - tolerance_ns
    assert span.start_time + ttfc_ns <= after_first + tolerance_ns
    points = [p for p in collect_points(metric_reader, A.METRIC_TIME_TO_FIRST_CHUNK)
              if p.attributes.get(A.OTEL_LLM_ROUTE) == route]
    assert sum(p.count for p in points) == 1


# --- the wrappers used directly (as the auto-instrumentation does) -----------------------------------
def test_wrapper_api_with_a_chunk_hook(spans, metric_reader, route):
    seen = []
    call = LLMCall(provider="custom", model="m", route=route, stream=True)
    stream = SyncStreamWrapper(call, ["a", "bb", "ccc"], ChunkHook(call, lambda c, chunk: seen.append(chunk)))
    assert list(stream) == ["a", "bb", "ccc"]
    assert seen == ["a", "bb", "ccc"]
    assert_ok(ended_once(spans, metric_reader, route))


def test_async_wrapper_over_an_async_iterable(spans, metric_reader, route):
    class Chunks:
        def __aiter__(self):
            async def gen():
                for c in ollama_chunks(2):
                    yield c
            return gen()

    async def main():
        call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
        return [c async for c in AsyncStreamWrapper(call, Chunks())]

    assert len(asyncio.run(main())) == 3
    assert ended_once(spans, metric_reader, route).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2



def test_wrap_sync_makes_the_same_wrapper_as_the_class(spans, metric_reader, route):
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = wrap_sync(call, ollama_chunks(2), StreamAccumulator(), True)
    assert type(stream) is SyncStreamWrapper and stream.__wrapped__ is not None
    assert len(list(stream)) == 3
    assert ended_once(spans, metric_reader, route).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def test_wrap_async_makes_the_same_wrapper_as_the_class(spans, metric_reader, route):
    async def gen():
        for c in ollama_chunks(2):
            yield c

    async def main():
        call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
        astream = wrap_async(call, gen(), StreamAccumulator(), False)
        assert type(astream) is AsyncStreamWrapper
        return [c async for c in astream]

    assert len(asyncio.run(main())) == 3
    assert ended_once(spans, metric_reader, route).attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == 2


def _failing_after(n: int):
    def gen():
        yield from ollama_chunks()[:n]
        raise ProviderDown("gone")

    return gen()


@pytest.mark.parametrize("read", ["for", "next"])
def test_on_error_is_called_once_before_the_span_ends_when_the_stream_fails(spans, metric_reader, route, read):
    seen = []

    def on_error(call, exc):
        assert not call.ended  # still time to record what the exception says
        seen.append(type(exc).__name__)
        call.set_http_status(502)

    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = wrap_sync(call, _failing_after(1), StreamAccumulator(), UNTIL_FIRST_CHUNK, None, on_error)
    with pytest.raises(ProviderDown):
        if read == "for":
            list(stream)
        else:
            while True:
                next(stream)
    stream.close()
    assert seen == ["ProviderDown"]
    span = ended_once(spans, metric_reader, route)
    assert_failed(span, "ProviderDown")
    assert span.attributes[A.HTTP_RESPONSE_STATUS_CODE] == 502


def test_on_error_is_not_called_when_the_stream_ends_well_and_its_failure_never_breaks_the_stream(
    spans, metric_reader, route,
):
    def on_error(call, exc):
        raise RuntimeError("a broken hook")

    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = wrap_sync(call, ollama_chunks(2), StreamAccumulator(), False, None, on_error)
    assert len(list(stream)) == 3
    assert_ok(ended_once(spans, metric_reader, route))

    other = f"{route}-failing"
    call = LLMCall(provider="ollama", model="llama3.2", route=other, stream=True)
    with pytest.raises(ProviderDown):
        list(wrap_sync(call, _failing_after(0), StreamAccumulator(), False, None, on_error))
    assert_failed(ended_once(spans, metric_reader, other), "ProviderDown")


def test_async_on_error_is_called_once_when_the_stream_fails(spans, metric_reader, route):
    seen = []

    async def gen():
        yield ollama_chunks()[0]
        raise ProviderDown("gone")

    async def main():
        call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
        astream = wrap_async(call, gen(), StreamAccumulator(), UNTIL_FIRST_CHUNK, None, lambda c, e: seen.append(e))
        with pytest.raises(ProviderDown):
            async for _chunk in astream:
                pass
        await astream.aclose()

    asyncio.run(main())
    assert [type(e) for e in seen] == [ProviderDown]
    assert_failed(ended_once(spans, metric_reader, route), "ProviderDown")

# --- real clients over HTTP returning streams -------------------------------------------------------
@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p


MESSAGES = [{"role": "user", "content": "hi"}]


def openai_stream_call(route):
    @llm_call(provider="openai", route=route)
    def ask(client, model, **extra):
        return client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **extra)

    return ask


def test_openai_stream_exhausted_through_real_client(provider, spans, metric_reader, route):
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    stream = openai_stream_call(route)(client, "gpt-4o-mini",
                                       tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}])
    assert isinstance(stream, openai.Stream)  # the proxy is transparent to isinstance
    assert stream.response.status_code == 200  # and to the stream's own attributes
    chunks = list(stream)
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    span = ended_once(spans, metric_reader, route)
    assert_ok(span)
    a = span.attributes
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"  # read from the positional argument
    assert a[A.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini"
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHED_TOKENS
    assert a[A.OTEL_LLM_TOOLS_OFFERED] == 1
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup",)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert a[A.GEN_AI_REQUEST_STREAM] is True


def test_openai_stream_closed_early_through_real_client(provider, spans, metric_reader, route):
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    with openai_stream_call(route)(client, "gpt-4o-mini@chunks=20") as stream:
        next(stream)
    assert stream.response.is_closed
    assert_ok(ended_once(spans, metric_reader, route))


def test_openai_stream_error_event_mid_stream(provider, spans, metric_reader, route):
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    stream = openai_stream_call(route)(client, "gpt-4o-mini@midstream=error@chunks=6")
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert_failed(ended_once(spans, metric_reader, route), type(caught.value).__qualname__)


def test_openai_async_stream_through_real_client(provider, spans, metric_reader, route):
    @llm_call(provider="openai", route=route)
    async def ask(client, model):
        return await client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True})

    async def main():
        client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
        stream = await ask(client, "gpt-4o-mini")
        assert isinstance(stream, openai.AsyncStream)
        first = await stream.__anext__()
        rest = [c async for c in stream]
        await client.close()
        return [first, *rest]

    chunks = asyncio.run(main())
    assert chunks
    span = ended_once(spans, metric_reader, route)
    assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS


def test_openai_async_stream_closed_early(provider, spans, metric_reader, route):
    @llm_call(provider="openai", route=route)
    async def ask(client, model):
        return await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)

    async def main():
        client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
        stream = await ask(client, "gpt-4o-mini@chunks=20")
        await stream.__anext__()
        await stream.close()
        assert stream.response.is_closed
        await client.close()

    asyncio.run(main())
    assert_ok(ended_once(spans, metric_reader, route))


def test_ollama_stream_through_real_client(provider, spans, metric_reader, route):
    @llm_call(provider="ollama", route=route)
    def chat(client, model):
        return client.chat(model=model, messages=MESSAGES, stream=True)

    client = ollama.Client(host=provider.url)
    chunks = list(chat(client, "llama3.2"))
    assert chunks[-1].done is True
    a = ended_once(spans, metric_reader, route).attributes
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[A.GEN_AI_RESPONSE_MODEL] == "llama3.2"
    assert a[A.OTEL_LLM_OLLAMA_TOTAL_DURATION] == pytest.approx(0.25)


def test_ollama_async_stream_cancelled_through_real_client(provider, spans, metric_reader, route):
    @llm_call(provider="ollama", route=route)
    async def chat(client, model):
        return await client.chat(model=model, messages=MESSAGES, stream=True)

    async def main():
        client = ollama.AsyncClient(host=provider.url)
        got_one = asyncio.Event()

        async def consume():
            async for _ in await chat(client, "llama3.2@gap=30@chunks=4"):
                got_one.set()

        task = asyncio.create_task(consume())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    gc.collect()
    assert_failed(ended_once(spans, metric_reader, route), "CancelledError")


def test_attributes_are_read_from_and_written_to_the_wrapped_stream(spans, metric_reader, route):
    class Stream:
        def __init__(self):
            self.response = "headers"
            self._items = iter(ollama_chunks(1))

        def __next__(self):
            return next(self._items)

        def __iter__(self):
            return self

    inner = Stream()
    call = LLMCall(provider="ollama", model="llama3.2", route=route, stream=True)
    stream = SyncStreamWrapper(call, inner)
    assert stream.response == "headers"
    stream.note = "kept"
    assert inner.note == "kept"
    assert isinstance(stream, Stream) and stream.__wrapped__ is inner
    assert len(list(stream)) == 2
    assert_ok(ended_once(spans, metric_reader, route))
