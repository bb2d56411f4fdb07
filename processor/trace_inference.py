"""Trace-aware inference: what one span does not say, read from the rest of its trace.

Spans of other instrumentations arrive over OTLP without facts our own spans carry: the
agent (only the enclosing agent span names it), the attempt number and fallback flag
(only the failed calls before it show them) and sometimes the request model (only the
span name says it). :func:`derive_trace` takes the spans of one trace, adds what the
trace tells to a *copy* of each provider-call span's attributes, under the names our
own spans use, and hands that to :func:`processor.derive.derive_from_parts` — the one
derivation — so a span received over OTLP and the same facts recorded in-process give
the same observation (route key included).

The rules. A value the span carries itself is never replaced; every field filled by a
rule is listed in the observation's ``attributes`` under ``otel_llm.inferred``.

- **Nested instrumentations of one call.** A provider-call span with a provider-call
  span below it (a framework's LLM span over the client library's span) is a wrapper:
  only the innermost span — the one closest to the HTTP request — becomes an
  observation; the wrapper is counted as ignored. Provider calls are leaves, so a call
  span with a call span below it is never a call of its own.
- **Agent** (``agent``): the nearest ancestor that is an agent span names it — a
  GenAI ``invoke_agent`` span (``gen_ai.agent.name``, else the span name after
  ``invoke_agent``), an OpenInference ``AGENT`` span (``agent.name``, else the span
  name) or an OpenLLMetry ``agent`` span (``traceloop.entity.name``, else the span name
  without its ``.agent`` suffix). The nearest agent span decides even when it names no
  agent: the call is not attributed to an outer agent.
- **Attempts** (``attempt``, ``fallback``, ``logical_call_id``): the kept call spans
  with the same parent and the same operation, ordered by start time, form runs; a span
  continues the run of the sibling just before it when that sibling failed (ERROR
  status or ``error.type``) and ended before this span started (a retry follows its
  failure; concurrent calls are not retries). ``attempt`` is the span's position in
  its run (0 = first choice), which is the number of earlier failed siblings it
  follows. ``fallback`` is false for attempt 0; for a later attempt it is true when the
  provider or the model (request model, else response model) differs from the run's
  first attempt, false when every part known on both is equal, and not inferred when
  nothing can be compared. A later attempt shares the logical call id of the run's
  first attempt (its ``otel_llm.logical_call.id``, else its span id).
- **Request model** (``request_model``): when the span has none (no request-model
  attribute, no ``model`` in OpenInference invocation parameters), the span name
  ``"{operation} {model}"`` of the GenAI conventions gives it (``chat gpt-4o`` ->
  ``gpt-4o``); a name without a model (``openai.chat``, ``ChatCompletion``) leaves it
  NULL.

:class:`TraceBuffer` holds received spans per trace until the trace has likely been
received whole, within bounds on memory and time.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_llm import semconv
from processor import aliases
from processor.derive import MalformedSpan, Pricer, classify, derive_from_parts
from processor.observation import RouteObservation
from processor.providers import normalize_provider

__all__ = ["SpanRecord", "TraceResult", "TraceBuffer", "derive_trace"]

#: OTLP ``Status.code`` of a failed span.
STATUS_ERROR = 2


@dataclass(slots=True)
class SpanRecord:
    """What the collector keeps of one received span: the facts derivation reads.

    Treated as read-only once made (nothing in the collector changes a record), but not
    declared frozen: a frozen dataclass costs several times more to build, and one is
    built for every received span. Records are compared by value and not hashable; the
    stage tracks them by identity.

    Ids are raw bytes as in OTLP protobuf (16 and 8); hex strings and ints are accepted
    too. ``parent_span_id`` is None (or empty) for a root span. ``kind`` is the OTLP
    ``SpanKind`` int and ``status_code`` the OTLP ``Status.code`` (0 unset, 1 ok,
    2 error). ``events`` are ``(name, attributes)`` pairs.
    """

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_time_ns: int
    end_time_ns: int
    attributes: Mapping[str, Any]
    status_code: int
    resource_attributes: Mapping[str, Any]
    events: tuple[tuple[str, Mapping[str, Any] | None], ...] = ()
    scope_name: str | None = None


@dataclass(slots=True)
class TraceResult:
    """What one trace gave: its observations, its malformed call spans (with the reason),
    and how many spans yielded nothing (not a provider call, a wrapper of one, or a
    repeat of a span id already seen). Every span is counted exactly once:
    ``len(observations) + len(malformed) + ignored == len(spans)``."""

    observations: list[RouteObservation] = field(default_factory=list)
    malformed: list[tuple[SpanRecord, MalformedSpan]] = field(default_factory=list)
    ignored: int = 0


# --- ids ----------------------------------------------------------------------------------
def _span_key(value: Any) -> str | None:
    """A span id as lower-case hex, the key spans are linked by; None when absent."""
    if type(value) is bytes:  # what the OTLP decoder gives
        return value.hex() if any(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return raw.hex() if any(raw) else None
    if isinstance(value, str):
        s = value.strip().lower()
        return s if s.strip("0") else None
    if isinstance(value, int) and not isinstance(value, bool):
        return format(value, "016x") if value > 0 else None
    return None


def _ns(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        s = value.strip()
        return s or None
    return None


# --- what a span is -------------------------------------------------------------------------
_NO_AGENT = object()  # not an agent span


def _agent_of(span: SpanRecord) -> Any:
    """The agent an agent span names (None when it names none), or ``_NO_AGENT``."""
    attrs = span.attributes
    if attrs.get(semconv.GEN_AI_OPERATION_NAME) == semconv.OP_INVOKE_AGENT:
        name = _text(attrs.get(semconv.GEN_AI_AGENT_NAME))
        if name is None and isinstance(span.name, str):
            head, _, rest = span.name.partition(" ")
            name = _text(rest) if head == semconv.OP_INVOKE_AGENT else None
        return name
    kind = attrs.get(aliases.OI_SPAN_KIND)
    if isinstance(kind, str) and kind.strip().upper() == aliases.OI_KIND_AGENT:
        return _text(attrs.get(aliases.OI_AGENT_NAME)) or _text(span.name)
    kind = attrs.get(aliases.TL_TRACELOOP_SPAN_KIND)
    if isinstance(kind, str) and kind.strip().lower() == aliases.TL_KIND_AGENT:
        name = _text(attrs.get(aliases.TL_TRACELOOP_ENTITY_NAME))
        if name is None and isinstance(span.name, str):
            name = _text(span.name.removesuffix(".agent"))
        return name
    return _NO_AGENT


def _failed(span: SpanRecord) -> bool:
    code = span.status_code
    if isinstance(code, str):
        code = {"ERROR": STATUS_ERROR, "STATUS_CODE_ERROR": STATUS_ERROR}.get(code.strip().upper(), code)
    else:
        code = getattr(code, "value", code)
    return code == STATUS_ERROR or _text(span.attributes.get(semconv.ERROR_TYPE)) is not None


def _first_text(attrs: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = _text(attrs.get(key))
        if value is not None:
            return value
    return None


def _carried_request_model(attrs: Mapping[str, Any]) -> str | None:
    model = _first_text(attrs, aliases.REQUEST_MODEL) or _first_text(attrs, aliases.REQUEST_MODEL_LAST_RESORT)
    if model is not None:
        return model
    for key in aliases.INVOCATION_PARAMETERS:
        raw = attrs.get(key)
        if isinstance(raw, str) and raw:
            try:
                params = json.loads(raw)
            except ValueError:
                continue
            if isinstance(params, dict) and (model := _text(params.get(aliases.OI_PARAM_MODEL))):
                return model
    return None


def model_from_span_name(name: Any) -> str | None:
    """The model in a span named ``"{operation} {model}"`` (``chat gpt-4o``), else None."""
    if not isinstance(name, str):
        return None
    head, _, rest = name.strip().partition(" ")
    if head.lower() not in aliases.INFERENCE_OPERATION_VALUES:
        return None
    model = rest.strip()
    return model if model and not any(c.isspace() for c in model) else None


def _provider(attrs: Mapping[str, Any]) -> str | None:
    for key in aliases.PROVIDER:
        value = normalize_provider(attrs.get(key))
        if value:
            return value
    return None


class _Call:
    """A provider-call span being enriched: its facts, and the attributes to add."""

    __slots__ = ("span", "key", "parent", "operation", "start", "end", "added", "inferred", "wrapper")

    def __init__(self, span: SpanRecord, key: str, parent: str | None, operation: str | None) -> None:
        self.span = span
        self.key = key
        self.parent = parent
        self.operation = operation
        self.start = _ns(span.start_time_ns)
        self.end = _ns(span.end_time_ns)
        self.added: dict[str, Any] = {}
        self.inferred: list[str] = []
        self.wrapper = False

    def add(self, field_name: str, attribute: str, value: Any) -> None:
        self.added[attribute] = value
        self.inferred.append(field_name)

    def model(self) -> str | None:
        attrs = self.span.attributes
        return (self.added.get(semconv.GEN_AI_REQUEST_MODEL) or _carried_request_model(attrs)
                or _first_text(attrs, aliases.RESPONSE_MODEL))


# --- the derivation of a trace -----------------------------------------------------------
def derive_trace(
    spans: Sequence[SpanRecord],
    *,
    capture_content: bool = False,
    pricer: Pricer | None = None,
) -> TraceResult:
    """The observations of one trace's spans, with what the trace tells filled in.

    Spans of several traces may be passed together (parents are looked up by span id);
    spans whose parent is missing are treated as roots. Never raises for bad spans: a
    provider-call span that cannot be derived is returned in ``malformed``.
    """
    result = TraceResult()
    by_key: dict[str, SpanRecord] = {}
    parents: dict[str, str | None] = {}
    calls: list[_Call] = []
    for span in spans:
        key = _span_key(span.span_id)
        if key is not None and key in by_key:
            result.ignored += 1  # the same span again (a resent batch)
            continue
        attrs = span.attributes
        if not isinstance(attrs, Mapping):
            result.malformed.append((span, MalformedSpan(
                f"span attributes must be a mapping, got {type(attrs).__name__}")))
            continue
        is_call, operation = classify(attrs) if attrs else (False, None)
        if key is None:
            if is_call:
                result.malformed.append((span, MalformedSpan(f"unusable span id: {span.span_id!r}")))
            else:
                result.ignored += 1
            continue
        by_key[key] = span
        parent = _span_key(span.parent_span_id)
        parents[key] = parent if parent != key else None
        if is_call:
            calls.append(_Call(span, key, parents[key], operation))

    call_by_key = {call.key: call for call in calls}
    for call in calls:
        _walk_ancestors(call, by_key, parents, call_by_key)
    kept = [call for call in calls if not call.wrapper]
    result.ignored += len(by_key) - len(kept)
    for call in kept:
        if _carried_request_model(call.span.attributes) is None:
            model = model_from_span_name(call.span.name)
            if model is not None:
                call.add("request_model", semconv.GEN_AI_REQUEST_MODEL, model)
    _infer_attempts(kept)

    for call in kept:
        _derive_call(call, result, capture_content, pricer)
    return result


def _walk_ancestors(call: _Call, by_key: Mapping[str, SpanRecord], parents: Mapping[str, str | None],
                    call_by_key: Mapping[str, _Call]) -> None:
    """Mark the call spans above ``call`` as wrappers; take the agent of the nearest agent span."""
    need_agent = _first_text(call.span.attributes, aliases.AGENT) is None
    seen = {call.key}
    parent = call.parent
    while parent is not None and parent not in seen:
        seen.add(parent)
        ancestor = by_key.get(parent)
        if ancestor is None:
            break
        above = call_by_key.get(parent)
        if above is not None:
            above.wrapper = True
        if need_agent:
            agent = _agent_of(ancestor)
            if agent is not _NO_AGENT:
                need_agent = False
                if agent is not None:
                    call.add("agent", semconv.GEN_AI_AGENT_NAME, agent)
        parent = parents.get(parent)


def _infer_attempts(calls: list[_Call]) -> None:
    groups: dict[tuple[str | None, str | None], list[_Call]] = {}
    for call in calls:
        if call.start is not None and call.end is not None:
            groups.setdefault((call.parent, call.operation), []).append(call)
    for group in groups.values():
        group.sort(key=lambda c: (c.start, c.key))
        first = previous = None
        attempt = 0
        for call in group:
            if previous is not None and _failed(previous.span) and previous.end <= call.start:
                attempt += 1
            else:
                first, attempt = call, 0
            _set_attempt(call, first, attempt)
            previous = call


def _set_attempt(call: _Call, first: _Call, attempt: int) -> None:
    attrs = call.span.attributes
    if semconv.OTEL_LLM_ATTEMPT not in attrs:
        call.add("attempt", semconv.OTEL_LLM_ATTEMPT, attempt)
    if semconv.OTEL_LLM_FALLBACK not in attrs:
        fallback = False if attempt == 0 else _differs(call, first)
        if fallback is not None:
            call.add("fallback", semconv.OTEL_LLM_FALLBACK, fallback)
    if attempt > 0 and semconv.OTEL_LLM_LOGICAL_CALL_ID not in attrs:
        logical = _text(first.span.attributes.get(semconv.OTEL_LLM_LOGICAL_CALL_ID)) or first.key
        call.add("logical_call_id", semconv.OTEL_LLM_LOGICAL_CALL_ID, logical)


def _differs(call: _Call, first: _Call) -> bool | None:
    """Whether a later attempt went to another provider or model than the run's first."""
    compared = False
    for mine, theirs in ((_provider(call.span.attributes), _provider(first.span.attributes)),
                         (call.model(), first.model())):
        if mine is None or theirs is None:
            continue
        if mine != theirs:
            return True
        compared = True
    return False if compared else None


def _derive_call(call: _Call, result: TraceResult, capture_content: bool, pricer: Pricer | None) -> None:
    span = call.span
    attrs = span.attributes
    if call.added:
        attrs = {**attrs, **call.added, semconv.OTEL_LLM_INFERRED: list(call.inferred)}
    try:
        observation = derive_from_parts(
            trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id or None,
            start_time_ns=span.start_time_ns, end_time_ns=span.end_time_ns, attributes=attrs,
            status_code=span.status_code, resource_attributes=span.resource_attributes,
            events=span.events or (), capture_content=capture_content, pricer=pricer,
            classified=(True, call.operation),  # what is added names no operation
        )
    except MalformedSpan as exc:
        result.malformed.append((span, exc))
        return
    except Exception as exc:  # noqa: BLE001 - one hostile span must not lose its trace
        result.malformed.append((span, MalformedSpan(f"span cannot be derived: {exc!r}")))
        return
    if observation is None:
        result.ignored += 1
    else:
        result.observations.append(observation)


# --- holding spans until their trace is complete ----------------------------------------
class _Trace:
    __slots__ = ("key", "spans", "tokens", "first", "last", "done")

    def __init__(self, key: Any, now: float) -> None:
        self.key = key
        self.spans: list[SpanRecord] = []
        self.tokens: set[Any] = set()
        self.first = now
        self.last = now
        self.done = False


class TraceBuffer:
    """Received spans grouped by trace, until the trace has likely arrived whole.

    A trace is ready ``hold_s`` seconds after its *last* span arrived, and at the latest
    ``max_age_s`` after its first (a trace that keeps growing is not held forever).
    Memory is bounded: a trace reaching ``max_spans_per_trace`` spans is ready at once,
    and when more than ``max_spans`` spans are held the oldest traces (by first arrival)
    are made ready early (counted in :attr:`evicted_traces`). Spans of a trace that
    arrive after it was handed out start a new group, derived without the earlier spans.

    Not locked: the caller serialises calls. Tokens (any hashable, e.g. a batch id) come
    back with the traces that hold spans of that batch, so the caller knows when every
    span of a received batch has been handed out. Call :meth:`take_ready` after
    :meth:`add`: spans made ready by the bounds wait there.
    """

    def __init__(
        self,
        *,
        hold_s: float = 5.0,
        max_spans: int = 100_000,
        max_spans_per_trace: int = 10_000,
        max_age_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if hold_s < 0 or max_spans < 1 or max_spans_per_trace < 1:
            raise ValueError("hold_s must be >= 0, max_spans and max_spans_per_trace >= 1")
        self.hold_s = hold_s
        self.max_age_s = max(hold_s, max_age_s if max_age_s is not None else max(30.0, 6 * hold_s))
        self.max_spans = max_spans
        self.max_spans_per_trace = max_spans_per_trace
        self._clock = clock
        self._traces: OrderedDict[Any, _Trace] = OrderedDict()  # by last arrival
        self._by_first: deque[_Trace] = deque()  # by first arrival (released ones skipped)
        self._ready: list[tuple[list[SpanRecord], set[Any]]] = []
        self._held = 0
        self._ready_spans = 0
        #: Traces handed out before their hold expired, to stay within ``max_spans``.
        self.evicted_traces = 0

    def __len__(self) -> int:
        """Spans held, ready ones not yet taken included."""
        return self._held + self._ready_spans

    @property
    def traces(self) -> int:
        """Traces being held (not yet ready)."""
        return len(self._traces)

    def add(self, spans: Iterable[SpanRecord], token: Any = None) -> None:
        """Hold ``spans``; ``token`` (if not None) comes back with each trace they join."""
        now = self._clock()
        traces = self._traces
        for span in spans:
            key = span.trace_id
            trace = traces.get(key)
            if trace is None:
                trace = traces[key] = _Trace(key, now)
                self._by_first.append(trace)
            elif trace.last != now:
                trace.last = now
                traces.move_to_end(key)
            trace.spans.append(span)
            if token is not None:
                trace.tokens.add(token)
            self._held += 1
            if len(trace.spans) >= self.max_spans_per_trace:
                self._release(trace)
        while self._held > self.max_spans:
            self._release(self._oldest())
            self.evicted_traces += 1

    def take_ready(self, *, now: float | None = None, everything: bool = False
                   ) -> list[tuple[list[SpanRecord], set[Any]]]:
        """The traces ready now (or all of them), each as its spans and its batches' tokens."""
        if now is None:
            now = self._clock()
        if everything:
            for trace in list(self._traces.values()):
                self._release(trace)
        else:
            traces = self._traces
            while traces:
                trace = next(iter(traces.values()))
                if now - trace.last < self.hold_s:
                    break
                self._release(trace)
            by_first = self._by_first
            while by_first:
                trace = by_first[0]
                if trace.done:
                    by_first.popleft()
                elif now - trace.first >= self.max_age_s:
                    self._release(trace)
                else:
                    break
        ready, self._ready, self._ready_spans = self._ready, [], 0
        return ready

    def _oldest(self) -> _Trace:
        by_first = self._by_first
        while by_first[0].done:
            by_first.popleft()
        return by_first[0]

    def _release(self, trace: _Trace) -> None:
        del self._traces[trace.key]
        trace.done = True
        count = len(trace.spans)
        self._held -= count
        self._ready_spans += count
        self._ready.append((trace.spans, trace.tokens))
        if len(self._by_first) > 2 * len(self._traces) + 1024:
            self._by_first = deque(t for t in self._by_first if not t.done)
