"""The current OpenTelemetry context, read and set without the API's call layers.

``opentelemetry.context.get_current()``, ``attach`` and ``detach`` each reach one
``ContextVar`` through two Python calls, and ``trace.set_span_in_context`` through four.
Every instrumented call reads the context, and a streamed one also makes its span current
for a while: on that hot path the layering is a measurable share of the cost. Where the
API's runtime context is its standard ``contextvars`` one (the default, and the only one
it ships), these helpers use that variable directly; any other runtime context goes
through the API as before, so the result is the same either way.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context.context import Context
from opentelemetry.trace.propagation import _SPAN_KEY

try:
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
except ImportError:  # pragma: no cover - another API layout: the public functions only
    ContextVarsRuntimeContext = None  # type: ignore[assignment,misc]


def _standard() -> tuple[object, ContextVar[Context] | None]:
    """(the runtime context, its variable) when it is the standard one, else (a sentinel, None)."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if ContextVarsRuntimeContext is not None and type(runtime) is ContextVarsRuntimeContext and isinstance(
        var, ContextVar
    ):
        return runtime, var
    return object(), None


#: The runtime context seen at import, and its variable. Each helper checks that the
#: API still uses that runtime context (it is chosen once, at the API's import).
_RUNTIME, _VAR = _standard()


def current() -> Context:
    """The current context (``opentelemetry.context.get_current()``)."""
    if otel_context._RUNTIME_CONTEXT is _RUNTIME:
        return _VAR.get()  # type: ignore[union-attr]
    return otel_context.get_current()


def with_span(span: Any) -> Context:
    """The current context with ``span`` as its current span (``trace.set_span_in_context(span)``)."""
    if otel_context._RUNTIME_CONTEXT is _RUNTIME:
        values = _VAR.get().copy()  # type: ignore[union-attr]
        values[_SPAN_KEY] = span
        return Context(values)
    return otel_context.set_value(_SPAN_KEY, span)


def attach_span(span: Any) -> Token[Context]:
    """Make ``span`` the current span (``attach(with_span(span))`` in one call)."""
    if otel_context._RUNTIME_CONTEXT is _RUNTIME:
        values = _VAR.get().copy()  # type: ignore[union-attr]
        values[_SPAN_KEY] = span
        return _VAR.set(Context(values))  # type: ignore[union-attr]
    return otel_context.attach(otel_context.set_value(_SPAN_KEY, span))


def attach(ctx: Context) -> Token[Context]:
    """Make ``ctx`` current (``opentelemetry.context.attach``)."""
    if otel_context._RUNTIME_CONTEXT is _RUNTIME:
        return _VAR.set(ctx)  # type: ignore[union-attr]
    return otel_context.attach(ctx)


def detach(token: Token[Context]) -> None:
    """Restore the context before ``attach`` (``opentelemetry.context.detach``: never raises)."""
    if otel_context._RUNTIME_CONTEXT is _RUNTIME:
        try:
            _VAR.reset(token)  # type: ignore[union-attr]
            return
        except Exception:  # noqa: BLE001 - the API's detach logs this case: let it
            pass
    otel_context.detach(token)
