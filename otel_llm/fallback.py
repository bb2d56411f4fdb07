"""Fallback chains: try provider/model targets in order, one LLM span per attempt.

An agent that falls back from one model to another needs to see, per attempt, which
target was tried, whether it was a fallback and why — and, per logical call, how many
attempts it took and which target answered. A :class:`FallbackChain` gives both:

* a parent span ``fallback_chain {name}`` (INTERNAL) with the outcome, the number of
  attempts and the selected target;
* one inference span per attempt (through :class:`~otel_llm.call.LLMCall`) with
  ``otel_llm.attempt`` (0 = first choice), ``otel_llm.fallback``,
  ``otel_llm.fallback.reason`` (the previous attempt's ``error.type``) and a shared
  ``otel_llm.logical_call.id`` (the chain span's id).

Three ways to use it::

    chain = fallback_chain("answer", [
        Target("openai", "gpt-4o", route="primary", call=ask_openai),
        Target("ollama", "llama3.2", route="local", call=ask_ollama),
    ])
    result = chain.run(prompt)            # or: await chain.arun(prompt)

    for attempt in chain:                 # the loop stops after the first success
        with attempt as call:
            result = ask(attempt.target, prompt)
            call.record_response(result)

    with chain as run:                    # the chain span is current in the block:
        record_routing_decision(...)      # a decision lands on the chain and every attempt
        result = run.run(prompt)

An error the chain falls back on is recorded on its attempt's span and never reaches
the caller; when every attempt failed the caller gets :class:`AllAttemptsFailed`.
``BaseException`` (KeyboardInterrupt, ``asyncio.CancelledError``) always propagates.

Streams. The chain decides when the target *returns*: a target that returns a stream
(an iterator or async iterator of chunks, e.g. OpenAI's ``Stream`` or Ollama's chunk
generator) has answered, the chain's outcome is ``ok`` and the caller gets the stream.
The attempt's span, though, is the observation of that provider call and stays open
until the stream ends, by the rules of :mod:`otel_llm.streaming` (exhausted, ``break``
then closed or collected, ``close()``, an error mid-stream): so its finish reasons,
usage and time to first chunk are recorded. :meth:`FallbackChain.run` wraps a returned
stream for this (unless ``record_response=False``, or the target recorded onto the
attempt itself); a stream the client instrumentation already wrapped onto the attempt,
or one wrapped by hand around ``attempt.call``, is left as it is, and ``with attempt:``
leaves such a call open too. A stream that fails mid-way makes its attempt's span ERROR
with ``error.type`` (its observation is a failed attempt), but the chain does not fall
back — the caller already holds the stream — and its outcome stays ``ok``.

SDK retries inside an attempt (the OpenAI client retrying a 429 on its own) are HTTP
attempts of the same provider call: the attempt's span observes the last one, and each
earlier one gets a span of its own (:meth:`Attempt.open_earlier_try`).

Known limits. An attempt's span observes one provider call. A target that makes several
instrumented calls (a tool loop, calls gathered concurrently) records them all onto it,
the last answer's usage replacing the earlier ones'; a call made after the attempt's
span has ended (after its stream) is a span of its own inside it, which trace inference
in the collector takes for the provider call and the attempt's span for a wrapper. The
answer of a non-streamed ``.with_raw_response`` is recorded when the call returns, so a
target that also records ``raw.parse()`` counts its tool calls twice. A stream whose
request is only sent when it is first read (an Ollama stream; the
``chat.completions.stream()`` manager, which sends it on entering its ``with``) fails
after the chain has decided, so it never falls back; the manager's call is then a span
of its own, outside the attempt.
"""

from __future__ import annotations

import inspect
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_llm import semconv
from otel_llm._async_with import AsyncWithToo
from otel_llm._safety import report, swallow
from otel_llm._tracer import tracer
from otel_llm.call import LLMCall, error_type_of
from otel_llm.scope import current_scope
from otel_llm.streaming import ASYNC_STREAM, SYNC_STREAM, AsyncStreamWrapper, SyncStreamWrapper, result_kind
from otel_llm.extract import StreamAccumulator

#: Which errors make the chain try the next target: exception classes or a predicate.
FallbackOn = Union[type[Exception], tuple[type[Exception], ...], Callable[[Exception], bool]]

#: Values of ``otel_llm.chain.outcome``.
OUTCOME_OK = "ok"
OUTCOME_ALL_FAILED = "all_failed"
OUTCOME_ERROR = "error"
OUTCOME_ABANDONED = "abandoned"
OUTCOME_NOT_RUN = "not_run"

_RUN_KEY = otel_context.create_key("otel_llm.fallback_chain_run")
_ATTEMPT_KEY = otel_context.create_key("otel_llm.fallback_attempt")

_NEW, _ACTIVE, _OK, _FAILED, _RAISED = range(5)


#: The wrapper of each kind of stream a target may return (:func:`~otel_llm.streaming.result_kind`).
_WRAPPER_BY_KIND: dict[int, Callable[..., Any]] = {SYNC_STREAM: SyncStreamWrapper, ASYNC_STREAM: AsyncStreamWrapper}


def _stream_wrapper(result: Any) -> Callable[..., Any] | None:
    """The wrapper class for a result that is a stream not wrapped yet, else None.

    A stream is an iterator or async iterator (a response object, a list or a string is
    not). One already wrapped (by the client instrumentation, onto this very attempt)
    owns its call's end already: a second wrapper would read every chunk twice.
    """
    cls = type(result)
    if cls is SyncStreamWrapper or cls is AsyncStreamWrapper:
        return None
    return _WRAPPER_BY_KIND.get(result_kind(result))


def _check_name(what: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty str, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Target:
    """One provider/model a chain may try.

    ``call`` is invoked as ``call(*args, **kwargs)`` with the arguments given to
    :meth:`FallbackChain.run`; a target without ``call`` uses the chain's ``call``,
    invoked as ``call(target, *args, **kwargs)`` (one function serving every target).
    ``attributes`` are extra span attributes for this target's attempts.
    """

    provider: str
    model: str
    route: str | None = None
    call: Callable[..., Any] | None = None
    operation: str = semconv.OP_CHAT
    server_address: str | None = None
    server_port: int | None = None
    attributes: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _check_name("Target.provider", self.provider)
        _check_name("Target.model", self.model)
        _check_name("Target.route", self.route, optional=True)
        _check_name("Target.operation", self.operation)
        if self.call is not None and not callable(self.call):
            raise TypeError(f"Target.call must be callable, got {type(self.call).__name__}")
        if self.attributes is not None and not isinstance(self.attributes, Mapping):
            raise TypeError(f"Target.attributes must be a mapping, got {type(self.attributes).__name__}")

    @property
    def key(self) -> str:
        """How the target is named in telemetry: its route, else ``provider/model``."""
        return self.route or f"{self.provider}/{self.model}"

    def __repr__(self) -> str:
        route = f", route={self.route!r}" if self.route else ""
        return f"Target({self.provider!r}, {self.model!r}{route})"


class AllAttemptsFailed(Exception):
    """Every target of a fallback chain failed.

    ``errors`` lists ``(target, exception)`` per attempt, in order; the last exception
    is also the ``__cause__``.
    """

    def __init__(self, chain_name: str, errors: Sequence[tuple[Target, BaseException]]) -> None:
        self.chain_name = chain_name
        self.errors: list[tuple[Target, BaseException]] = list(errors)
        super().__init__(self._describe())

    def _describe(self) -> str:
        n = len(self.errors)
        lines = "; ".join(f"{t.key}: {error_type_of(e)}: {e}" for t, e in self.errors)
        return f"fallback chain {self.chain_name!r} failed on every target ({n} attempt{'s' if n != 1 else ''}): {lines}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.chain_name, self.errors))

    @property
    def last_error(self) -> BaseException | None:
        """The exception of the last attempt."""
        return self.errors[-1][1] if self.errors else None


class ChainUsageError(TypeError):
    """The chain was used in a way that cannot work (never a reason to fall back)."""


def _as_predicate(fallback_on: FallbackOn) -> Callable[[Exception], bool]:
    if isinstance(fallback_on, type) and issubclass(fallback_on, BaseException):
        return lambda exc: isinstance(exc, fallback_on)
    if isinstance(fallback_on, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in fallback_on
    ):
        return lambda exc: isinstance(exc, fallback_on)
    if callable(fallback_on):
        return fallback_on  # type: ignore[return-value]
    raise TypeError(
        "fallback_on must be an exception class, a tuple of them, or a predicate "
        f"taking the exception, got {fallback_on!r}"
    )


def _as_target(value: Any) -> Target:
    if isinstance(value, Target):
        return value
    if isinstance(value, Mapping):
        return Target(**value)
    raise TypeError(f"fallback targets must be Target objects (or mappings of its fields), got {value!r}")


class FallbackChain(AsyncWithToo):
    """A reusable, immutable definition: a name and the targets to try, in order.

    One chain object may be shared by many threads and tasks; each use (``run``,
    ``arun``, iterating, ``with``) is its own :class:`ChainRun` with its own span.
    """

    __slots__ = ("name", "targets", "call", "record_response", "extractor", "_should_fallback")

    def __init__(
        self,
        name: str,
        targets: Iterable[Target | Mapping[str, Any]],
        *,
        call: Callable[..., Any] | None = None,
        fallback_on: FallbackOn = Exception,
        record_response: bool = True,
        extractor: Callable[[LLMCall, Any], None] | None = None,
    ) -> None:
        self.name: str = _check_name("fallback chain name", name)  # type: ignore[assignment]
        self.targets: tuple[Target, ...] = tuple(_as_target(t) for t in targets)
        if not self.targets:
            raise ValueError(f"fallback chain {name!r} needs at least one target")
        if call is not None and not callable(call):
            raise TypeError(f"call must be callable, got {type(call).__name__}")
        self.call = call
        self.record_response = bool(record_response)
        self.extractor = extractor
        self._should_fallback = _as_predicate(fallback_on)

    def __repr__(self) -> str:
        return f"FallbackChain({self.name!r}, {list(self.targets)!r})"

    # --- one-shot use ------------------------------------------------------------------
    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Call the targets in order until one returns; return its result.

        Raises :class:`AllAttemptsFailed` when every target failed, and any error the
        chain does not fall back on unchanged.
        """
        active = _active_run(self)
        if active is not None:
            return active.run(*args, **kwargs)
        with ChainRun(self) as chain_run:
            return chain_run.run(*args, **kwargs)

    async def arun(self, *args: Any, **kwargs: Any) -> Any:
        """Async :meth:`run`: targets may be async functions (or return awaitables)."""
        active = _active_run(self)
        if active is not None:
            return await active.arun(*args, **kwargs)
        async with ChainRun(self) as chain_run:
            return await chain_run.arun(*args, **kwargs)

    def __iter__(self) -> Iterator["Attempt"]:
        """Yield one :class:`Attempt` per target until one succeeds (enter each with ``with``)."""
        active = _active_run(self)
        if active is not None:
            yield from active
            return
        chain_run = ChainRun(self)
        chain_run.open(activate=False)
        # Nobody closes a bare loop's run: it closes itself as soon as the outcome is
        # known, and on the generator's close (a ``break`` before any outcome).
        chain_run._auto_close = True
        try:
            yield from chain_run
        finally:
            chain_run.close()

    # --- a block in which the chain span is current ----------------------------------------
    def __enter__(self) -> "ChainRun":
        chain_run = ChainRun(self)
        chain_run.__enter__()
        return chain_run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        active = otel_context.get_value(_RUN_KEY)
        if isinstance(active, ChainRun) and active.chain is self:
            active.__exit__(exc_type, exc, tb)



def fallback_chain(
    name: str,
    targets: Iterable[Target | Mapping[str, Any]],
    *,
    call: Callable[..., Any] | None = None,
    fallback_on: FallbackOn = Exception,
    record_response: bool = True,
    extractor: Callable[[LLMCall, Any], None] | None = None,
) -> FallbackChain:
    """Define a fallback chain (see :class:`FallbackChain`)."""
    return FallbackChain(
        name, targets, call=call, fallback_on=fallback_on,
        record_response=record_response, extractor=extractor,
    )


def fallback_attempts(
    name: str,
    targets: Iterable[Target | Mapping[str, Any]],
    *,
    fallback_on: FallbackOn = Exception,
) -> Iterator["Attempt"]:
    """Iterate over the attempts of a one-off chain::

        for attempt in otel_llm.fallback_attempts("answer", targets):
            with attempt as call:
                ...
    """
    return iter(FallbackChain(name, targets, fallback_on=fallback_on))


def _active_run(chain: FallbackChain) -> "ChainRun | None":
    """The run of ``chain`` whose span is the current span (inside ``with chain:``)."""
    run = otel_context.get_value(_RUN_KEY)
    if isinstance(run, ChainRun) and run.chain is chain and run.span is trace.get_current_span():
        return run
    return None


def current_chain_run() -> "ChainRun | None":
    """The chain run whose span is the current span, if any (used by routing decisions)."""
    run = otel_context.get_value(_RUN_KEY)
    if isinstance(run, ChainRun) and run.span is not None and run.span is trace.get_current_span():
        return run
    return None


def current_attempt() -> "Attempt | None":
    """The fallback attempt in progress here, if any.

    Code running inside an attempt (the target's function, or an instrumentation that
    wraps the client it calls) can record onto the attempt's span through
    ``current_attempt().call`` instead of opening a second span for the same provider
    call; reading ``.call`` tells :meth:`FallbackChain.run` not to record the returned
    response again.
    """
    attempt = otel_context.get_value(_ATTEMPT_KEY)
    if isinstance(attempt, Attempt) and attempt._state == _ACTIVE:
        return attempt
    return None


class ChainRun(AsyncWithToo):
    """One use of a chain: its span, its attempts and how it ended."""

    __slots__ = (
        "chain", "span", "logical_call_id", "errors", "attempts", "selected", "outcome",
        "_routing", "_token", "_iterated", "_closed", "_auto_close",
    )

    def __init__(self, chain: FallbackChain) -> None:
        self.chain = chain
        self.span: Span | None = None
        self.logical_call_id: str = ""
        #: ``(target, exception)`` of every failed attempt, in order.
        self.errors: list[tuple[Target, BaseException]] = []
        #: Number of attempts started.
        self.attempts = 0
        #: The target that answered, once one has.
        self.selected: Target | None = None
        #: ``ok``, ``all_failed``, ``error``, ``abandoned`` or ``not_run`` once decided.
        self.outcome: str | None = None
        self._routing: dict[str, Any] = {}
        self._token: object | None = None
        self._iterated = False
        self._closed = False
        self._auto_close = False

    # --- span lifecycle ----------------------------------------------------------------
    def open(self, *, activate: bool = True) -> None:
        """Start the chain span (and make it current when ``activate``)."""
        if self.span is not None:
            return
        attrs: dict[str, Any] = current_scope().attributes()
        attrs[semconv.OTEL_LLM_CHAIN_NAME] = self.chain.name
        self.span = tracer().start_span(
            f"fallback_chain {self.chain.name}", kind=SpanKind.INTERNAL, attributes=attrs
        )
        ctx = self.span.get_span_context()
        self.logical_call_id = trace.format_span_id(ctx.span_id) if ctx.is_valid else uuid.uuid4().hex[:16]
        if activate:
            self._token = otel_context.attach(self._context())

    def _context(self) -> otel_context.Context:
        assert self.span is not None
        return otel_context.set_value(_RUN_KEY, self, trace.set_span_in_context(self.span))

    def close(self, exc: BaseException | None = None) -> None:
        """End the chain span once, recording how the run ended."""
        token, self._token = self._token, None
        if token is not None:
            with swallow("detaching the fallback chain context"):
                otel_context.detach(token)  # type: ignore[arg-type]
        if self._closed or self.span is None:
            return
        self._closed = True
        with swallow("ending the fallback chain span"):
            span = self.span
            if self.outcome is None:
                if exc is not None and not isinstance(exc, GeneratorExit):
                    self._conclude_error(exc)
                elif self.attempts == 0:
                    self.outcome = OUTCOME_NOT_RUN
                else:
                    self.outcome = OUTCOME_ABANDONED
            span.set_attribute(semconv.OTEL_LLM_CHAIN_OUTCOME, self.outcome)
            span.set_attribute(semconv.OTEL_LLM_CHAIN_ATTEMPTS, self.attempts)
            span.end()

    def __enter__(self) -> "ChainRun":
        self.open(activate=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(exc)


    # --- routing decisions ----------------------------------------------------------
    def add_routing(self, attributes: Mapping[str, Any]) -> None:
        """Record routing attributes on the chain span and on every later attempt."""
        self._routing.update(attributes)
        if self.span is not None and not self._closed:
            with swallow("recording a routing decision on the chain"):
                self.span.set_attributes(dict(attributes))

    # --- outcomes ----------------------------------------------------------------------
    def _close_if_auto(self) -> None:
        if self._auto_close:
            self.close()

    def _conclude_ok(self, attempt: "Attempt") -> None:
        self.outcome = OUTCOME_OK
        self.selected = attempt.target
        with swallow("recording the fallback chain outcome"):
            assert self.span is not None
            self.span.set_attribute(semconv.OTEL_LLM_CHAIN_SELECTED, attempt.target.key)
            self.span.set_status(Status(StatusCode.OK))

    def _conclude_error(self, exc: BaseException) -> None:
        self.outcome = OUTCOME_ERROR
        with swallow("recording the fallback chain outcome"):
            assert self.span is not None
            etype = error_type_of(exc)
            self.span.set_attribute(semconv.ERROR_TYPE, etype)
            self.span.set_status(Status(StatusCode.ERROR, f"{etype}: {exc}"[:512]))

    def _conclude_all_failed(self) -> AllAttemptsFailed:
        self.outcome = OUTCOME_ALL_FAILED
        error = AllAttemptsFailed(self.chain.name, self.errors)
        with swallow("recording the fallback chain outcome"):
            assert self.span is not None
            self.span.set_attribute(semconv.ERROR_TYPE, error_type_of(error))
            self.span.set_status(Status(StatusCode.ERROR, str(error)[:512]))
        return error

    # --- attempts ------------------------------------------------------------------------
    def __iter__(self) -> Iterator["Attempt"]:
        """Yield one attempt per target; stop after the first success."""
        if self._iterated:
            raise ChainUsageError(
                f"fallback chain {self.chain.name!r} already ran in this block; "
                "each `with chain:` block runs the chain once"
            )
        self._iterated = True
        if self.span is None:
            self.open(activate=False)
        reason: str | None = None
        for index, target in enumerate(self.chain.targets):
            attempt = Attempt(self, target, index, reason)
            yield attempt
            if attempt._state == _NEW:
                misuse = ChainUsageError(
                    f"fallback chain {self.chain.name!r}: attempt {index} was not entered; "
                    "write `with attempt:` around the provider call"
                )
                self._conclude_error(misuse)
                self._close_if_auto()
                raise misuse
            if attempt._state in (_OK, _RAISED, _ACTIVE):
                return
            reason = attempt.error_type
        error = self._conclude_all_failed()
        self._close_if_auto()
        raise error from (self.errors[-1][1] if self.errors else None)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Try the targets in order (see :meth:`FallbackChain.run`)."""
        result: Any = None
        for attempt in self:
            with attempt:
                result = attempt._invoke(args, kwargs)
        return result

    async def arun(self, *args: Any, **kwargs: Any) -> Any:
        """Try the targets in order, awaiting each (see :meth:`FallbackChain.arun`)."""
        result: Any = None
        for attempt in self:
            with attempt:
                result = await attempt._ainvoke(args, kwargs)
        return result


class Attempt(AsyncWithToo):
    """One try of one target: enter it with ``with`` (or ``async with``) to get its :class:`LLMCall`.

    Leaving the block normally makes this the chain's answer. An error the chain falls
    back on is recorded on this attempt's span and suppressed (the loop goes on to the
    next target); any other error propagates unchanged.
    """

    __slots__ = ("run", "target", "index", "fallback_reason", "error", "_call", "_state",
                 "_tokens", "_claimed")

    def __init__(self, run: ChainRun, target: Target, index: int, fallback_reason: str | None) -> None:
        self.run = run
        self.target = target
        #: 0 for the first choice.
        self.index = index
        #: ``error.type`` of the previous attempt (None for the first).
        self.fallback_reason = fallback_reason
        #: The exception this attempt failed with, if it failed.
        self.error: BaseException | None = None
        self._call: LLMCall | None = None
        self._state = _NEW
        self._tokens: list[object] = []
        self._claimed = False

    def __repr__(self) -> str:
        return f"Attempt({self.index}, {self.target!r})"

    @property
    def is_fallback(self) -> bool:
        """Whether this attempt is not the first choice."""
        return self.index > 0

    @property
    def call(self) -> LLMCall | None:
        """The attempt's :class:`LLMCall` (None before the attempt is entered).

        Reading it marks the response as recorded by the caller, so
        :meth:`FallbackChain.run` does not record the returned value a second time.
        """
        self._claimed = True
        return self._call

    @property
    def error_type(self) -> str | None:
        """``error.type`` of this attempt's failure."""
        return error_type_of(self.error) if self.error is not None else None

    def __enter__(self) -> LLMCall:
        if self._state != _NEW:
            raise ChainUsageError("an attempt can be entered only once")
        run = self.run
        self._tokens.append(otel_context.attach(run._context()))
        try:
            target = self.target
            attributes: dict[str, Any] = dict(target.attributes or {})
            attributes.update(run._routing)
            self._call = LLMCall(
                operation=target.operation,
                provider=target.provider,
                model=target.model,
                route=target.route,
                server_address=target.server_address,
                server_port=target.server_port,
                attempt=self.index,
                fallback=self.index > 0,
                fallback_reason=self.fallback_reason,
                logical_call_id=run.logical_call_id,
                attributes=attributes,
            )
            ctx = otel_context.set_value(_ATTEMPT_KEY, self, trace.set_span_in_context(self._call.span))
            self._tokens.append(otel_context.attach(ctx))
        except BaseException:
            self._detach()
            raise
        run.attempts += 1
        self._state = _ACTIVE
        return self._call

    def _detach(self) -> None:
        while self._tokens:
            token = self._tokens.pop()
            with swallow("detaching the fallback attempt context"):
                otel_context.detach(token)  # type: ignore[arg-type]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._detach()
        call = self._call
        if call is None or self._state != _ACTIVE:
            return False
        run = self.run
        if exc is None:
            if not call.ends_with_stream:  # a returned stream ends its span itself
                call.end()
            self._state = _OK
            run._conclude_ok(self)
            run._close_if_auto()
            return False
        call.end(exc)
        self.error = exc
        if self._falls_back_on(exc):
            self._state = _FAILED
            run.errors.append((self.target, exc))
            return True
        self._state = _RAISED
        run._conclude_error(exc)
        run._close_if_auto()
        return False

    def open_earlier_try(self, attributes: Mapping[str, Any], start_time_ns: int) -> LLMCall | None:
        """Open a span for an earlier try of this attempt's provider call; None if it cannot be.

        A client that retries on its own (the OpenAI SDK on a 429) makes several HTTP
        attempts within one fallback attempt. The attempt's span observes the last of
        them; each earlier one, once known to have failed, needs an observation of its
        own, as it has outside a chain. The new span is a sibling of the attempt's span
        (a child of the chain span: a provider-call span nested in another would make the
        outer one a mere wrapper to trace inference) and carries the attempt's start
        attributes (target provider, model and route, attempt index, fallback, logical
        call id, scope, routing) over ``attributes`` (what the client knows of the
        request). The caller records the outcome and ends it.
        """
        call = self._call
        if call is None or self._state != _ACTIVE:
            return None
        merged = dict(attributes)
        merged.update(call.start_attributes)
        target = self.target
        token = otel_context.attach(self.run._context())
        try:
            return LLMCall.from_attributes(f"{target.operation} {target.model}", merged, start_time_ns)
        finally:
            otel_context.detach(token)

    def _falls_back_on(self, exc: BaseException) -> bool:
        if not isinstance(exc, Exception) or isinstance(exc, ChainUsageError):
            return False
        try:
            return bool(self.run.chain._should_fallback(exc))
        except Exception as predicate_error:  # noqa: BLE001 - a broken predicate means: do not fall back
            report(f"fallback chain {self.run.chain.name!r}: the fallback_on predicate", predicate_error)
            return False

    # --- invoking the target (run / arun) -------------------------------------------------
    def _function(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if self.target.call is not None:
            return self.target.call, ()
        if self.run.chain.call is not None:
            return self.run.chain.call, (self.target,)
        raise ChainUsageError(
            f"fallback chain {self.run.chain.name!r}: target {self.target.key!r} has no call, "
            "and the chain has no call= to use for it"
        )

    def _record(self, result: Any) -> Any:
        """Record the target's answer on the attempt's span; a stream comes back wrapped so
        that the span ends with it (see the module docstring)."""
        chain = self.run.chain
        call = self._call
        if not chain.record_response or self._claimed or call is None:
            return result
        wrapper = _stream_wrapper(result)
        if wrapper is None:
            call.record_response(result, chain.extractor)
            return result
        try:
            call.set_attribute(semconv.GEN_AI_REQUEST_STREAM, True)
            return wrapper(call, result, StreamAccumulator())
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the call
            report("wrapping a fallback target's stream", exc)
            return result

    def _invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn, lead = self._function()
        result = fn(*lead, *args, **kwargs)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise ChainUsageError(
                f"fallback chain {self.run.chain.name!r}: target {self.target.key!r} returned an "
                "awaitable; use `await chain.arun(...)` for async targets"
            )
        return self._record(result)

    async def _ainvoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn, lead = self._function()
        result = fn(*lead, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return self._record(result)
