"""Tool execution as a semantic-convention ``execute_tool {name}`` span.

An agent's time and failures are often in its tools, not in the model: wrapping each
tool run in :func:`tool_span` makes it a child span of whatever is current (usually the
agent's ``invoke_agent`` span) with ``gen_ai.operation.name = execute_tool`` and the
``gen_ai.tool.*`` attributes. Arguments and results are message content: they are
recorded only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is on.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_llm import content, semconv
from otel_llm._async_with import AsyncWithToo
from otel_llm._safety import swallow
from otel_llm._tracer import tracer
from otel_llm.call import error_type_of
from otel_llm.scope import current_scope

#: Recorded arguments/results longer than this are cut (content can be large).
MAX_CONTENT_CHARS = 16_384


def _as_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text[:MAX_CONTENT_CHARS]


class ToolCall:
    """Handle on a running tool span: record its result (content capture permitting)."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def record_arguments(self, arguments: Any) -> None:
        """Record the tool's arguments (only when content capture is enabled)."""
        if arguments is None or not content.capture_enabled():
            return
        with swallow("recording tool arguments"):
            self.span.set_attribute(semconv.GEN_AI_TOOL_CALL_ARGUMENTS, _as_text(arguments))

    def record_result(self, result: Any) -> None:
        """Record the tool's result (only when content capture is enabled)."""
        if result is None or not content.capture_enabled():
            return
        with swallow("recording the tool result"):
            self.span.set_attribute(semconv.GEN_AI_TOOL_CALL_RESULT, _as_text(result))

    def set_attribute(self, key: str, value: Any) -> None:
        """Set any other attribute (a name from :mod:`otel_llm.semconv`)."""
        with swallow("recording a tool span attribute"):
            self.span.set_attribute(key, value)


class tool_span(AsyncWithToo):  # noqa: N801 - used like a function: ``with otel_llm.tool_span(...)``
    """Run the block as an ``execute_tool {name}`` span (INTERNAL); yields a :class:`ToolCall`.

    ``call_id`` is the id the model gave the tool call (links the execution to the
    ``tool_call`` part of the model's answer). An exception leaving the block sets ERROR
    status and ``error.type`` and propagates unchanged. Works with ``async with``.

    >>> with otel_llm.tool_span("get_weather", call_id="call_1", arguments=args) as tool:
    ...     tool.record_result(weather(**args))
    """

    __slots__ = ("_name", "_attrs", "_arguments", "_span", "_token")

    def __init__(
        self,
        name: str,
        *,
        call_id: str | None = None,
        type: str = "function",  # noqa: A002 - the convention's own word (gen_ai.tool.type)
        description: str | None = None,
        arguments: Any = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"tool_span(): name must be a non-empty str, got {name!r}")
        for field, value in (("call_id", call_id), ("type", type), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"tool_span(): {field} must be a str, got {value!r}")
        attrs: dict[str, Any] = current_scope().attributes()
        attrs[semconv.GEN_AI_OPERATION_NAME] = semconv.OP_EXECUTE_TOOL
        attrs[semconv.GEN_AI_TOOL_NAME] = name
        if type:
            attrs[semconv.GEN_AI_TOOL_TYPE] = type
        if call_id:
            attrs[semconv.GEN_AI_TOOL_CALL_ID] = call_id
        if description:
            attrs[semconv.GEN_AI_TOOL_DESCRIPTION] = description
        self._name = name
        self._attrs = attrs
        self._arguments = arguments
        self._span: Span | None = None
        self._token: object | None = None

    def __enter__(self) -> ToolCall:
        span = tracer().start_span(
            f"{semconv.OP_EXECUTE_TOOL} {self._name}", kind=SpanKind.INTERNAL, attributes=self._attrs
        )
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))
        handle = ToolCall(span)
        handle.record_arguments(self._arguments)
        return handle

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            with swallow("detaching the tool span context"):
                otel_context.detach(token)  # type: ignore[arg-type]
        span, self._span = self._span, None
        if span is None:
            return
        with swallow("ending the tool span"):
            if exc is not None:
                etype = error_type_of(exc)
                span.record_exception(exc)
                span.set_attribute(semconv.ERROR_TYPE, etype)
                span.set_status(Status(StatusCode.ERROR, f"{etype}: {exc}"[:512]))
            span.end()

