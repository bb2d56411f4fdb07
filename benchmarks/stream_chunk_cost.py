"""Added time per streamed chunk of otel-llm's stream wrapper (run by hand, not in CI).

``instrumentation_overhead.py`` streams 4 (Ollama) or 6 (OpenAI) chunks per call, so
its figures are nearly all per-call cost. A real answer streams hundreds of chunks, and
there the wrapper's per-chunk step (its generator and the accumulator's ``add``) is
what counts. This measures that step alone: the chunks are the clients' own response
objects (``ollama.ChatResponse``, ``openai`` ``ChatCompletionChunk``), built once and
yielded by a plain generator, so no parsing or I/O hides the figure. Per chunk = (time
of a stream of ``--long`` chunks - time of a stream of ``--short`` chunks) / their
difference, which cancels every per-stream cost (the span, its end, the wrapper's set-up).

Variants, each minus the bare loop (``for chunk in stream: pass``):

* ``hand``: a hand-written loop reading what a span needs from each chunk inline
  (tool calls, finish reason, usage, the final Ollama chunk);
* ``otel-llm``: the same stream through ``SyncStreamWrapper`` with the default
  :class:`~otel_llm.extract.StreamAccumulator`, as the instrumentations wrap it.

The same three again for async streams (``async for`` over an async generator of the
same chunks; ``otel-llm`` through ``AsyncStreamWrapper``), each block of streams timed
inside one running event loop.

    python benchmarks/stream_chunk_cost.py [--short 10] [--long 210] [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from instrumentation_overhead import _install_sdk, _pin_to_one_cpu  # noqa: E402


def ollama_chunks(n: int) -> list[Any]:
    import ollama

    body = [ollama.ChatResponse(model="llama3.2", created_at="2024-01-01T00:00:00Z",
                                message={"role": "assistant", "content": "w "}, done=False) for _ in range(n - 1)]
    body.append(ollama.ChatResponse(
        model="llama3.2", created_at="2024-01-01T00:00:00Z", message={"role": "assistant", "content": ""},
        done=True, done_reason="stop", prompt_eval_count=12, eval_count=n - 1,
    ))
    return body


def openai_chunks(n: int) -> list[Any]:
    from openai.types.chat import ChatCompletionChunk

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None, choices: bool = True) -> Any:
        return ChatCompletionChunk.model_validate({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [], "usage": usage,
        })

    body = [chunk({"role": "assistant", "content": ""})]
    body += [chunk({"content": "w "}) for _ in range(n - 3)]
    body.append(chunk({}, "stop"))
    body.append(chunk({}, usage={"prompt_tokens": 12, "completion_tokens": n - 3, "total_tokens": n + 9}, choices=False))
    return body


def hand_ollama(stream: Iterator[Any]) -> None:
    tool_calls = 0
    final = None
    for part in stream:
        if part.message.tool_calls:
            tool_calls += len(part.message.tool_calls)
        if part.done:
            final = part
    assert final is not None


def hand_openai(stream: Iterator[Any]) -> None:
    usage = finish = None
    tool_calls = 0
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices:
            choice = chunk.choices[0]
            if choice.delta.tool_calls:
                tool_calls += sum(1 for tc in choice.delta.tool_calls if tc.id)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert usage is not None and finish is not None


def bare(stream: Iterator[Any]) -> None:
    for _chunk in stream:
        pass


async def hand_ollama_async(stream: AsyncIterator[Any]) -> None:
    """:func:`hand_ollama` for an async stream (the loop written out, as a user would)."""
    tool_calls = 0
    final = None
    async for part in stream:
        if part.message.tool_calls:
            tool_calls += len(part.message.tool_calls)
        if part.done:
            final = part
    assert final is not None


async def hand_openai_async(stream: AsyncIterator[Any]) -> None:
    """:func:`hand_openai` for an async stream (the loop written out, as a user would)."""
    usage = finish = None
    tool_calls = 0
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices:
            choice = chunk.choices[0]
            if choice.delta.tool_calls:
                tool_calls += sum(1 for tc in choice.delta.tool_calls if tc.id)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert usage is not None and finish is not None


async def bare_async(stream: AsyncIterator[Any]) -> None:
    async for _chunk in stream:
        pass


def make_wrapped() -> Callable[[Iterator[Any]], None]:
    from otel_llm.call import LLMCall
    from otel_llm.extract import StreamAccumulator
    from otel_llm.streaming import wrap_sync

    attrs = {"gen_ai.operation.name": "chat"}

    def wrapped(stream: Iterator[Any]) -> None:
        call = LLMCall.from_attributes("chat bench", dict(attrs))
        for _chunk in wrap_sync(call, stream, StreamAccumulator(False), False):
            pass

    return wrapped


def make_wrapped_async() -> Callable[[AsyncIterator[Any]], Awaitable[None]]:
    from otel_llm.call import LLMCall
    from otel_llm.extract import StreamAccumulator
    from otel_llm.streaming import wrap_async

    attrs = {"gen_ai.operation.name": "chat"}

    async def wrapped(stream: AsyncIterator[Any]) -> None:
        call = LLMCall.from_attributes("chat bench", dict(attrs))
        async for _chunk in wrap_async(call, stream, StreamAccumulator(False), False):
            pass

    return wrapped


async def _yield_each(chunks: list[Any]) -> AsyncIterator[Any]:
    for chunk in chunks:
        yield chunk


def per_async_stream(consume: Callable[[AsyncIterator[Any]], Awaitable[None]], chunks: list[Any], streams: int) -> float:
    """Seconds per async stream of ``chunks`` consumed by ``consume``, timed inside one
    event loop (its start and end are not timed)."""

    async def timed() -> float:
        start = time.perf_counter()
        for _ in range(streams):
            await consume(_yield_each(chunks))
        return (time.perf_counter() - start) / streams

    return asyncio.run(timed())


def per_stream(consume: Callable[[Iterator[Any]], None], chunks: list[Any], streams: int) -> float:
    """Seconds per stream of ``chunks`` consumed by ``consume``."""
    start = time.perf_counter()
    for _ in range(streams):
        consume(iter(chunks))
    return (time.perf_counter() - start) / streams


def added_per_chunk(
    variants: dict[str, Any], build: Callable[[int], list[Any]], timer: Callable[..., float],
    short: int, long_: int, repeats: int, streams: int,
) -> tuple[float, float]:
    """Nanoseconds per chunk the ``hand`` and ``otel-llm`` variants add to ``bare``:
    median over ``repeats`` of (a block of long streams - a block of short ones) per
    extra chunk, each variant timed by ``timer(consume, chunks, streams)``."""
    short_chunks, long_chunks = build(short), build(long_)
    for consume in variants.values():  # warm up every path
        timer(consume, short_chunks, 1)
        timer(consume, long_chunks, 1)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, consume in variants.items():
            extra = timer(consume, long_chunks, streams) - timer(consume, short_chunks, streams)
            samples[name].append(extra / (long_ - short))
    base = statistics.median(samples["bare"])
    return (statistics.median(samples["hand"]) - base) * 1e9, (statistics.median(samples["otel-llm"]) - base) * 1e9


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=10)
    parser.add_argument("--long", type=int, default=210)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--streams", type=int, default=200, help="streams per timed block")
    args = parser.parse_args(argv)
    _pin_to_one_cpu()
    _install_sdk()  # the same SDK set-up as the instrumentation benchmark
    wrapped, wrapped_async = make_wrapped(), make_wrapped_async()
    rows = (
        ("ollama chat", ollama_chunks, per_stream, {"bare": bare, "hand": hand_ollama, "otel-llm": wrapped}),
        ("openai chat", openai_chunks, per_stream, {"bare": bare, "hand": hand_openai, "otel-llm": wrapped}),
        ("ollama chat, async", ollama_chunks, per_async_stream,
         {"bare": bare_async, "hand": hand_ollama_async, "otel-llm": wrapped_async}),
        ("openai chat, async", openai_chunks, per_async_stream,
         {"bare": bare_async, "hand": hand_openai_async, "otel-llm": wrapped_async}),
    )

    print("| chunks | hand-written loop: added ns/chunk | otel-llm wrapper: added ns/chunk | otel-llm / hand |")
    print("|---|---|---|---|")
    for label, build, timer, variants in rows:
        hand_ns, ours_ns = added_per_chunk(variants, build, timer, args.short, args.long, args.repeats, args.streams)
        print(f"| {label} | {hand_ns:.0f} | {ours_ns:.0f} | {ours_ns / hand_ns:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
