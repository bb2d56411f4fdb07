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
provider answered; the consumer stopped reading. An exception from the stream is first
handed to the ``on_error`` hook an instrumentation may give (:func:`wrap_sync`), which
records what only the exception carries, such as an HTTP status. The status set by a failure is never
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
from types import CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, AsyncIterable, Callable, Generic, Iterable, Iterator, Protocol, TypeVar

from otel_llm import _context
from otel_llm._safety import report
from otel_llm.extract import StreamAccumulator

if TYPE_CHECKING:
    from otel_llm.call import LLMCall

T = TypeVar("T")


class ChunkAccumulator(Protocol):
    """What a stream wrapper feeds: ``add`` per chunk, ``finish`` once before the span ends.

    An accumulator may also have ``chunk_step() -> Callable[[chunk], None]``: asked once
    the first chunk has been added, it names what takes every later chunk instead of
    ``add`` (a path chosen for this stream, without a choice per chunk).
    """

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

#: A wrapper's one slot is set with this, past its forwarding ``__setattr__`` (which hands
#: every other name to the wrapped stream).
_set = object.__setattr__


class _StreamState:
    """A stream wrapper's own state, kept apart from the wrapper.

    The wrappers forward unknown attributes to the wrapped stream (``__getattr__`` and
    ``__setattr__``), which keeps CPython from specialising attribute access on them:
    every read of their own state would take the generic path. A wrapper reads this
    plain slotted object once per step instead, and everything else is a plain read or
    write on it. One is made per stream.
    """

    __slots__ = (
        "call", "stream", "next", "acc", "add", "ctx", "activate_first", "done", "first", "slow", "iterator", "on_error",
    )

    def __init__(
        self, call: LLMCall, stream: Any, accumulator: Any, activate: bool | str,
        on_error: Callable[[LLMCall, BaseException], None] | None = None,
    ) -> None:
        self.call = call
        self.stream = stream
        self.next: Callable[[], Any] | None = None  # the iterator's step, set by the wrapper
        self.acc = accumulator
        self.add = accumulator.add
        #: Span current only while the first chunk is read (made current then, from the
        #: context of that moment); else ``ctx``: the context made current for every chunk.
        self.activate_first = once = activate == UNTIL_FIRST_CHUNK
        self.ctx = _context.with_span(call.span) if activate and not once else None
        self.done = False
        self.first = True
        # The general step runs until the first chunk (time to first chunk, context until
        # the first chunk), for every chunk when the span is made current per chunk, and
        # after the end; every other chunk takes the short path of ``__next__`` / ``__anext__``.
        self.slow = True
        #: The iterator made from the stream when the stream is only iterable (not an
        #: iterator itself), else None.
        self.iterator: Any = None
        #: ``on_error(call, exc)``, called once when the stream fails, before the span ends
        #: (see :func:`wrap_sync`); None for none.
        self.on_error = on_error


def _hand_over_end(call: Any) -> None:
    """The wrapper ends ``call`` from now on: whoever opened the call (a fallback attempt)
    must leave it open for the stream (:attr:`~otel_llm.call.LLMCall.ends_with_stream`)."""
    try:
        call._stream_ends = True
    except AttributeError:  # a stand-in call object without the slot
        pass


def _end(state: _StreamState, error: BaseException | None) -> None:
    """Finish the accumulator and end the span, once; never raises."""
    if state.done:
        return
    state.done = True
    state.slow = True
    call = state.call
    if error is not None and state.on_error is not None:
        try:
            state.on_error(call, error)
        except Exception as exc:  # noqa: BLE001
            report("recording a stream's failure", exc)
    try:
        state.acc.finish(call)
    except Exception as exc:  # noqa: BLE001
        report("recording a streamed response", exc)
    try:
        call.end(error)
    except Exception as exc:  # noqa: BLE001
        report("ending a streamed LLM span", exc)


def _enter(state: _StreamState) -> Any:
    """Make the call's span current for one step when the stream asks for it; the token."""
    try:
        ctx = state.ctx
        if ctx is not None:
            return _context.attach(ctx)
        if state.first and state.activate_first:
            return _context.attach_span(state.call.span)
    except Exception as exc:  # noqa: BLE001
        report("activating the LLM span for a chunk", exc)
    return None


def _received(state: _StreamState, chunk: Any) -> None:
    """A chunk came through the general step: its time if first, then the accumulator.

    After the first chunk, later ones go to the accumulator's ``chunk_step()`` when it
    has one (:meth:`~otel_llm.extract.StreamAccumulator.chunk_step`): the first chunk
    tells it what the stream is made of."""
    first = state.first
    if first:
        state.first = False
        state.slow = state.ctx is not None or state.done
        try:
            state.call.first_chunk()
        except Exception as exc:  # noqa: BLE001
            report("recording time to first chunk", exc)
    try:
        state.add(chunk)
        if first:
            chunk_step = getattr(state.acc, "chunk_step", None)
            if chunk_step is not None:
                state.add = chunk_step()
    except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
        report("reading a stream chunk", exc)


def _step(state: _StreamState, method: Callable[..., Any], *args: Any) -> Any:
    """The general step of a sync stream (see :attr:`_StreamState.slow`)."""
    if state.done:
        return method(*args)
    token = _enter(state)
    try:
        chunk = method(*args)
    except StopIteration:
        _end(state, None)
        raise
    except BaseException as exc:
        _end(state, exc)
        raise
    finally:
        if token is not None:
            _context.detach(token)  # type: ignore[arg-type]
    _received(state, chunk)
    return chunk


async def _astep(state: _StreamState, method: Callable[..., Any], *args: Any) -> Any:
    """The general step of an async stream, as :func:`_step`."""
    if state.done:
        return await method(*args)
    token = _enter(state)
    try:
        chunk = await method(*args)
    except StopAsyncIteration:
        _end(state, None)
        raise
    except BaseException as exc:  # CancelledError included: a cancelled call did not succeed
        _end(state, exc)
        raise
    finally:
        if token is not None:
            _context.detach(token)  # type: ignore[arg-type]
    _received(state, chunk)
    return chunk


def _read_from(state: _StreamState, stream: Any) -> None:
    """Set where a sync wrapper reads chunks: the stream itself when it is an iterator,
    else one iterator made from it now (an iterable must not start again)."""
    if hasattr(type(stream), "__next__"):
        state.next = stream.__next__
    else:
        state.iterator = iterator = iter(stream)
        state.next = iterator.__next__


def _rest(state: _StreamState) -> Iterator[Any]:
    """The stream's remaining chunks after the span has ended, read as they are."""
    step = state.next
    while True:
        try:
            chunk = step()  # type: ignore[misc]
        except StopIteration:
            return
        yield chunk


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

    __slots__ = ("_llm_state",)

    def __init__(
        self,
        call: LLMCall,
        stream: Iterable[T],
        accumulator: ChunkAccumulator | None = None,
        *,
        activate: bool | str = True,
    ) -> None:
        state = _StreamState(call, stream, accumulator if accumulator is not None else StreamAccumulator(), activate)
        _hand_over_end(call)
        _read_from(state, stream)
        _set(self, "_llm_state", state)

    # --- iteration -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        """What ``for chunk in wrapper`` runs: a generator over the wrapper's chunks.

        A ``for`` loop resumes a generator without a Python call per chunk, where calling
        the wrapper's ``__next__`` is one (and, for an OpenAI ``Stream``, its own
        ``__next__`` another). Chunks are read from the stream's own iterator in a plain
        loop, and the end is recorded here. When the span is made current (for the first
        chunk or for every chunk), and after the end, the steps that need it take the
        general step instead.

        On a stream read from its start with the default accumulator and nothing to make
        current (the instrumentations' streams), a stream of OpenAI chat chunk objects
        (content not captured) is read by this loop itself into the accumulator, where
        other streams' chunks go to the accumulator's step: a Python call less per chunk,
        and several less for the first, on the path most instrumented streams take. The
        loop reads them as ``StreamAccumulator._add_openai_later`` does (a differential
        test keeps the two alike); :meth:`~otel_llm.extract.StreamAccumulator.starts_chat_stream`
        says when.

        The generator holds the wrapper, so that a stream the consumer does not keep
        lives as long as the loop. Leaving the loop early (``break``, an exception of the
        consumer's) closes only this generator: the span ends when the wrapper is closed
        or collected, as with ``__next__``. Only an exception from the stream itself ends
        it here, failed.
        """
        state = self._llm_state
        if state.ctx is None and not state.activate_first and not state.done:
            # Nothing to make current (the instrumentations' streams): the first chunk
            # takes the same loop as the rest, not the general step; its time and the
            # accumulator's choice of step are taken when it arrives. A loop started after
            # a ``break`` or a ``next()`` comes here too; only the stream's first chunk
            # counts as the first.
            add = None
        else:
            while state.slow:
                if state.done:  # after the end: the stream's own steps, nothing recorded
                    yield from _rest(state)
                    return
                try:
                    chunk = _step(state, state.next)  # type: ignore[arg-type]
                except StopIteration:
                    return
                yield chunk
            add = state.add
        acc = state.acc
        chat = False  # this loop reads the chunks itself (see above)
        thrown = False
        try:
            # The stream's own iterator: ``iter(stream)`` for an iterator (an OpenAI
            # ``Stream``'s is a generator over the same source as its ``__next__``), the
            # one made at wrapping for an iterable, which must not start again.
            # Ended while the consumer held a chunk (close() in the loop), the loop goes
            # on reading what the closed stream still gives (not checked per chunk): the
            # span has ended, so nothing more is recorded, though a chunk hook still sees
            # those chunks.
            for chunk in state.iterator if state.iterator is not None else iter(state.stream):
                if chat:
                    try:
                        usage = chunk.usage
                        if usage is not None:
                            acc._usage = usage
                        for choice in chunk.choices:
                            reason = choice.finish_reason
                            if reason is not None:
                                acc._finish[choice.index or 0] = reason
                            if choice.delta.tool_calls:
                                acc.add_tool_deltas(choice.index or 0, choice.delta.tool_calls)
                    except Exception:  # noqa: BLE001 - an odd chunk: the accumulator reads it the general way
                        acc.read_odd_chunk(chunk)
                elif add is not None:
                    try:
                        add(chunk)
                    except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
                        report("reading a stream chunk", exc)
                else:  # the first chunk of this loop
                    if state.first and type(acc) is StreamAccumulator:
                        state.call.first_chunk()  # before the chunk is read, as _received does
                        try:
                            chat = acc.starts_chat_stream(chunk)
                        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
                            report("reading a stream chunk", exc)
                    if chat:
                        state.first = False
                        state.slow = state.done
                    else:  # (a second first_chunk() there does nothing: only the first counts)
                        _received(state, chunk)
                        add = state.add
                try:
                    yield chunk
                except BaseException:  # thrown into this generator (its close()): not the stream's
                    thrown = True
                    raise
        except BaseException as exc:
            if not thrown:  # raised by the stream
                _end(state, exc)
            raise
        _end(state, None)

    def __next__(self) -> T:
        state = self._llm_state
        if state.slow:
            return _step(state, state.next)  # type: ignore[arg-type]
        # The short path (runs for most chunks): read, hand to the accumulator, return.
        try:
            chunk = state.next()  # type: ignore[misc]
        except StopIteration:
            _end(state, None)
            raise
        except BaseException as exc:
            _end(state, exc)
            raise
        try:
            state.add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk

    def send(self, value: Any) -> T:
        """Generator ``send``, counted like ``next``."""
        state = self._llm_state
        return _step(state, state.stream.send, value)  # type: ignore[no-any-return]

    def throw(self, *args: Any) -> T:
        """Generator ``throw``; if the stream does not handle it, the call fails with it."""
        state = self._llm_state
        return _step(state, state.stream.throw, *args)  # type: ignore[no-any-return]

    # --- ending --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the wrapped stream (when it can be) and end the span with what was read."""
        state = self._llm_state
        close = getattr(state.stream, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:
                _end(state, exc)
                raise
        _end(state, None)

    def __enter__(self) -> "SyncStreamWrapper[T]":
        enter = getattr(self._llm_state.stream, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        state = self._llm_state
        exit_ = getattr(state.stream, "__exit__", None)
        if exit_ is None:
            self.close()
            return None
        try:
            suppress = exit_(exc_type, exc, tb)
        except BaseException as err:
            _end(state, err)
            raise
        _end(state, None)
        return suppress

    def __del__(self) -> None:
        # Collected without being exhausted or closed: end normally with what was read.
        try:
            state = self._llm_state
            if not state.done:
                _end(state, None)
        except BaseException:  # noqa: BLE001 - a finaliser must never raise
            pass

    # --- transparency --------------------------------------------------------------------
    @property
    def __wrapped__(self) -> Iterable[T]:
        """The wrapped stream."""
        return self._llm_state.stream  # type: ignore[no-any-return]

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - makes isinstance() see the wrapped stream's class
        return type(self._llm_state.stream)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llm_"):
            raise AttributeError(name)
        return getattr(self._llm_state.stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_llm_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._llm_state.stream, name, value)

    def __repr__(self) -> str:
        return f"<SyncStreamWrapper of {self._llm_state.stream!r}>"


class AsyncStreamWrapper(Generic[T]):
    """A transparent proxy over an async stream that ends ``call``'s span exactly once.

    Same parameters as :class:`SyncStreamWrapper`; ``stream`` is an async iterator (or
    async iterable), e.g. an async generator or an OpenAI ``AsyncStream``. ``aclose()``
    and ``close()`` are both coroutines (as on ``AsyncStream``); ``asend``/``athrow``
    are forwarded when the stream is an async generator. Cancellation while waiting for
    a chunk fails the call with ``error.type`` ``CancelledError`` and is re-raised.
    """

    __slots__ = ("_llm_state",)

    def __init__(
        self,
        call: LLMCall,
        stream: AsyncIterable[T],
        accumulator: ChunkAccumulator | None = None,
        *,
        activate: bool | str = True,
    ) -> None:
        state = _StreamState(call, stream, accumulator if accumulator is not None else StreamAccumulator(), activate)
        _hand_over_end(call)
        iterator = stream if hasattr(type(stream), "__anext__") else stream.__aiter__()
        state.next = iterator.__anext__
        _set(self, "_llm_state", state)

    # --- iteration -----------------------------------------------------------------------
    def __aiter__(self) -> "AsyncStreamWrapper[T]":
        return self

    async def __anext__(self) -> T:
        state = self._llm_state
        if state.slow:
            return await _astep(state, state.next)  # type: ignore[arg-type,no-any-return]
        # The short path (runs for most chunks), as in SyncStreamWrapper.__next__.
        try:
            chunk = await state.next()  # type: ignore[misc]
        except StopAsyncIteration:
            _end(state, None)
            raise
        except BaseException as exc:  # CancelledError included: a cancelled call did not succeed
            _end(state, exc)
            raise
        try:
            state.add(chunk)
        except Exception as exc:  # noqa: BLE001 - a broken accumulator never breaks the stream
            report("reading a stream chunk", exc)
        return chunk  # type: ignore[no-any-return]

    async def asend(self, value: Any) -> T:
        """Async generator ``asend``, counted like ``__anext__``."""
        state = self._llm_state
        return await _astep(state, state.stream.asend, value)  # type: ignore[no-any-return]

    async def athrow(self, *args: Any) -> T:
        """Async generator ``athrow``; if the stream does not handle it, the call fails with it."""
        state = self._llm_state
        return await _astep(state, state.stream.athrow, *args)  # type: ignore[no-any-return]

    # --- ending --------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the wrapped stream (``aclose``/``close``, when it has one) and end the span."""
        state = self._llm_state
        stream = state.stream
        close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
        if close is not None:
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                _end(state, exc)
                raise
        _end(state, None)

    async def close(self) -> None:
        """Same as :meth:`aclose` (OpenAI's ``AsyncStream.close`` is a coroutine too)."""
        await self.aclose()

    async def __aenter__(self) -> "AsyncStreamWrapper[T]":
        enter = getattr(self._llm_state.stream, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        state = self._llm_state
        exit_ = getattr(state.stream, "__aexit__", None)
        if exit_ is None:
            await self.aclose()
            return None
        try:
            suppress = await exit_(exc_type, exc, tb)
        except BaseException as err:
            _end(state, err)
            raise
        _end(state, None)
        return suppress  # type: ignore[no-any-return]

    def __del__(self) -> None:
        # Collected without being exhausted or closed: end normally with what was read.
        # (The wrapped async generator is finalised by the event loop as usual.)
        try:
            state = self._llm_state
            if not state.done:
                _end(state, None)
        except BaseException:  # noqa: BLE001 - a finaliser must never raise
            pass

    # --- transparency --------------------------------------------------------------------
    @property
    def __wrapped__(self) -> AsyncIterable[T]:
        """The wrapped stream."""
        return self._llm_state.stream  # type: ignore[no-any-return]

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105 - makes isinstance() see the wrapped stream's class
        return type(self._llm_state.stream)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_llm_"):
            raise AttributeError(name)
        return getattr(self._llm_state.stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_llm_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._llm_state.stream, name, value)

    def __repr__(self) -> str:
        return f"<AsyncStreamWrapper of {self._llm_state.stream!r}>"


_new = object.__new__


def wrap_sync(
    call: LLMCall, stream: Iterable[T], accumulator: ChunkAccumulator, activate: bool | str, source: Any = None,
    on_error: Callable[[LLMCall, BaseException], None] | None = None,
) -> SyncStreamWrapper[T]:
    """``SyncStreamWrapper(call, stream, accumulator, activate=activate)``, made without the
    class call: for the instrumentations' hot path, where calling the class (its keyword
    argument takes CPython's slow call path) is a measurable share of a stream's cost.

    ``source``: the iterator the stream's own ``__iter__`` and ``__next__`` only pass
    through (an OpenAI ``Stream``'s), read directly instead; the caller vouches for that.

    ``on_error(call, exc)``: called once if the stream itself raises, before the span
    ends, to record what only the client's exception tells (the HTTP status of a request
    the client sends on the first read, as Ollama's does). Its failures are logged.
    """
    state = _StreamState(call, stream, accumulator, activate, on_error)
    call._stream_ends = True  # as _hand_over_end does (the instrumentations' calls have the slot)
    if source is None:
        _read_from(state, stream)
    else:
        state.iterator = source
        state.next = source.__next__
    wrapper = _new(SyncStreamWrapper)
    _set(wrapper, "_llm_state", state)
    return wrapper  # type: ignore[no-any-return]


def wrap_async(
    call: LLMCall, stream: AsyncIterable[T], accumulator: ChunkAccumulator, activate: bool | str, source: Any = None,
    on_error: Callable[[LLMCall, BaseException], None] | None = None,
) -> AsyncStreamWrapper[T]:
    """``AsyncStreamWrapper(call, stream, accumulator, activate=activate)``, as :func:`wrap_sync`
    (``source``: the async iterator the stream's ``__anext__`` only passes through;
    ``on_error``: as there)."""
    state = _StreamState(call, stream, accumulator, activate, on_error)
    call._stream_ends = True  # as _hand_over_end does
    if source is None:
        source = stream if hasattr(type(stream), "__anext__") else stream.__aiter__()
    state.next = source.__anext__
    wrapper = _new(AsyncStreamWrapper)
    _set(wrapper, "_llm_state", state)
    return wrapper  # type: ignore[no-any-return]


#: What a value returned by an observed function is (:func:`result_kind`): a plain answer,
#: a stream (an iterator, or an async iterator, of chunks), or a coroutine.
PLAIN, SYNC_STREAM, ASYNC_STREAM, COROUTINE = range(4)
#: What kind of result each returned type is, decided once per type.
_RESULT_KIND: dict[type, int] = {}
_RESULT_KIND_MAX = 1024


def result_kind(result: Any) -> int:
    """Whether ``result`` is a plain answer, a sync or async stream, or a coroutine: what
    the decorator and the fallback chain ask before recording a returned value (a stream
    is wrapped so that its span ends with it)."""
    cls = type(result)
    kind = _RESULT_KIND.get(cls)
    if kind is None:
        try:
            if hasattr(cls, "__anext__"):
                kind = ASYNC_STREAM
            elif hasattr(cls, "__next__"):
                kind = SYNC_STREAM
            elif cls is CoroutineType:
                kind = COROUTINE
            else:
                kind = PLAIN
        except Exception as exc:  # noqa: BLE001 - a type that cannot even be inspected: a plain value
            report("inspecting a returned value", exc)
            return PLAIN
        if len(_RESULT_KIND) < _RESULT_KIND_MAX:
            _RESULT_KIND[cls] = kind
    return kind
