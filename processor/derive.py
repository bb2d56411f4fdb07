"""Span -> route observation: one pure function, shared by every ingest path.

:func:`derive` reads anything shaped like an SDK ``ReadableSpan`` (see :class:`SpanLike`);
:func:`derive_from_parts` takes the same facts as plain values, for the OTLP collector,
which decodes spans itself. Both end in the same code, so an in-process span and the same
span received over OTLP give the same observation. :func:`is_candidate` is the cheap
pre-filter the span processor runs on the application thread; it never rejects a span
:func:`derive` would accept.

Which spans count. A span is a provider-call attempt when its operation is an inference
operation (``chat``, ``text_completion``, ``generate_content``, ``embeddings``), read
from ``gen_ai.operation.name``, OpenLLMetry's ``llm.request.type`` or OpenLIT's older
``gen_ai.type``; or when OpenInference marks it ``LLM``/``EMBEDDING`` (an ``LLM`` span
is ``chat`` when it records messages, ``text_completion`` when it records prompts, else
of unknown operation); or, with no operation at all, when it names both a provider and a
model under the conventions' names. Everything else — HTTP
client spans, application spans, ``invoke_agent``, ``execute_tool``, fallback-chain
spans — yields ``None``.

Fields. Each field is read through the alias table in :mod:`processor.aliases`: the
first attribute a span carries with a usable value wins. A value the span does not
carry stays ``None`` — never guessed, never 0. A value of the wrong type (a token count
of ``"many"``) leaves its field ``None``, stays in ``attributes`` as it was, and the
field is listed under ``otel_llm.invalid_fields``; the observation is still produced.
Only a span with no usable identity or timing raises :class:`MalformedSpan`.

Route. ``route`` is the route name when the span has one (``otel_llm.route``);
otherwise ``"{provider}|{model}"`` with the request model (the response model when no
request model is known); with only one of the two known, that one alone; with neither,
``None``. ``|`` appears in no provider or model name, so the key is unambiguous.

Outcome. ``ok`` is true when the status is not ERROR and there is no ``error.type``.
``error_type`` is ``error.type``, else the type of the last ``exception`` event of an
ERROR span, else ``_OTHER`` for an ERROR span.

Cost. A cost the span reports (``otel_llm.cost.usd``, OpenInference ``llm.cost.total``,
OpenLIT ``gen_ai.usage.cost`` when not 0) is kept with basis ``reported`` (or the basis
our own span gives). Otherwise a self-hosted call (ollama, vllm, lmstudio, llama.cpp, or
a server on this machine) costs 0 with basis ``local``. Otherwise the optional
``pricer`` computes it (basis ``computed``); without one the cost is ``None`` with basis
``unknown``. A pricer also fills ``computed_cost_usd`` beside a reported cost; it is
handed the finished observation (``cost_basis`` ``unknown`` or ``reported``), and a
pricer that raises is logged and leaves the cost as it was.

Attributes. What is left after the fields are read goes into ``attributes``, minus
message content (prompts, completions, ``input.value``/``output.value`` ...) unless
``capture_content=True``. Strings are cut at :data:`MAX_VALUE_CHARS`, sequences at
:data:`MAX_SEQUENCE_ITEMS`, and at most :data:`MAX_ATTRIBUTES` keys are kept.
"""

from __future__ import annotations

import json
import math
from types import MappingProxyType
from urllib.parse import urlsplit
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from otel_llm import semconv
from processor import aliases
from processor.observation import COLUMNS, RouteObservation, make_observation
from processor.pricing import PriceBook
from processor.derive_compiled import compile_fast_path, read_lines
from processor.providers import is_local, normalize_provider

#: Computes a call's cost from its observation (tokens, provider, model, time), or None.
Pricer = Callable[[RouteObservation], "Decimal | None"]

MAX_VALUE_CHARS = 4096
MAX_SEQUENCE_ITEMS = 64
MAX_ATTRIBUTES = 128
#: JSON attributes longer than this are not parsed (tool definitions, output messages).
MAX_JSON_CHARS = 1_000_000

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STATUS_ERROR = 2  # StatusCode.ERROR in the SDK and STATUS_CODE_ERROR in OTLP
_ERROR_STATUS_NAMES = frozenset({"ERROR", "STATUS_CODE_ERROR", "2"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_OUR_COST_BASES = frozenset({semconv.COST_BASIS_REPORTED, semconv.COST_BASIS_COMPUTED, semconv.COST_BASIS_LOCAL})


#: The order :func:`_derive` passes the fields in; it must be the declaration order.
_FIELD_ORDER = (
    "trace_id",
    "span_id",
    "started_at",
    "duration_ms",
    "parent_span_id",
    "logical_call_id",
    "ttft_ms",
    "service_name",
    "instance_id",
    "agent",
    "session_id",
    "user_id",
    "tags",
    "operation",
    "provider",
    "server_address",
    "request_model",
    "response_model",
    "route",
    "attempt",
    "fallback",
    "stream",
    "ok",
    "error_type",
    "http_status",
    "finish_reason",
    "input_tokens",
    "cached_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "tools_offered",
    "tool_calls",
    "cost_usd",
    "cost_basis",
    "computed_cost_usd",
    "routing_complexity",
    "routing_score",
    "attributes",
)
#: Position of ``cost_usd``, followed by ``cost_basis`` and ``computed_cost_usd``.
_COST_AT = _FIELD_ORDER.index("cost_usd")
assert _FIELD_ORDER[_COST_AT:_COST_AT + 3] == ("cost_usd", "cost_basis", "computed_cost_usd")
if _FIELD_ORDER != COLUMNS:  # pragma: no cover - guards an edit of RouteObservation
    raise ImportError("processor.derive passes RouteObservation's fields by position: "
                      "update _derive and _FIELD_ORDER to the new field order")


class MalformedSpan(ValueError):
    """A provider-call span too broken to turn into an observation (ids or times unusable)."""


# --- the shape of a span ------------------------------------------------------------------
class SpanContextLike(Protocol):
    """Trace and span id: an int (SDK), 16/8 raw bytes (OTLP protobuf) or hex (OTLP/JSON)."""

    @property
    def trace_id(self) -> int | bytes | str: ...

    @property
    def span_id(self) -> int | bytes | str: ...


class StatusLike(Protocol):
    """A span status; ``status_code`` is an SDK ``StatusCode``, an OTLP int or a name."""

    @property
    def status_code(self) -> Any: ...


class EventLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def attributes(self) -> Mapping[str, Any] | None: ...


class ResourceLike(Protocol):
    @property
    def attributes(self) -> Mapping[str, Any]: ...


class SpanLike(Protocol):
    """What derivation reads from a span; an SDK ``ReadableSpan`` is one."""

    @property
    def name(self) -> str: ...

    @property
    def context(self) -> SpanContextLike | None: ...

    @property
    def parent(self) -> SpanContextLike | None: ...

    @property
    def start_time(self) -> int | None: ...

    @property
    def end_time(self) -> int | None: ...

    @property
    def attributes(self) -> Mapping[str, Any] | None: ...

    @property
    def status(self) -> StatusLike | None: ...

    @property
    def resource(self) -> ResourceLike | None: ...

    @property
    def events(self) -> Sequence[EventLike]: ...


# --- which spans are provider calls ---------------------------------------------------------
#: Operation values already classified (a process sees a handful; bounded all the same).
_OPERATION_VALUES: dict[str, tuple[bool, str | None]] = {}


def _operation_value(value: Any) -> tuple[bool, str | None]:
    if type(value) is str:
        known = _OPERATION_VALUES.get(value)
        if known is not None:
            return known
    if not isinstance(value, str):
        return False, None
    mapped = aliases.INFERENCE_OPERATION_VALUES.get(value.strip().lower())
    out = (mapped is not None, mapped)
    if type(value) is str and len(value) <= 64:
        if len(_OPERATION_VALUES) >= 256:
            _OPERATION_VALUES.clear()
        _OPERATION_VALUES[value] = out
    return out


def classify(attributes: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Whether a span with these attributes is a provider call, and its operation if known."""
    op = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if op is not None:
        return _operation_value(op)
    request_type = attributes.get(aliases.TL_LLM_REQUEST_TYPE)
    if request_type is not None:
        return _operation_value(request_type)
    kind = attributes.get(aliases.OI_SPAN_KIND)
    if kind is not None:
        kind = kind.strip().upper() if isinstance(kind, str) else None
        if kind == aliases.OI_KIND_EMBEDDING:
            return True, semconv.OP_EMBEDDINGS
        return kind == aliases.OI_KIND_LLM, None
    old_type = attributes.get(aliases.OL_GEN_AI_TYPE)
    if old_type is not None:
        return _operation_value(old_type)
    # No operation named at all (early GenAI instrumentations): a provider and a model, by
    # the conventions' names, make it a call. Other projects always name the span's kind.
    has_provider = any(normalize_provider(attributes.get(k)) for k in aliases.PROVIDER_WITHOUT_OPERATION)
    has_model = any(_text(attributes.get(k)) for k in aliases.MODEL_WITHOUT_OPERATION)
    return has_provider and has_model, None


def is_candidate(attributes: Mapping[str, Any] | None) -> bool:
    """Cheap test for the span processor's hot path: may this span be a provider call?

    Never says no to a span :func:`derive` would accept. Costs a set-disjointness test for
    spans without any GenAI attribute (the common case).
    """
    if not attributes or aliases.CANDIDATE_KEYS.isdisjoint(attributes):
        return False
    return classify(attributes)[0]


def span_attributes(span: Any) -> Mapping[str, Any] | None:
    """A span's attributes as cheaply as they can be read, never to be modified.

    An SDK span hands out a read-only view of an attribute container implemented in
    Python; the plain dict inside it is read directly when it is there (a finished span's
    attributes no longer change), which makes every lookup a C-speed dict lookup.
    """
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", None)
    if type(inner) is dict:
        return inner
    if type(raw) is dict:
        return raw
    return span.attributes


# --- value conversion (None = unusable) ---------------------------------------------------
def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        s = value.strip()
        return int(s) if s.isascii() and s.isdigit() else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _seconds(value: Any) -> float | None:
    out = _number(value)
    return out if out is not None and out >= 0 else None


def _positive_seconds(value: Any) -> float | None:
    out = _number(value)
    return out if out is not None and out > 0 else None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        s = value.strip()
        return s or None
    return None


def _error_type(value: Any) -> str | None:
    """``error.type`` as written; ``"<class 'openai.RateLimitError'>"`` (the ``str`` of an
    exception class, as some instrumentations write it) becomes ``openai.RateLimitError``."""
    text = _text(value)
    if text is not None and text.startswith("<class '") and text.endswith("'>"):
        return text[8:-2].strip() or None
    return text


def _ident(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    if isinstance(value, str):
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    return None


def _first_text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return _text(value[0]) if value else None
    return _text(value)


def _http_status(value: Any) -> int | None:
    out = _count(value)
    return out if out is not None and 100 <= out <= 599 else None


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, Decimal):
            out = value
        elif isinstance(value, (int, float)):
            out = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        elif isinstance(value, str):
            out = Decimal(value.strip())
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() and out >= 0 else None


_HEX_FORMAT = {32: "032x", 16: "016x"}
_TRACE_ID_LIMIT = 1 << 128
_SPAN_ID_LIMIT = 1 << 64
_ID_LIMIT = {32: 1 << 128, 16: 1 << 64}
_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def _hex_id(value: Any, width: int) -> str | None:
    """An id as ``width`` lower-case hex digits, or None when it is not a valid (non-zero) id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return format(value, _HEX_FORMAT[width]) if 0 < value < _ID_LIMIT[width] else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return raw.hex() if len(raw) * 2 == width and any(raw) else None
    if isinstance(value, str):
        s = value.strip().lower()
        if len(s) == width and s.isascii():
            try:
                return s if int(s, 16) != 0 else None
            except ValueError:
                return None
    return None


def _time_ns(value: Any) -> int | None:
    out = _count(value)
    return out if out else None


_SDK_UNSET, _SDK_OK, _SDK_ERROR = StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR
#: (type, status code) -> is it ERROR; a span's status is one of a handful of values.
_ERROR_STATUS: dict[tuple[type, Any], bool] = {}


def _is_error_status(code: Any) -> bool:
    if code is None or code is _SDK_UNSET or code is _SDK_OK:  # the usual: no hashing of an enum
        return False
    if code is _SDK_ERROR:
        return True
    key = (type(code), code)
    try:
        return _ERROR_STATUS[key]
    except (KeyError, TypeError):  # TypeError: unhashable
        pass
    out = _error_status(code)
    try:
        if len(_ERROR_STATUS) < 256:
            _ERROR_STATUS[key] = out
    except TypeError:
        pass
    return out


def _error_status(code: Any) -> bool:
    value = getattr(code, "value", code)
    if isinstance(value, int) and not isinstance(value, bool):
        return value == _STATUS_ERROR
    if isinstance(value, str):
        return value.strip().upper() in _ERROR_STATUS_NAMES
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, bool) or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value[:MAX_SEQUENCE_ITEMS]]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[: MAX_VALUE_CHARS // 2]).hex()
    return str(value)[:MAX_VALUE_CHARS]


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str) or len(value) > MAX_JSON_CHARS:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _host_of(url: Any) -> str | None:
    text = _text(url)
    if text is None:
        return None
    try:
        host = urlsplit(text if "//" in text else "//" + text).hostname
    except ValueError:
        return None
    return host or None


# --- reading fields ----------------------------------------------------------------------
def _keys(names: Iterable[str], conv: Callable[[Any], Any]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    return tuple((name, conv) for name in names)


#: Fields read straight off the attributes: field -> (attribute, converter) pairs in order
#: of preference. A field's value is the first usable one; every usable one is consumed.
_FIELDS: Mapping[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    "provider": _keys(aliases.PROVIDER, normalize_provider),
    # The request model from invocation parameters ranks between these two groups.
    "request_model": _keys(aliases.REQUEST_MODEL, _text) + _keys(aliases.REQUEST_MODEL_LAST_RESORT, _text),
    "response_model": _keys(aliases.RESPONSE_MODEL, _text),
    "server_address": _keys(aliases.SERVER_ADDRESS, _text) + _keys(aliases.SERVER_URL, _host_of),
    "stream": _keys(aliases.STREAM, _flag),
    "agent": _keys(aliases.AGENT, _text),
    "session_id": _keys(aliases.SESSION, _ident),
    "user_id": _keys(aliases.USER, _ident),
    "route": _keys((semconv.OTEL_LLM_ROUTE,), _text),
    "attempt": _keys((semconv.OTEL_LLM_ATTEMPT,), _count),
    "fallback": _keys((semconv.OTEL_LLM_FALLBACK,), _flag),
    "logical_call_id": _keys((semconv.OTEL_LLM_LOGICAL_CALL_ID,), _ident),
    "error_type": _keys((semconv.ERROR_TYPE,), _error_type),
    "http_status": _keys(aliases.HTTP_STATUS, _http_status),
    "finish_reason": _keys(aliases.FINISH_REASON, _first_text),
    "input_tokens": _keys(aliases.INPUT_TOKENS, _count),
    "output_tokens": _keys(aliases.OUTPUT_TOKENS, _count),
    "cached_input_tokens": _keys(aliases.CACHED_INPUT_TOKENS, _count),
    "cache_creation_input_tokens": _keys(aliases.CACHE_CREATION_INPUT_TOKENS, _count),
    "reasoning_tokens": _keys(aliases.REASONING_TOKENS, _count),
    "total_tokens": _keys(aliases.TOTAL_TOKENS, _count),
    "tools_offered": _keys((semconv.OTEL_LLM_TOOLS_OFFERED,), _count),
    "tool_calls": _keys((semconv.OTEL_LLM_TOOL_CALLS,), _count),
    "ttft_ms": _keys(aliases.TTFT_SECONDS, _seconds),
    "routing_complexity": _keys((semconv.OTEL_LLM_ROUTING_COMPLEXITY,), _text),
    "routing_score": _keys((semconv.OTEL_LLM_ROUTING_SCORE,), _number),
}


def _build_index() -> dict[str, tuple[tuple[str, int, Callable[[Any], Any]], ...]]:
    index: dict[str, list[tuple[str, int, Callable[[Any], Any]]]] = {}
    for field, pairs in _FIELDS.items():
        for rank, (name, conv) in enumerate(pairs):
            index.setdefault(name, []).append((field, rank, conv))
    return {name: tuple(entries) for name, entries in index.items()}


#: Attribute name -> the fields it feeds, with its rank there: one dict lookup per attribute.
_INDEX = _build_index()
#: Rank from which ``request_model`` comes from a last-resort name (``llm.model_name``).
_REQUEST_MODEL_LAST_RESORT_RANK = len(aliases.REQUEST_MODEL)


#: Attribute-name layouts already seen -> what depends on the names alone (see
#: :func:`_layout`). Spans from one instrumentation share a handful of layouts.
_LAYOUTS: dict[tuple[str, ...], "_Layout"] = {}
_LAYOUTS_MAX = 2048


class _Layout:
    """Everything about a span's attributes that depends only on their names, worked out
    once per distinct set of names: which attributes feed which fields, and the key scan."""

    __slots__ = ("reads", "read_keys", "read", "scan", "operation_keys", "cost_keys", "parameter_keys",
                 "keep", "keep_content", "keep_unread", "keep_content_unread", "fast", "fast_span")

    def __init__(self, keys: tuple[str, ...]) -> None:
        index = _INDEX
        present = set(keys)
        candidates: dict[str, int] = {}
        for key in keys:
            for field, _rank, _conv in index.get(key, ()):
                candidates[field] = candidates.get(field, 0) + 1
        #: (attribute, field, rank, converter, inline conversion, rank matters), in the
        #: span's order. A field fed by one attribute of this layout needs no rank check.
        self.reads: tuple[tuple[str, str, int, Callable[[Any], Any], int, bool], ...] = tuple(
            (key, field, rank, conv, _INLINE.get(conv, 0),
             candidates[field] > 1 or field in _RANKED_FIELDS)
            for key in keys for field, rank, conv in index.get(key, ()))
        self.read_keys = frozenset(r[0] for r in self.reads)
        self.read = _compile_reader(self.reads)
        self.scan = scan = _KeyScan(keys)
        self.operation_keys = tuple(k for k in _OPERATION_KEYS if k in present)
        self.cost_keys = tuple(k for k in aliases.COST_USD if k in present)
        self.parameter_keys = tuple(k for k in aliases.INVOCATION_PARAMETERS if k in present)
        # Candidates for ``attributes``, in the span's order: all but tags (and content).
        content = set(scan.content)
        tag_prefix = semconv.OTEL_LLM_TAGS_PREFIX
        self.keep_content = tuple(k for k in keys if not k.startswith(tag_prefix))
        self.keep = tuple(k for k in self.keep_content if k not in content)
        self.keep_content_unread = tuple(k for k in self.keep_content if k not in self.read_keys)
        self.keep_unread = tuple(k for k in self.keep if k not in self.read_keys)
        #: The whole derivation compiled for this layout, when its names allow it
        #: (see :mod:`processor.derive_compiled`); None sends every span the general way.
        compiled = compile_fast_path(keys, self, _FAST_PATH_HELPERS)
        self.fast, self.fast_span = compiled if compiled is not None else (None, None)


def _compile_reader(reads: Sequence[tuple[str, str, int, Callable[[Any], Any], int, bool]]
                    ) -> Callable[[Mapping[str, Any]], tuple[dict[str, Any], dict[str, int], list[int] | None]]:
    """A function reading one layout's fields: ``attrs -> (values, ranks, failed)``.

    Straight-line code, one block per read: every span of a layout runs the same reads, and
    a generated function does them at a fraction of the cost of a loop interpreting the
    read table (this is the hottest code of ingestion). Attribute names never enter the
    generated source (they come from spans): it refers to them and to the converters by
    position in tuples it closes over. ``failed`` lists the positions in ``reads`` whose
    value was unusable, or is None when there are none. An empty or blank string is no
    value at all rather than an unusable one: instrumentations write ``""`` for what the
    application did not pass (OpenLIT's ``gen_ai.request.user``).
    """
    lines = ["def read(attrs):", " values = {}", " ranks = {}", " failed = None"]
    for i, (_key, field, rank, _conv, inline, ranked) in enumerate(reads):
        lines += read_lines(i, inline, "v")
        lines.append(" if v is None:")
        lines.append(f"  if not (type(r) is str and not r.strip()): failed = [{i}] if failed is None else failed + [{i}]")
        if not ranked:
            lines.append(f" else: values[{field!r}] = v")
        else:
            lines.append(f" elif {rank} < ranks.get({field!r}, {rank + 1}):")
            lines.append(f"  values[{field!r}] = v")
            lines.append(f"  ranks[{field!r}] = {rank}")
    lines.append(" return values, ranks, failed")
    namespace: dict[str, Any] = {"K": tuple(r[0] for r in reads), "C": tuple(r[3] for r in reads)}
    exec("\n".join(lines), namespace)  # noqa: S102 - our own source; see the docstring
    return namespace["read"]


#: Converters :class:`_Reader` inlines for their usual type (1: str, 2: int, 3: bool).
_INLINE: dict[Callable[[Any], Any], int] = {_text: 1, _count: 2, _flag: 3}
#: Fields whose winning rank is read after the pass.
_RANKED_FIELDS = frozenset({"request_model"})

#: Names that say a span's operation (consumed whenever present).
_OPERATION_KEYS = (semconv.GEN_AI_OPERATION_NAME, aliases.TL_LLM_REQUEST_TYPE, aliases.OI_SPAN_KIND,
                   aliases.OL_GEN_AI_TYPE)


def _layout(attrs: Mapping[str, Any]) -> "_Layout":
    keys = tuple(attrs)
    layout = _LAYOUTS.get(keys)
    if layout is None:
        layout = _Layout(keys)
        if len(_LAYOUTS) >= _LAYOUTS_MAX:
            _LAYOUTS.clear()
        _LAYOUTS[keys] = layout
    return layout


class _Reader:
    """The fields of one span's attributes, read in one pass; remembers what it used and what was unusable."""

    __slots__ = ("attrs", "values", "ranks", "consumed", "invalid", "failed_keys")

    def __init__(self, attrs: Mapping[str, Any], layout: "_Layout | None" = None) -> None:
        self.attrs = attrs
        layout = layout or _layout(attrs)
        values, ranks, failed = layout.read(attrs)
        self.values = values
        self.ranks = ranks
        if failed is None:
            #: What was used besides the attributes read into fields (those always are,
            #: and :func:`_derive` does not look at them again when none failed).
            self.consumed: set[str] = set()
            #: Attributes read for a field whose value was unusable there.
            self.failed_keys: list[str] = []
            self.invalid: list[str] = []
            return
        reads = layout.reads
        failed_keys = [reads[i][0] for i in failed]
        # Every attribute read is consumed when any field could use its value.
        consumed = set(layout.read_keys)
        for key in failed_keys:
            raw = attrs[key]
            if all(conv(raw) is None for _field, _rank, conv in _INDEX[key]):
                consumed.discard(key)
        self.consumed = consumed
        self.failed_keys = failed_keys
        self.invalid = sorted({reads[i][1] for i in failed} - values.keys())

    def mark_invalid(self, field: str) -> None:
        if field not in self.invalid:
            self.invalid.append(field)

    def mark_resolved(self, field: str) -> None:
        """A field found another way (a fallback source) is not reported as unusable."""
        if field in self.invalid:
            self.invalid.remove(field)


#: A recorded answer has content (``gen_ai.completion.0.content``,
#: ``llm.output_messages.0.message.content``); seeing it means its tool calls were recorded
#: too. A role alone does not: OpenLLMetry's Ollama instrumentation records the role of an
#: answer that called tools, but not the calls.
_CONTENT_SUFFIX = ".content"


#: Every prefix :class:`_KeyScan` looks at; other keys cost one ``startswith`` call.
_SCANNED_PREFIXES = (
    semconv.OTEL_LLM_TAGS_PREFIX, aliases.TL_REQUEST_FUNCTIONS_PREFIX, aliases.OI_TOOLS_PREFIX,
    *aliases.CONTENT_PREFIXES,
)


class _KeyScan:
    """One pass over the attribute names for indexed and prefixed attributes.

    Depends on the names only (so it is shared by every span of one layout, and never
    modified); the tags' values are read per span by :func:`_tags`.
    """

    __slots__ = ("tag_keys", "content", "tool_def_keys", "tool_def_indices", "tool_call_pairs",
                 "tool_call_keys", "saw_completion", "chat_keys", "completion_keys")

    def __init__(self, keys: Iterable[str]) -> None:
        self.tag_keys: list[tuple[str, str]] = []
        self.content: list[str] = []
        self.tool_def_keys: list[str] = []
        self.tool_def_indices: set[str] = set()
        self.tool_call_pairs: set[tuple[str, str]] = set()
        self.tool_call_keys: list[str] = []
        self.saw_completion = False
        self.chat_keys = False
        self.completion_keys = False
        tag_prefix = semconv.OTEL_LLM_TAGS_PREFIX
        content_keys = aliases.CONTENT_KEYS
        for key in keys:
            if not key.startswith(_SCANNED_PREFIXES):
                if key in content_keys:
                    self.content.append(key)
                continue
            if key.startswith(tag_prefix):
                name = key[len(tag_prefix):]
                if name:
                    self.tag_keys.append((key, name))
                continue
            if key in aliases.CONTENT_KEYS or _has_prefix(key, aliases.CONTENT_PREFIXES):
                self.content.append(key)
            if key.startswith(aliases.TL_REQUEST_FUNCTIONS_PREFIX):
                self._tool_def(key, aliases.TL_REQUEST_FUNCTIONS_PREFIX)
            elif key.startswith(aliases.OI_TOOLS_PREFIX):
                self._tool_def(key, aliases.OI_TOOLS_PREFIX)
            elif key.startswith(aliases.TL_COMPLETION_PREFIX + "."):
                self.saw_completion = self.saw_completion or key.endswith(_CONTENT_SUFFIX)
                self._tool_call(key, aliases.TL_COMPLETION_PREFIX + ".", aliases.TL_TOOL_CALLS_INFIX)
            elif key.startswith(aliases.OI_OUTPUT_MESSAGES_PREFIX + "."):
                self.saw_completion = self.saw_completion or key.endswith(_CONTENT_SUFFIX)
                self.chat_keys = True
                self._tool_call(key, aliases.OI_OUTPUT_MESSAGES_PREFIX + ".", aliases.OI_TOOL_CALLS_INFIX)
            elif key.startswith(aliases.OI_INPUT_MESSAGES_PREFIX + "."):
                self.chat_keys = True
            elif key.startswith(aliases.OI_PROMPTS_PREFIX) or key.startswith(aliases.OI_CHOICES_PREFIX):
                self.completion_keys = True

    def _tool_def(self, key: str, prefix: str) -> None:
        index = key[len(prefix):].split(".", 1)[0]
        if index.isdigit():
            self.tool_def_indices.add(index)
            self.tool_def_keys.append(key)

    def _tool_call(self, key: str, prefix: str, infix: str) -> None:
        rest = key[len(prefix):]
        index, _, tail = rest.partition(".")
        tail = "." + tail
        if index.isdigit() and tail.startswith(infix):
            call = tail[len(infix):].split(".", 1)[0]
            if call.isdigit():
                self.tool_call_pairs.add((index, call))
                self.tool_call_keys.append(key)


def _has_prefix(key: str, prefixes: Sequence[str]) -> bool:
    for prefix in prefixes:
        if key.startswith(prefix) and (len(key) == len(prefix) or key[len(prefix)] == "."):
            return True
    return False


def _tags(attrs: Mapping[str, Any], scan: _KeyScan) -> dict[str, str]:
    """The span's ``otel_llm.tag.*`` attributes by tag name (a new dict per span)."""
    return {name: _tag_value(attrs[key]) for key, name in scan.tag_keys} if scan.tag_keys else {}


def _tag_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return str(value)[:MAX_VALUE_CHARS]


def _count_tool_call_parts(messages: Any) -> int | None:
    if not isinstance(messages, list):
        return None
    count = 0
    for message in messages:
        parts = message.get("parts") if isinstance(message, dict) else None
        if not isinstance(parts, list):
            continue
        count += sum(1 for p in parts if isinstance(p, dict) and p.get("type") == "tool_call")
    return count


def _tools_offered(reader: _Reader, scan: _KeyScan) -> int | None:
    """Our count, else the length of the conventions' JSON definitions, else indexed names."""
    offered = reader.values.get("tools_offered")
    if offered is None:
        definitions = reader.attrs.get(semconv.GEN_AI_TOOL_DEFINITIONS)
        if definitions is not None:
            parsed = _parse_json(definitions) if isinstance(definitions, str) else definitions
            if isinstance(parsed, (list, tuple)):
                reader.consumed.add(semconv.GEN_AI_TOOL_DEFINITIONS)
                offered = len(parsed)
            else:
                reader.mark_invalid("tools_offered")
    if offered is None and scan.tool_def_indices:
        reader.consumed.update(scan.tool_def_keys)
        offered = len(scan.tool_def_indices)
    if offered is not None:
        reader.mark_resolved("tools_offered")
    return offered


def _tool_calls(reader: _Reader, scan: _KeyScan) -> int | None:
    calls = reader.values.get("tool_calls")
    if calls is not None:
        return calls
    if scan.tool_call_pairs or scan.saw_completion:
        # The completion is on the span: its tool calls (possibly none) are too.
        return len(scan.tool_call_pairs)
    output = reader.attrs.get(semconv.GEN_AI_OUTPUT_MESSAGES)
    if output is not None:
        return _count_tool_call_parts(_parse_json(output))
    return None


#: The last resource read, with its service name and instance id: the spans of one
#: process share one resource, so it is read once, not once per span.
_last_resource: tuple[Any, tuple[str | None, str | None]] = (None, (None, None))


def _service_of(resource_attributes: Any) -> tuple[str | None, str | None]:
    """``service.name`` and ``service.instance.id`` of a span's resource."""
    global _last_resource
    last = _last_resource
    if resource_attributes is last[0] and resource_attributes is not None:
        return last[1]
    resource = resource_attributes if isinstance(resource_attributes, Mapping) else {}
    found = (_text(resource.get(semconv.SERVICE_NAME)), _ident(resource.get(semconv.SERVICE_INSTANCE_ID)))
    # An SDK resource's attributes, or the read-only view the collector makes of an OTLP
    # resource's (shared by the spans of one request), never change.
    if type(resource_attributes) is MappingProxyType or getattr(resource_attributes, "_immutable", False) is True:
        _last_resource = (resource_attributes, found)  # one store: threads see old or new, whole
    return found


def _invocation_parameters(attrs: Mapping[str, Any],
                           keys: Iterable[str] = aliases.INVOCATION_PARAMETERS) -> Mapping[str, Any]:
    for key in keys:
        parsed = _parse_json(attrs.get(key))
        if isinstance(parsed, dict):
            return parsed
    return {}


def _exception_type(events: Iterable[Any]) -> str | None:
    found = None
    for event in events:
        if isinstance(event, tuple):
            name, attributes = event
        else:
            name, attributes = getattr(event, "name", None), getattr(event, "attributes", None)
        if name == semconv.EXCEPTION_EVENT and attributes:
            found = _text(attributes.get(semconv.EXCEPTION_TYPE)) or found
    return found


def _price(pricer: Callable[..., Any], *args: Any) -> Decimal | None:
    """``pricer(*args)`` as money (a pricer with an observation, or a price book's
    ``price_fields`` with the fields); None, reported, when it raises."""
    try:
        return _money(pricer(*args))
    except Exception as exc:  # noqa: BLE001 - a pricing bug must not lose the observation
        from otel_llm._safety import report

        report("pricing a route observation", exc)
        return None


# --- the derivation ----------------------------------------------------------------------
def derive(
    span: SpanLike,
    *,
    capture_content: bool = False,
    pricer: Pricer | None = None,
) -> RouteObservation | None:
    """The observation of one provider-call span, or None for any other span.

    Raises :class:`MalformedSpan` when the span is a provider call but its ids or times
    are unusable.
    """
    # The usual span: an SDK span whose attribute layout was seen before and has compiled
    # code (see processor.derive_compiled), which hands anything unusual back below.
    if isinstance(span, ReadableSpan):
        raw = span._attributes
        attributes = getattr(raw, "_dict", raw)
        if type(attributes) is dict and attributes:
            layout = _LAYOUTS.get(tuple(attributes))
            if layout is not None and layout.fast_span is not None:
                try:
                    return layout.fast_span(span, attributes, capture_content, pricer)
                except Exception:  # noqa: BLE001 - the general path says what is wrong
                    pass
    return _derive_span(span, capture_content, pricer)


def _derive_span(span: SpanLike, capture_content: bool, pricer: Pricer | None) -> RouteObservation | None:
    """:func:`derive` the general way (and the compiled code's way out for an unusual span)."""
    try:
        attributes = span_attributes(span)
    except Exception as exc:  # noqa: BLE001
        raise MalformedSpan(f"span attributes cannot be read: {exc}") from exc
    if not attributes:
        return None
    if type(attributes) is not dict and not isinstance(attributes, Mapping):
        raise MalformedSpan(f"span attributes must be a mapping, got {type(attributes).__name__}")
    is_call, operation = classify(attributes)
    if not is_call:
        return None
    try:
        if isinstance(span, ReadableSpan):
            # The SDK's properties are Python functions returning these fields: read them
            # directly (a finished span no longer changes).
            ctx, parent, status, resource = span._context, span._parent, span._status, span._resource
            start, end = span._start_time, span._end_time
        else:
            ctx, parent, status, resource = span.context, span.parent, span.status, span.resource
            start, end = span.start_time, span.end_time
        status_code = getattr(status, "status_code", None)
        # Events only name the error of a failed call; reading them costs a copy.
        events = span.events if _is_error_status(status_code) else ()
    except Exception as exc:  # noqa: BLE001
        raise MalformedSpan(f"span cannot be read: {exc}") from exc
    if ctx is None:
        raise MalformedSpan("span has no context (trace and span id)")
    return _derive(  # positional, in _derive's order: the path every span takes
        getattr(ctx, "trace_id", None),
        getattr(ctx, "span_id", None),
        getattr(parent, "span_id", None) if parent is not None else None,
        start,
        end,
        attributes,
        operation,
        status_code,
        getattr(resource, "attributes", None),
        events or (),
        capture_content,
        pricer,
    )


def derive_from_parts(
    *,
    trace_id: int | bytes | str,
    span_id: int | bytes | str,
    start_time_ns: int | str,
    end_time_ns: int | str,
    attributes: Mapping[str, Any],
    parent_span_id: int | bytes | str | None = None,
    status_code: Any = None,
    resource_attributes: Mapping[str, Any] | None = None,
    events: Iterable[tuple[str, Mapping[str, Any] | None]] = (),
    capture_content: bool = False,
    pricer: Pricer | None = None,
    classified: tuple[bool, str | None] | None = None,
) -> RouteObservation | None:
    """:func:`derive` for a span given as plain values (what an OTLP decoder has at hand).

    Ids may be ints, raw bytes or hex; times are epoch nanoseconds (int or decimal
    string, as OTLP/JSON sends them); ``status_code`` may be the OTLP int (2 = ERROR),
    its name, or an SDK ``StatusCode``; ``events`` are ``(name, attributes)`` pairs.
    ``classified`` is what :func:`classify` said of these attributes, when the caller
    has asked it already (it is not asked again).
    """
    if not attributes:
        return None
    if not isinstance(attributes, Mapping):
        raise MalformedSpan(f"span attributes must be a mapping, got {type(attributes).__name__}")
    is_call, operation = classify(attributes) if classified is None else classified
    if not is_call:
        return None
    return _derive(trace_id, span_id, parent_span_id, start_time_ns, end_time_ns, attributes,
                   operation, status_code, resource_attributes, events, capture_content, pricer)


def _derive(
    trace_id: Any,
    span_id: Any,
    parent_span_id: Any,
    start_time_ns: Any,
    end_time_ns: Any,
    attributes: Mapping[str, Any],
    operation: str | None,
    status_code: Any,
    resource_attributes: Mapping[str, Any] | None,
    events: Iterable[Any],
    capture_content: bool,
    pricer: Pricer | None,
) -> RouteObservation:
    # SDK spans carry int ids and OTLP spans 16- and 8-byte strings: those inline,
    # anything else through the converters.
    if type(trace_id) is int and 0 < trace_id < _TRACE_ID_LIMIT:
        trace_hex: str | None = "%032x" % trace_id
    elif type(trace_id) is bytes and len(trace_id) == 16 and trace_id != _ZERO_TRACE_ID:
        trace_hex = trace_id.hex()
    else:
        trace_hex = _hex_id(trace_id, 32)
    if type(span_id) is int and 0 < span_id < _SPAN_ID_LIMIT:
        span_hex: str | None = "%016x" % span_id
    elif type(span_id) is bytes and len(span_id) == 8 and span_id != _ZERO_SPAN_ID:
        span_hex = span_id.hex()
    else:
        span_hex = _hex_id(span_id, 16)
    if trace_hex is None or span_hex is None:
        raise MalformedSpan(f"unusable trace/span id: {trace_id!r}/{span_id!r}")
    start = start_time_ns if type(start_time_ns) is int and start_time_ns > 0 else _time_ns(start_time_ns)
    end = end_time_ns if type(end_time_ns) is int and end_time_ns > 0 else _time_ns(end_time_ns)
    if start is None or end is None:
        raise MalformedSpan(f"span {span_hex} has no usable start/end time: {start_time_ns!r}/{end_time_ns!r}")
    if end < start:
        raise MalformedSpan(f"span {span_hex} ends before it starts ({end} < {start})")

    parent_hex = None
    if parent_span_id is not None:
        if type(parent_span_id) is int and 0 < parent_span_id < _SPAN_ID_LIMIT:
            parent_hex = "%016x" % parent_span_id
        elif type(parent_span_id) is bytes and len(parent_span_id) == 8 and parent_span_id != _ZERO_SPAN_ID:
            parent_hex = parent_span_id.hex()
        else:
            parent_hex = _hex_id(parent_span_id, 16)

    attrs = attributes  # only ever read
    layout = _layout(attrs)
    fast = layout.fast
    if fast is not None and (parent_hex is not None or parent_span_id is None):
        # The usual span, derived by the code compiled for its layout; None when a value
        # turns out unusable, and the general path below then reports it.
        observation = fast(trace_hex, span_hex, parent_hex, start, end, attrs, operation, status_code,
                           resource_attributes, events, capture_content, pricer)
        if observation is not None:
            return observation
    reader = _Reader(attrs, layout)
    scan = layout.scan
    field = reader.values.get
    if parent_hex is None and parent_span_id is not None:
        reader.mark_invalid("parent_span_id")

    if operation is None and scan.chat_keys:
        operation = semconv.OP_CHAT
    elif operation is None and scan.completion_keys:
        operation = semconv.OP_TEXT_COMPLETION
    reader.consumed.update(layout.operation_keys)

    # who: the resource says which service; a span attribute only when the resource does not
    service_name, instance_id = _service_of(resource_attributes)
    if service_name is None and (service_name := _text(attrs.get(semconv.SERVICE_NAME))) is not None:
        reader.consumed.add(semconv.SERVICE_NAME)
    if instance_id is None and (instance_id := _ident(attrs.get(semconv.SERVICE_INSTANCE_ID))) is not None:
        reader.consumed.add(semconv.SERVICE_INSTANCE_ID)

    # what
    params = _invocation_parameters(attrs, layout.parameter_keys) if layout.parameter_keys else {}
    provider = field("provider")
    request_model = field("request_model")
    if reader.ranks.get("request_model", 0) >= _REQUEST_MODEL_LAST_RESORT_RANK or request_model is None:
        request_model = _text(params.get(aliases.OI_PARAM_MODEL)) or request_model
        if request_model is not None:
            reader.mark_resolved("request_model")
    response_model = field("response_model")
    server_address = field("server_address")
    stream = field("stream")
    if stream is None and aliases.OI_PARAM_STREAM in params:
        stream = _flag(params[aliases.OI_PARAM_STREAM])
    route = field("route")
    if route is None:
        parts = [p for p in (provider, request_model or response_model) if p]
        route = "|".join(parts) or None
    logical_call_id = field("logical_call_id") or span_hex

    # outcome
    error_type = field("error_type")
    failed = _is_error_status(status_code)
    if failed and error_type is None:
        error_type = _exception_type(events) or semconv.ERROR_TYPE_OTHER
    ok = not failed and error_type is None

    # volume
    tools_offered = _tools_offered(reader, scan)
    tool_calls = _tool_calls(reader, scan)

    # time
    ttft_s = field("ttft_ms")
    if ttft_s is None and stream:
        for key in aliases.TTFT_SECONDS_STREAM_ONLY:
            ttft_s = _positive_seconds(attrs.get(key))
            if ttft_s is not None:
                reader.consumed.add(key)
                break

    # money: what the span reports
    reported, basis = None, semconv.COST_BASIS_REPORTED
    for key in layout.cost_keys:
        value = _money(attrs[key])
        if value is None:
            reader.mark_invalid("cost_usd")
            continue
        if value == 0 and key in aliases.COST_ZERO_IS_UNKNOWN:
            continue
        reader.consumed.add(key)
        if key == semconv.OTEL_LLM_COST_USD:
            declared = _text(attrs.get(semconv.OTEL_LLM_COST_BASIS))
            if declared in _OUR_COST_BASES:
                basis = declared
                reader.consumed.add(semconv.OTEL_LLM_COST_BASIS)
        reported = value
        break
    if reported is not None:
        reader.mark_resolved("cost_usd")

    # the rest worth keeping
    consumed = reader.consumed
    kept: dict[str, Any] = {}
    # Attributes read into a field are consumed unless none of their values was usable:
    # when none failed, only the unread ones need a look (against what else was used).
    for key in (layout.keep_content_unread if capture_content else layout.keep_unread) \
            if not reader.failed_keys else (layout.keep_content if capture_content else layout.keep):
        if key in consumed:
            continue
        if len(kept) >= MAX_ATTRIBUTES:
            break
        kept[key] = _keep_value(attrs[key])
    if reader.invalid:
        kept[semconv.OTEL_LLM_INVALID_FIELDS] = sorted(reader.invalid)

    # money: reported > self-hosted > the pricer's figure > unknown
    computed_cost = None
    if reported is not None:
        cost, cost_basis = reported, basis
        if basis == semconv.COST_BASIS_COMPUTED:
            computed_cost = reported
        use_pricer = pricer is not None and basis == semconv.COST_BASIS_REPORTED
    elif is_local(provider, server_address):
        cost, cost_basis, use_pricer = Decimal(0), semconv.COST_BASIS_LOCAL, False
    else:
        cost, cost_basis, use_pricer = None, semconv.COST_BASIS_UNKNOWN, pricer is not None

    # All values in field order (checked at import by _FIELD_ORDER), made into the
    # observation in one step: the path every observation takes.
    observation = make_observation((
        trace_hex,  # trace_id
        span_hex,  # span_id
        _EPOCH + timedelta(0, 0, start // 1000),  # started_at (days, seconds, microseconds)
        (end - start) / 1e6,  # duration_ms
        parent_hex,  # parent_span_id
        logical_call_id,  # logical_call_id
        ttft_s * 1000.0 if ttft_s is not None else None,  # ttft_ms
        service_name,  # service_name
        instance_id,  # instance_id
        field("agent"),  # agent
        field("session_id"),  # session_id
        field("user_id"),  # user_id
        _tags(attrs, scan),  # tags
        operation,  # operation
        provider,  # provider
        server_address,  # server_address
        request_model,  # request_model
        response_model,  # response_model
        route,  # route
        field("attempt"),  # attempt
        field("fallback"),  # fallback
        stream,  # stream
        ok,  # ok
        error_type,  # error_type
        field("http_status"),  # http_status
        field("finish_reason"),  # finish_reason
        field("input_tokens"),  # input_tokens
        field("cached_input_tokens"),  # cached_input_tokens
        field("cache_creation_input_tokens"),  # cache_creation_input_tokens
        field("output_tokens"),  # output_tokens
        field("reasoning_tokens"),  # reasoning_tokens
        tools_offered,  # tools_offered
        tool_calls,  # tool_calls
        cost,  # cost_usd
        cost_basis,  # cost_basis
        computed_cost,  # computed_cost_usd
        field("routing_complexity"),  # routing_complexity
        field("routing_score"),  # routing_score
        kept,  # attributes
    ))
    return _price_into(observation, pricer) if use_pricer and pricer is not None else observation


def _keep_value(value: Any) -> Any:
    """An attribute value as ``attributes`` keeps it (the general path's rule, for compiled code)."""
    kind = type(value)
    return value if kind is int or kind is bool or (kind is str and len(value) <= MAX_VALUE_CHARS) \
        or (kind is float and math.isfinite(value)) else _jsonable(value)


def _price_into(observation: RouteObservation, pricer: Pricer) -> RouteObservation:
    """Add the pricer's figure: beside a reported cost, or as the cost when none is known."""
    price = _price(pricer, observation)
    if price is None:
        return observation
    # The three money fields are adjacent: slicing the tuple costs far less than _replace.
    if observation.cost_basis == semconv.COST_BASIS_REPORTED:
        money = (observation.cost_usd, observation.cost_basis, price)
    else:
        money = (price, semconv.COST_BASIS_COMPUTED, price)
    return make_observation(observation[:_COST_AT] + money + observation[_COST_AT + 3:])


#: What code compiled per layout (:mod:`processor.derive_compiled`) uses of this module.
_FAST_PATH_HELPERS: Mapping[str, Any] = MappingProxyType({
    "EXTRA_KEYS": frozenset({semconv.SERVICE_NAME, semconv.SERVICE_INSTANCE_ID, semconv.GEN_AI_TOOL_DEFINITIONS,
                             semconv.GEN_AI_OUTPUT_MESSAGES, *aliases.TTFT_SECONDS_STREAM_ONLY}),
    "MAX_ATTRIBUTES": MAX_ATTRIBUTES,
    "IS_ERROR": _is_error_status,
    "EXCEPTION_TYPE": _exception_type,
    "ERROR_OTHER": semconv.ERROR_TYPE_OTHER,
    "SERVICE_OF": _service_of,
    "KEEP": _keep_value,
    "TAG_VALUE": _tag_value,
    "IS_LOCAL": is_local,
    "ZERO": Decimal(0),
    "BASIS_LOCAL": semconv.COST_BASIS_LOCAL,
    "BASIS_UNKNOWN": semconv.COST_BASIS_UNKNOWN,
    "MAKE": make_observation,
    "EPOCH": _EPOCH,
    "timedelta": timedelta,
    "PRICE_INTO": _price_into,
    "PRICE_BOOK": PriceBook,
    "PRICE": _price,
    "BASIS_COMPUTED": semconv.COST_BASIS_COMPUTED,
    "OPERATION_KEY": semconv.GEN_AI_OPERATION_NAME,
    "OPERATION_VALUE": _operation_value,
    "TRACE_LIMIT": _TRACE_ID_LIMIT,
    "SPAN_LIMIT": _SPAN_ID_LIMIT,
    "GENERAL": _derive_span,
})
