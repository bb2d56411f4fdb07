"""Who is calling: agent, session, user, route and tags, carried in context.

A scope is set with ``with otel_llm.scope(agent=..., session=...)`` (or the one-field
shorthands :func:`agent`, :func:`session`, :func:`user`, :func:`route`) and read by every
LLM span opened inside it. It lives in a :mod:`contextvars` variable, so it follows
``asyncio`` tasks and threads started with a copied context, and never crosses a process
boundary: unlike OpenTelemetry baggage it is not sent to the model provider in HTTP
headers.

Spans written by other instrumentations pick the scope up through
:class:`ScopeSpanProcessor`, which :func:`otel_llm.configure` installs.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_llm import semconv
from otel_llm._async_with import AsyncWithToo
from otel_llm._safety import swallow

#: Tags are free-form but meant for grouping; values longer than this are cut.
MAX_TAG_VALUE_LEN = 128
#: More tags than this on one scope is almost certainly a cardinality mistake.
MAX_TAGS = 32


@dataclass(frozen=True, slots=True)
class Scope:
    """The attributes a scope gives every LLM span opened inside it."""

    agent: str | None = None
    agent_id: str | None = None
    session: str | None = None
    user: str | None = None
    route: str | None = None
    conversation: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    _attributes: Mapping[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: every LLM span opened in the scope copies these.
        object.__setattr__(self, "_attributes", MappingProxyType(self._compute_attributes()))

    def attributes(self) -> dict[str, Any]:
        """Span attributes for this scope (only the fields that are set); a fresh dict."""
        return dict(self._attributes)

    def _compute_attributes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.agent is not None:
            out[semconv.GEN_AI_AGENT_NAME] = self.agent
        if self.agent_id is not None:
            out[semconv.GEN_AI_AGENT_ID] = self.agent_id
        if self.session is not None:
            out[semconv.SESSION_ID] = self.session
        if self.user is not None:
            out[semconv.USER_ID] = self.user
        if self.route is not None:
            out[semconv.OTEL_LLM_ROUTE] = self.route
        if self.conversation is not None:
            out[semconv.GEN_AI_CONVERSATION_ID] = self.conversation
        for key, value in self.tags.items():
            out[semconv.OTEL_LLM_TAGS_PREFIX + key] = value
        return out


EMPTY_SCOPE = Scope()
_current: contextvars.ContextVar[Scope] = contextvars.ContextVar("otel_llm_scope", default=EMPTY_SCOPE)


def current_scope() -> Scope:
    """The scope in force here (an empty one outside every scope)."""
    return _current.get()


def _check_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"otel_llm.scope(): {name} must be a non-empty str, got {value!r}")
    return value


def _check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if not tags:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"otel_llm.scope(): tags must be a mapping of str to str, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(
            f"otel_llm.scope(): {len(tags)} tags given, at most {MAX_TAGS}; tags are for "
            "low-cardinality grouping, put identifiers in session/user instead"
        )
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"otel_llm.scope(): tag names must be non-empty str, got {key!r}")
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"otel_llm.scope(): tag {key!r} must be a str, number or bool, got {type(value).__name__}")
        out[key] = str(value)[:MAX_TAG_VALUE_LEN]
    return out


class scope(AsyncWithToo):  # noqa: N801 - used like a function: ``with otel_llm.scope(...)``
    """Set agent, session, user, route, conversation and tags for the block.

    Nested scopes inherit what they do not override; tags merge. The merge happens
    where the block is entered, so a scope object made in advance (``per_user =
    otel_llm.user(uid)``) inherits from the scope in force at its ``with``. Works with
    ``with`` and ``async with``. With ``invoke_agent_span=True`` (and an agent) the block is
    also wrapped in a semantic-convention ``invoke_agent {agent}`` span, the parent of
    every LLM span inside.

    Arguments are checked when the scope is created, so a programming mistake fails at
    the call site with a clear message rather than producing odd telemetry.
    """

    __slots__ = ("_fields", "_tags", "_new", "_token", "_span", "_span_cm", "_invoke_agent_span")

    def __init__(
        self,
        *,
        agent: str | None = None,
        agent_id: str | None = None,
        session: str | None = None,
        user: str | None = None,
        route: str | None = None,
        conversation: str | None = None,
        tags: Mapping[str, Any] | None = None,
        invoke_agent_span: bool = False,
    ) -> None:
        self._fields = (
            _check_str("agent", agent),
            _check_str("agent_id", agent_id),
            _check_str("session", session),
            _check_str("user", user),
            _check_str("route", route),
            _check_str("conversation", conversation),
        )
        self._tags = _check_tags(tags)
        self._new = self._merge(_current.get())
        if invoke_agent_span and self._new.agent is None:
            raise ValueError("otel_llm.scope(invoke_agent_span=True) needs an agent name")
        self._invoke_agent_span = invoke_agent_span
        self._token: contextvars.Token[Scope] | None = None
        self._span_cm: Any = None
        self._span: trace.Span | None = None

    def _merge(self, base: Scope) -> Scope:
        """This scope's fields over ``base``: what is not given is inherited, tags merge."""
        agent, agent_id, session, user, route, conversation = self._fields
        if not any(self._fields) and not self._tags:
            return base
        merged_tags = dict(base.tags)
        merged_tags.update(self._tags)
        return Scope(
            agent=agent or base.agent,
            # a different agent does not inherit the outer agent's id
            agent_id=agent_id or (base.agent_id if agent is None else None),
            session=session or base.session,
            user=user or base.user,
            route=route or base.route,
            conversation=conversation or base.conversation,
            tags=MappingProxyType(merged_tags),
        )

    @property
    def value(self) -> Scope:
        """The scope this block sets (merged where it was last entered, else where made)."""
        return self._new

    @property
    def span(self) -> trace.Span | None:
        """The ``invoke_agent`` span, when one was asked for."""
        return self._span

    def __enter__(self) -> "scope":
        base = _current.get()
        new = self._merge(base)
        if self._invoke_agent_span and new.agent is None:
            raise ValueError("otel_llm.scope(invoke_agent_span=True) needs an agent name")
        self._new = new
        self._token = _current.set(new)
        if self._invoke_agent_span:
            with swallow("opening the invoke_agent span"):
                from otel_llm._tracer import tracer

                attrs = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT}
                attrs.update(self._new.attributes())
                self._span_cm = tracer().start_as_current_span(
                    f"{semconv.OP_INVOKE_AGENT} {self._new.agent}",
                    kind=trace.SpanKind.INTERNAL,
                    attributes=attrs,
                    record_exception=True,
                    set_status_on_exception=True,
                )
                self._span = self._span_cm.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._span_cm is not None:
            with swallow("closing the invoke_agent span"):
                if exc is not None and self._span is not None:
                    from otel_llm.call import error_type_of  # call imports this module

                    self._span.set_attribute(semconv.ERROR_TYPE, error_type_of(exc))
                self._span_cm.__exit__(exc_type, exc, tb)
            self._span_cm = None
        if self._token is not None:
            _current.reset(self._token)
            self._token = None



def agent(name: str, *, id: str | None = None, invoke_agent_span: bool = False) -> scope:  # noqa: A002
    """Scope with just an agent (and optionally an ``invoke_agent`` span)."""
    return scope(agent=name, agent_id=id, invoke_agent_span=invoke_agent_span)


def session(session_id: str) -> scope:
    """Scope with just a session id (``session.id``)."""
    return scope(session=session_id)


def user(user_id: str) -> scope:
    """Scope with just a user id (``user.id``)."""
    return scope(user=user_id)


def route(name: str) -> scope:
    """Scope with just a route name (``otel_llm.route``)."""
    return scope(route=name)


class ScopeSpanProcessor(SpanProcessor):
    """Copies the current scope onto spans other instrumentations start inside it.

    Only attributes the span does not already carry are added, so an instrumentation's
    own values win. Runs on the thread that starts the span, where the scope's context
    variable is visible; costs one context-variable read when no scope is set.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        current = _current.get()
        if current is EMPTY_SCOPE:
            return
        with swallow("copying the scope onto a span"):
            existing = span.attributes or {}
            missing = {k: v for k, v in current.attributes().items() if k not in existing}
            if missing:
                span.set_attributes(missing)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
