"""What every client instrumentation shares: settings, the context check, request attributes.

A patched client method asks :func:`mode` what to do before doing anything else:

* ``OFF`` — instrumentation is suppressed in this context
  (``opentelemetry.instrumentation.utils.suppress_instrumentation``): call through.
* ``NESTED`` — the call runs inside an LLM span the application opened itself
  (``llm_span`` / ``llm_call``): that span already is the observation of this
  provider call, so a second inference span would count it twice. Call through.
* ``ATTEMPT`` — the call runs inside a fallback-chain attempt
  (:func:`otel_llm.fallback.current_attempt`): record the request
  (:func:`record_request_on_host`) and the response onto the attempt's own
  :class:`~otel_llm.call.LLMCall` instead of opening another span; a stream is wrapped
  onto it (the attempt leaves the call open for the stream), and HTTP attempts of a
  client's own retries are observed by :mod:`otel_llm.instrumentation._hosted`.
* ``OWN`` — open our own inference span(s).

Everything here is on the hot path of every instrumented call, so it is kept to a few
attribute reads; anything unexpected is reported (rate-limited) and the call proceeds
uninstrumented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from opentelemetry import context as otel_context

from otel_llm import _context, semconv
from otel_llm._safety import report_setting_once
from otel_llm.call import LLMCall, enclosing_inference_span
from otel_llm.instrumentation.hosts import HostResolver, Identity

#: Environment variable turning on ``include_usage`` for instrumentations started by
#: ``opentelemetry-instrument`` (which passes no arguments).
INCLUDE_USAGE_ENV = "OTEL_LLM_STREAM_INCLUDE_USAGE"

OFF, OWN, NESTED, ATTEMPT = range(4)

_TRUE = frozenset({"1", "true", "yes", "on"})


_FALSE = frozenset({"", "0", "false", "no", "off"})

def _env_flag(name: str) -> bool:
    """A boolean environment variable; a value that is neither true nor false is logged as
    an error (a typo should not silently mean "off") and taken as false."""
    raw = os.environ.get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value not in _FALSE:
        report_setting_once(
            name, raw, "otel-llm: %s=%r is not a boolean (expected true/false, 1/0, yes/no or on/off); taken as false",
            name, raw,
        )
    return False


@dataclass
class Settings:
    """Options of one instrumentation, fixed when it is installed."""

    #: Maps a client's base URL to provider name and server address/port.
    resolver: HostResolver = field(default_factory=HostResolver)
    #: Ask the provider for a usage chunk on streams (``stream_options.include_usage``)
    #: when the caller did not. Off by default: the extra chunk has no ``choices``, which
    #: code that indexes ``chunk.choices[0]`` does not expect.
    include_usage: bool = False

    @classmethod
    def from_options(
        cls, provider_hosts: str | Mapping[str, str] | None = None, include_usage: bool | None = None
    ) -> "Settings":
        """Settings from instrument() keyword arguments, falling back to the environment."""
        return cls(
            resolver=HostResolver(provider_hosts),
            include_usage=_env_flag(INCLUDE_USAGE_ENV) if include_usage is None else bool(include_usage),
        )

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "Settings":
        """Settings from an instrumentor's ``instrument(**kwargs)`` (``settings=`` or the options)."""
        settings = kwargs.get("settings")
        if isinstance(settings, Settings):
            return settings
        return cls.from_options(kwargs.get("provider_hosts"), kwargs.get("include_usage"))


#: ``otel_llm.fallback.current_attempt``, imported on first use (the fallback module
#: imports the stream wrappers, which need not be loaded before a call is made).
_current_attempt: Callable[[], Any] | None = None


def current_attempt() -> Any:
    """The fallback attempt in progress here, if any."""
    global _current_attempt
    find = _current_attempt
    if find is None:
        from otel_llm.fallback import current_attempt as find

        _current_attempt = find
    return find()


try:
    # The keys the API's own helpers read: with them, the suppression check and the
    # "is any span current" check are lookups in one context instead of three calls.
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY_PLAIN
    from opentelemetry.trace.propagation import _SPAN_KEY

    _CONTEXT_KEYS: tuple[str, str, str] | None = (
        _SUPPRESS_INSTRUMENTATION_KEY, _SUPPRESS_INSTRUMENTATION_KEY_PLAIN, _SPAN_KEY,
    )
except ImportError:  # pragma: no cover - another API layout: the public helpers only
    _CONTEXT_KEYS = None


def mode() -> tuple[int, LLMCall | None]:
    """How an instrumented call should be recorded here (see the module docstring)."""
    if _CONTEXT_KEYS is not None:
        suppress, suppress_plain, span_key = _CONTEXT_KEYS
        # _context.current(), written out: one call less on every instrumented call.
        ctx = _context._VAR.get() if otel_context._RUNTIME_CONTEXT is _context._RUNTIME else _context.current()  # type: ignore[union-attr]
        if ctx.get(suppress) or ctx.get(suppress_plain):
            return OFF, None
        if ctx.get(span_key) is None:
            return OWN, None  # no span is current: nothing encloses the call
    elif not is_instrumentation_enabled():
        return OFF, None
    span = enclosing_inference_span()
    attempt = current_attempt()
    if attempt is not None:
        # The attempt's span observes this provider call, whether it is the current span
        # or the target opened spans of its own around the call (reading ``call`` tells
        # the chain the answer is recorded here).
        call = attempt.call
        if call is not None and not call.ended and (span is None or call.span is span):
            return ATTEMPT, call
    return (OWN, None) if span is None else (NESTED, None)


#: The instrumentation's own per-call identity, which a fallback attempt's span states itself.
_OWN_CALL_KEYS = frozenset({
    semconv.OTEL_LLM_LOGICAL_CALL_ID, semconv.OTEL_LLM_ATTEMPT, semconv.OTEL_LLM_FALLBACK,
})


def record_request_on_host(host: LLMCall, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Record a request's attributes on the fallback attempt's span; return those recorded.

    Precedence: what the attempt's span was opened with stands — the target's operation,
    provider, model and route (and server, when the target names one), the chain's
    attempt index, fallback flag and logical call id, the scope's attributes; the
    request fills in the rest (``gen_ai.request.stream``, temperature and the other
    options, server address and port, tools offered). The model the client sent, when
    it is not the target's, goes to ``otel_llm.request.sent_model``: the route and
    prices stay keyed by the target's model, and the name on the wire is not lost.
    The returned attributes are the request's part of any further span of this call.
    """
    opened = host.start_attributes
    filled = {k: v for k, v in attrs.items() if k not in opened and k not in _OWN_CALL_KEYS}
    sent = attrs.get(semconv.GEN_AI_REQUEST_MODEL)
    if sent is not None and opened.get(semconv.GEN_AI_REQUEST_MODEL, sent) != sent:
        filled[semconv.OTEL_LLM_REQUEST_SENT_MODEL] = sent
    host.set_attributes(filled)
    return filled


#: (id of the identity, operation, model, stream, with attempts) -> (identity, span name,
#: start attributes). Identities are cached per base URL, so a process has few.
_TEMPLATES: dict[tuple[int, str, str | None, bool, bool], tuple[Identity, str, dict[str, Any]]] = {}
_TEMPLATES_MAX = 256


def start_template(
    identity: Identity, operation: str, model: str | None, stream: bool, attempts: bool
) -> tuple[str, dict[str, Any]]:
    """Span name and the start attributes every call to this server, operation, model and
    stream mode shares — the attributes :class:`~otel_llm.call.LLMCall` would derive from
    the same arguments (``attempts``: the spans carry ``otel_llm.attempt``, so the
    ``otel_llm.fallback`` false of a same-route retry goes with it). Built once, then
    copied per call: callers must copy the dict before changing it.
    """
    key = (id(identity), operation, model, stream, attempts)
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is identity:
        return hit[1], hit[2]
    attrs: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: operation}
    provider = identity.provider
    if provider is not None:
        attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
        attrs[semconv.GEN_AI_SYSTEM] = provider
    if model is not None:
        attrs[semconv.GEN_AI_REQUEST_MODEL] = model
    if identity.server_address is not None:
        attrs[semconv.SERVER_ADDRESS] = identity.server_address
    port = identity.server_port
    if isinstance(port, int) and not isinstance(port, bool):
        attrs[semconv.SERVER_PORT] = port
    attrs[semconv.GEN_AI_REQUEST_STREAM] = stream
    if attempts:
        attrs[semconv.OTEL_LLM_FALLBACK] = False
    name = f"{operation} {model}" if model else operation
    if len(_TEMPLATES) >= _TEMPLATES_MAX:
        _TEMPLATES.clear()
    _TEMPLATES[key] = (identity, name, attrs)
    return name, attrs


#: (id of the base URL, id of the resolver, operation, model, stream, with attempts) ->
#: (base URL, resolver, identity, span name, start attributes).
_STARTS: dict[tuple[int, int, str, str | None, bool, bool], tuple[object, HostResolver, Identity, str, dict[str, Any]]] = {}


def start_for(
    resolver: HostResolver, url: object, operation: str, model: str | None, stream: bool, attempts: bool
) -> tuple[Identity, str, dict[str, Any]]:
    """The identity of the server at ``url`` and :func:`start_template`'s name and
    attributes, from one cached lookup (a client's base URL object lives as long as its
    configuration, so few are seen). What a request needs before its span opens, in one
    call: on the hot path each further call is a measurable share of the cost.
    Callers must copy the attributes before changing them."""
    key = (id(url), id(resolver), operation, model, stream, attempts)
    hit = _STARTS.get(key)
    if hit is not None and hit[0] is url and hit[1] is resolver:
        return hit[2], hit[3], hit[4]
    identity = resolver.identity(url)
    name, attrs = start_template(identity, operation, model, stream, attempts)
    if len(_STARTS) >= _TEMPLATES_MAX:
        _STARTS.clear()
    _STARTS[key] = (url, resolver, identity, name, attrs)
    return identity, name, attrs


#: Client classes a :class:`PropertyShortcut` remembers (a process has a handful).
_CLASSES_MAX = 256


class PropertyShortcut:
    """Reads a client's property through the attribute it returns, where that is the same.

    A client's property may do more than return an attribute (the OpenAI SDK's
    ``base_url`` runs an import statement on every read), and the instrumentations read
    the base URL on every request. For a class whose property is one of the library's
    own (those of ``owners()``) and returns the attribute ``attr`` itself, the attribute
    is read instead; any other class (a subclass with a property of its own, a proxy)
    reads the property. Decided once per class (``plain``: class -> decision).
    """

    __slots__ = ("prop", "attr", "owners", "plain")

    def __init__(self, prop: str, attr: str, owners: Callable[[], Iterable[type]]) -> None:
        self.prop = prop
        self.attr = attr
        self.owners = owners
        self.plain: dict[type, bool] = {}

    def read(self, obj: Any) -> Any:
        """``obj.<prop>``, read through the attribute when that is the same."""
        cls = type(obj)
        plain = self.plain.get(cls)
        if plain is None:
            plain = self._decide(obj)
            if len(self.plain) < _CLASSES_MAX:
                self.plain[cls] = plain
        return getattr(obj, self.attr) if plain else getattr(obj, self.prop)

    def _decide(self, obj: Any) -> bool:
        try:
            descriptor = getattr(type(obj), self.prop, None)
            return (
                isinstance(descriptor, property)
                and any(descriptor is getattr(owner, self.prop, None) for owner in self.owners())
                and getattr(obj, self.prop) is getattr(obj, self.attr)
            )
        except Exception:  # noqa: BLE001 - another client layout: read the property
            return False


def positive_int(value: Any) -> int | None:
    """``value`` if it is a positive int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def int64(value: Any) -> int | None:
    """``value`` if it is an int (not a bool) that fits a span attribute's 64 bits, else None
    (OTLP exporters drop a larger one with an error)."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def number(value: Any) -> float | int | None:
    """``value`` if it is a real number (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def count(value: Any) -> int | None:
    """Length of a non-string sequence (tools offered), else None."""
    if value is None:
        return None
    if type(value) is list:
        return len(value)
    if isinstance(value, (str, bytes, Mapping)):
        return None
    try:
        return len(value)
    except TypeError:
        return None
