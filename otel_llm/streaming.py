"""Streams whose LLM span ends exactly once, however the consumer leaves them.

A streamed response is a span that outlives the call that opened it: it ends when the
consumer is done with the stream, and "done" has many shapes. :class:`SyncStreamWrapper`
and :class:`AsyncStreamWrapper` wrap any (async) iterator — a generator, an OpenAI
``Stream``/``AsyncStream``, an Ollama chunk generator — and end the call's span on every
exit path:

============================== =========================================================
exit path                      span outcome
============================== =========================================================
exhausted                      ended, status unset (OK), totals recorded
``close()`` / ``aclose()``     ended OK with what was accumulated so far
consumer ``break``             ended OK when the stream is closed or collected (in
                               CPython: at once, unless the consumer still holds it)
garbage-collected unclosed     ended OK from the finaliser with what was accumulated
``with`` / ``async with`` exit ended OK (the stream is closed)
exception from the stream      ERROR, ``error.type`` = exception class; re-raised as is
cancelled (``CancelledError``) ERROR, ``error.type`` ``CancelledError``: a cancelled call
                               did not succeed; re-raised as is
============================== =========================================================

An exception raised by the *consumer* (not by the stream) does not fail the call: the
provider answered; the consumer stopped reading. The status set by a failure is never
overwritten: once the span has ended, nothing more is recorded.

The first chunk marks time to first chunk, measured from the call's start
(:attr:`LLMCall.start_time_ns <otel_llm.call.LLMCall.start_time_ns>`), not from the
first response header. Every chunk is handed to an accumulator (by default
:class:`~otel_llm.extract.StreamAccumulator`) whose ``finish(call)`` records the totals
just before the span ends.

The wrappers are transparent: chunks are returned unchanged, other attributes (an OpenAI
stream's ``.response``, a generator's ``gi_frame``) are read from the wrapped object, and
``isinstance(wrapper, type(stream))`` holds. While a chunk is being produced the call's
span is the current span, so spans the producer opens (an HTTP client's) nest under it.

Usage (this is how the decorator and the auto-instrumentation use them)::

    call = LLMCall(provider="openai", model="gpt-4o-mini", stream=True)
    try:
        stream = client.chat.completions.create(..., stream=True)
    except BaseException as exc:
        call.end(exc)
        raise
    return SyncStreamWrapper(call, stream)          # or AsyncStreamWrapper(call, astream)
"""

from __future__ import annotations

import inspect
from types import TracebackType
from typing import TYPE_CHECKING, Any, AsyncIterable, Callable, Generic, Iterable, Protocol, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from otel_llm._safety import report
from otel_llm.extract import StreamAccumulator

if TYPE_CHECKING:
    from otel_llm.call import LLMCall

T = TypeVar("T")


class ChunkAccumulator(Protocol):
    """What a stream wrapper feeds: ``add`` per chunk, ``finish`` once before the span ends."""

    def add(self, chunk: Any) -> None: ...

    def finish(self, call: LLMCall) -> None: ...


class ChunkHook:
    """Adapts a user hook ``hook(call, chunk) -> None`` to :class:`ChunkAccumulator`.

    The hook is called for every chunk; its failures are logged (rate-limited) and
    skipped, so a broken hook never interrupts the stream.
    """

    __slots__ = ("_call", "_hook")

    def __init__(self, call: LLMCall, hook: Callable[[LLMCall, Any], None]) -> None:
        self._call = call
        self._hook = hook

    def add(self, chunk: Any) -> None:
        try:
            self._hook(self._call, chunk)
        except Exception as exc:  # noqa: BLE001 - a user hook never breaks the stream
            report("running the chunk_extractor hook", exc)

    def finish(self, call: LLMCall) -> None:
        return None


#: ``activate`` value: make the span current only until the first chunk has been read —
#: for clients that send the request on the first read and then only parse the body, so
#: the context switch is not paid again for every chunk.
UNTIL_FIRST_CHUNK = "until first chunk"

#: The wrappers' own state is set with this, past their forwarding ``__setattr__`` (which
#: hands every other name to the wrapped stream): it runs several times per stream.
_set = object.__setattr__


def _init(wrapper: Any, call: LLMCall, stream: Any, accumulator: Any, activate: bool | str) -> None:
    """The state both wrappers start with (all but the iterator's step)."""
    _set(wrapper, "_llm_done", False)
    _set(wrapper, "_llm_first", True)
    _set(wrapper, "_llm_call", call)
    _set(wrapper, "_llm_stream", stream)
    _set(wrapper, "_llm_acc", accumulator)
    _set(wrapper, "_llm_add", accumulator.add)
    _set(wrapper, "_llm_ctx", trace.set_span_in_context(call.span) if activate else None)
    _set(wrapper, "_llm_ctx_once", activate == UNTIL_FIRST_CHUNK)
    # The general step runs until the first chunk (time to first chunk, context until the
    # first chunk), for every chunk when the span is made current per chunk, and after the
    # end; every other chunk takes the short path of ``__next__`` / ``__anext__``.
    _set(wrapper, "_llm_slow", True)


def _end(wrapper: Any, error: BaseException | None) -> None:
    """Finish the accumulator and end the span, once; never raises."""
    if wrapper._llm_done:
        return
    _set(wrapper, "_llm_done", True)
    _set(wrapper, "_llm_slow", True)
    call = wrapper._llm_call
    try:
        wrapper._llm_acc.finish(call)
    except Exception as exc:  # noqa: BLE001
        report("recording a streamed response", exc)
    try:
        call.end(error)
    except Exception as exc:  # noqa: BLE001
        report("ending a streamed LLM span", exc)


def _attach(ctx: Any) -> object | None:
    if ctx is None:
        return None
    try:
        return otel_context.attach(ctx)
    except Exception as exc:  # noqa: BLE001
        report("activating the LLM span for a chunk", exc)
        return None


def _first_chunk(wrapper: Any) -> None:
    _set(wrapper, "_llm_first", False)
    if wrapper._llm_ctx_once:
        _set(wrapper, "_llm_ctx", None)
    _set(wrapper, "_llm_slow", wrapper._llm_ctx is not None or wrapper._llm_done)
    try:
        wrapper._llm_call.first_chunk()
    except Exception as exc:  # noqa: BLE001
        report("recording time to first chunk", exc)


class SyncStreamWrapper(Generic[T]):
    """A transparent proxy over a sync stream that ends ``call``'s span exactly once.

    :param call: the in-flight :class:`~otel_llm.call.LLMCall`; the wrapper owns its end.
    :param stream: an iterator (or iterable) of chunks, e.g. a generator or an OpenAI ``Stream``.
    :param accumulator: receives each chunk and records the totals at the end; default
        :class:`~otel_llm.extract.StreamAccumulator` (OpenAI and Ollama chunks).
    :param activate: make the call's span current while each chunk is produced
        (:data:`UNTIL_FIRST_CHUNK`: only until the first chunk has been produced).

    Iterating, ``send``/``throw`` (when the stream is a generator), ``close()`` and
    ``with`` are intercepted; anything else is read from the wrapped stream.
    """

    __slots__ = (
        "_llm_call", "_llm_stream", "_llm_next", "_llm_acc", "_llm_add", "_llm_ctx", "_llm_ctx_once", "_llm_done",
        "_llm_first", "_llm_slow",
    )

    def __init__(
        self,
        call: LLMCall,
        stream: Iterable[T],
        accumulator: ChunkAccumulator | None = None,
        *,
        activate: bool | str = True,
    ) -> None:
        _init(self, call, stream, accumulator if accumulator is not None else StreamAccumulator(), activate)
        iterator = stream if hasattr(type(stream), "__next__") else iter(stream)
        _set(self, "_llm_next", iterator.__next__)

    # --- iteration -----------------------------------------------------------------------
    def __iter__(self) -> "SyncStreamWrapper[T]":
        return self

    def __next__(self) -> T:
        if self._llm_slow:
            return self._llm_step(self._llm_next)
        # The short path (runs for most chunks): read, hand to the accumulator, return.
        try:
            chunk = self._llm_next()
        except StopIteration:
            _end(self, None)
            raise
        except BaseException as exc:
            _end(self, exc)
            raise
        try:
            self._llm_add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk

    def _llm_step(self, method: Callable[..., T], *args: Any) -> T:
        if self._llm_done:
            return method(*args)
        ctx = self._llm_ctx
        token = _attach(ctx) if ctx is not None else None
        try:
            chunk = method(*args)
        except StopIteration:
            _end(self, None)
            raise
        except BaseException as exc:
            _end(self, exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
        if self._llm_first:
            _first_chunk(self)
        try:
            self._llm_add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk

    def send(self, value: Any) -> T:
        """Generator ``send``, counted like ``next``."""
        return self._llm_step(self._llm_stream.send, value)  # type: ignore[attr-defined]

    def throw(self, *args: Any) -> T:
        """Generator ``throw``; if the stream does not handle it, the call fails with it."""
        return self._llm_step(self._llm_stream.throw, *args)  # type: ignore[attr-defined]

    # --- ending --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the wrapped stream (when it can be) and end the span with what was read."""
        close = getattr(self._llm_stream, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:
                _end(self, exc)
                raise
        _end(self, None)

    def __enter__(self) -> "SyncStreamWrapper[T]":
        enter = getattr(self._llm_stream, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        exit_ = getattr(self._llm_stream, "__exit__", None)
        if exit_ is None:
            self.close()
            return None
        try:
            suppress = exit_(exc_type, exc, tb)
        except BaseException as err:
            _end(self, err)
            raise
        _end(self, None)
        return suppress

    def __del__(self) -> None:
        # Collected without being exhausted or closed: end normally with what was read.
        try:
            if not self._llm_done:
                _end(self, None)
        except BaseException:  # noqa: BLE001 - a finaliser must never raise
            pass

    # --- transparency --------------------------------------------------------------------
    @property
    def __wrapped__(self) -> Iterable[T]:
        """The wrapped stream."""
        return self._llm_stream

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - makes isinstance() see the wrapped stream's class
        return type(self._llm_stream)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llm_"):
            raise AttributeError(name)
        return getattr(self._llm_stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_llm_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._llm_stream, name, value)

    def __repr__(self) -> str:
        return f"<SyncStreamWrapper of {self._llm_stream!r}>"


class AsyncStreamWrapper(Generic[T]):
    """A transparent proxy over an async stream that ends ``call``'s span exactly once.

    Same parameters as :class:`SyncStreamWrapper`; ``stream`` is an async iterator (or
    async iterable), e.g. an async generator or an OpenAI ``AsyncStream``. ``aclose()``
    and ``close()`` are both coroutines (as on ``AsyncStream``); ``asend``/``athrow``
    are forwarded when the stream is an async generator. Cancellation while waiting for
    a chunk fails the call with ``error.type`` ``CancelledError`` and is re-raised.
    """

    __slots__ = (
        "_llm_call", "_llm_stream", "_llm_next", "_llm_acc", "_llm_add", "_llm_ctx", "_llm_ctx_once", "_llm_done",
        "_llm_first", "_llm_slow",
    )

    def __init__(
        self,
        call: LLMCall,
        stream: AsyncIterable[T],
        accumulator: ChunkAccumulator | None = None,
        *,
        activate: bool | str = True,
    ) -> None:
        _init(self, call, stream, accumulator if accumulator is not None else StreamAccumulator(), activate)
        iterator = stream if hasattr(type(stream), "__anext__") else stream.__aiter__()
        _set(self, "_llm_next", iterator.__anext__)

    # --- iteration -----------------------------------------------------------------------
    def __aiter__(self) -> "AsyncStreamWrapper[T]":
        return self

    async def __anext__(self) -> T:
        if self._llm_slow:
            return await self._llm_step(self._llm_next)
        # The short path (runs for most chunks), as in SyncStreamWrapper.__next__.
        try:
            chunk = await self._llm_next()
        except StopAsyncIteration:
            _end(self, None)
            raise
        except BaseException as exc:  # CancelledError included: a cancelled call did not succeed
            _end(self, exc)
            raise
        try:
            self._llm_add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk

    async def _llm_step(self, method: Callable[..., Any], *args: Any) -> T:
        if self._llm_done:
            return await method(*args)
        ctx = self._llm_ctx
        token = _attach(ctx) if ctx is not None else None
        try:
            chunk = await method(*args)
        except StopAsyncIteration:
            _end(self, None)
            raise
        except BaseException as exc:  # CancelledError included: a cancelled call did not succeed
            _end(self, exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
        if self._llm_first:
            _first_chunk(self)
        try:
            self._llm_add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk

    async def asend(self, value: Any) -> T:
        """Async generator ``asend``, counted like ``__anext__``."""
        return await self._llm_step(self._llm_stream.asend, value)  # type: ignore[attr-defined]

    async def athrow(self, *args: Any) -> T:
        """Async generator ``athrow``; if the stream does not handle it, the call fails with it."""
        return await self._llm_step(self._llm_stream.athrow, *args)  # type: ignore[attr-defined]

    # --- ending --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the wrapped stream (``aclose``/``close``, when it has one) and end the span."""
        stream = self._llm_stream
        close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
        if close is not None:
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                _end(self, exc)
                raise
        _end(self, None)

    async def close(self) -> None:
        """Same as :meth:`aclose` (OpenAI's ``AsyncStream.close`` is a coroutine too)."""
        await self.aclose()

    async def __aenter__(self) -> "AsyncStreamWrapper[T]":
        enter = getattr(self._llm_stream, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        exit_ = getattr(self._llm_stream, "__aexit__", None)
        if exit_ is None:
            await self.aclose()
            return None
        try:
            suppress = await exit_(exc_type, exc, tb)
        except BaseException as err:
            _end(self, err)
            raise
        _end(self, None)
        return suppress

    def __del__(self) -> None:
        # Collected without being exhausted or closed: end normally with what was read.
        # (The wrapped async generator is finalised by the event loop as usual.)
        try:
            if not self._llm_done:
                _end(self, None)
        except BaseException:  # noqa: BLE001 - a finaliser must never raise
            pass

    # --- transparency --------------------------------------------------------------------
    @property
    def __wrapped__(self) -> AsyncIterable[T]:
        """The wrapped stream."""
        return self._llm_stream

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - makes isinstance() see the wrapped stream's class
        return type(self._llm_stream)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llm_"):
            raise AttributeError(name)
        return getattr(self._llm_stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_llm_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._llm_stream, name, value)

    def __repr__(self) -> str:
        return f"<AsyncStreamWrapper of {self._llm_stream!r}>"
