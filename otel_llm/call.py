"""One provider-call attempt as a span: :class:`LLMCall` and :func:`llm_span`.

``LLMCall`` is the single choke point every emitting path goes through (the context
manager, the decorator, fallback chains, auto-instrumentation). It opens an inference
span with the attributes sampling needs, lets the caller record what the response said,
and ends the span exactly once — recording the GenAI client metrics at the same moment.

All recording methods swallow their own failures (see :mod:`otel_llm._safety`): a token
count of the wrong type is logged and skipped, never raised into the application.
"""

from __future__ import annotations

import time
from types import MappingProxyType, TracebackType
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from otel_llm import _context, content, semconv
from otel_llm._async_with import AsyncWithToo
from otel_llm._safety import report, swallow
from otel_llm._span_attributes import PLAIN_TYPES, set_span_attributes
from otel_llm._tracer import tracer
from otel_llm.extract import record_response as read_response
from otel_llm.metrics import metrics_enabled, record_call
from otel_llm.scope import EMPTY_SCOPE, current_scope
from otel_llm.scope import _current as _current_scope  # read per call: the variable itself, one call less

_VALID_OPERATIONS = frozenset(semconv.INFERENCE_OPERATIONS)
_CLIENT = SpanKind.CLIENT


def error_type_of(exc: BaseException) -> str:
    """The stable ``error.type`` of an exception: its class's qualified name.

    A class defined inside a function has ``<locals>`` in its qualified name, which
    says nothing useful and differs between refactors: its plain name is used instead.
    """
    cls = type(exc)
    qualname = cls.__qualname__
    return cls.__name__ if "<locals>" in qualname else qualname


def _as_count(name: str, value: Any) -> int | None:
    """A token or item count as a non-negative int, or None (logged) if it is not one."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer count, got a bool")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        value = int(str(value).strip())  # numeric strings are accepted; anything else raises
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def enclosing_inference_span() -> Span | None:
    """The current span when it is one of otel-llm's inference spans still recording.

    A provider call made inside such a span (a decorated function called within
    ``llm_span``, an instrumented client called within a decorated function) is already
    observed by that span: opening a second inference span would count it twice.
    """
    span = trace.get_current_span()
    scope = getattr(span, "instrumentation_scope", None)
    if scope is None or scope.name != semconv.INSTRUMENTATION_NAME or not span.is_recording():
        return None
    attrs = getattr(span, "attributes", None)
    if not attrs or attrs.get(semconv.GEN_AI_OPERATION_NAME) not in semconv.INFERENCE_OPERATIONS:
        return None
    return span


class LLMCall(AsyncWithToo):
    """Handle on one in-flight LLM call; returned by :func:`llm_span`.

    Record what the response said with :meth:`set_response`, :meth:`set_usage`,
    :meth:`add_tool_call`, :meth:`first_chunk`, :meth:`set_cost` — or hand the whole
    response to :meth:`record_response`. The span ends when the ``with`` block leaves
    (or :meth:`end` is called); further recording after that is ignored.
    """

    __slots__ = (
        "span",
        "_start_ns",
        "_ended",
        "_failed",
        "_ttfc_s",
        "_input_tokens",
        "_output_tokens",
        "_tool_calls",
        "_tool_call_names",
        "_tool_call_ids",
        "_token",
        "_output_messages",
        "_start_attrs",
        "_pending",
        "_pending_ready",
        "_tool_calls_known",
        "_stream_ends",
        "_recorded",  # the answer an instrumentation recorded onto this call; set only then
    )

    def __init__(
        self,
        *,
        operation: str = semconv.OP_CHAT,
        provider: str | None = None,
        model: str | None = None,
        agent: str | None = None,
        route: str | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        stream: bool | None = None,
        tools: int | Sequence[Any] | None = None,
        attempt: int | None = None,
        fallback: bool | None = None,
        fallback_reason: str | None = None,
        logical_call_id: str | None = None,
        input_messages: Any = None,
        attributes: Mapping[str, Any] | None = None,
        start_time_ns: int | None = None,
    ) -> None:
        if not isinstance(operation, str) or not operation:
            report("opening an LLM span", TypeError(f"operation must be a non-empty str, got {operation!r}"))
            operation = semconv.ERROR_TYPE_OTHER
        attrs: dict[str, Any] = current_scope().attributes()
        attrs[semconv.GEN_AI_OPERATION_NAME] = operation
        if provider is not None:
            attrs[semconv.GEN_AI_PROVIDER_NAME] = provider
            attrs[semconv.GEN_AI_SYSTEM] = provider
        if model is not None:
            attrs[semconv.GEN_AI_REQUEST_MODEL] = model
        if agent is not None:
            attrs[semconv.GEN_AI_AGENT_NAME] = agent
        if route is not None:
            attrs[semconv.OTEL_LLM_ROUTE] = route
        if server_address is not None:
            attrs[semconv.SERVER_ADDRESS] = server_address
        if isinstance(server_port, int) and not isinstance(server_port, bool):
            attrs[semconv.SERVER_PORT] = server_port
        if stream is not None:
            attrs[semconv.GEN_AI_REQUEST_STREAM] = bool(stream)
        if tools is not None:
            with swallow("counting tools offered"):
                attrs[semconv.OTEL_LLM_TOOLS_OFFERED] = tools if isinstance(tools, int) else len(tools)
        if isinstance(attempt, int) and not isinstance(attempt, bool):
            attrs[semconv.OTEL_LLM_ATTEMPT] = attempt
            attrs[semconv.OTEL_LLM_FALLBACK] = bool(fallback) if fallback is not None else attempt > 0
        elif fallback is not None:
            attrs[semconv.OTEL_LLM_FALLBACK] = bool(fallback)
        if fallback_reason is not None:
            attrs[semconv.OTEL_LLM_FALLBACK_REASON] = fallback_reason
        if logical_call_id is not None:
            attrs[semconv.OTEL_LLM_LOGICAL_CALL_ID] = logical_call_id
        if attributes:
            attrs.update(attributes)
        self._open(f"{operation} {model}" if model else operation, attrs, start_time_ns)
        if input_messages is not None:
            self.record_input_messages(input_messages)

    @classmethod
    def from_attributes(
        cls, name: str, attributes: dict[str, Any], start_time_ns: int | None = None
    ) -> "LLMCall":
        """Open a call whose start attributes the caller has assembled (the scope's are added).

        For instrumentations, which build the same attributes for every call to one
        server and keep them: the checks and keyword handling of the constructor are not
        paid again per call. ``attributes`` is taken over (not copied): the caller must
        not change it afterwards.
        """
        self = cls.__new__(cls)
        scope = _current_scope.get()
        if scope is not EMPTY_SCOPE:
            merged = scope.attributes()
            merged.update(attributes)
            attributes = merged
        self._open(name, attributes, start_time_ns)
        return self

    def _open(self, name: str, attrs: dict[str, Any], start_time_ns: int | None) -> None:
        """Set the call's state and start its span with ``attrs``."""
        self._start_ns = start_ns = start_time_ns if start_time_ns is not None else time.time_ns()
        self._ended = False
        self._failed = False
        self._ttfc_s: float | None = None
        self._input_tokens: int | None = None
        self._output_tokens: int | None = None
        self._tool_calls = 0
        # A finished response (one with finish reasons) that named no tool call made 0
        # tool calls; before that the count is unknown, not 0.
        self._tool_calls_known = False
        self._tool_call_names: list[str] | None = None  # made by the first tool call
        self._tool_call_ids: list[str] | None = None
        self._token: object | None = None
        self._output_messages: list[dict[str, Any]] | None = None
        # Response-side attributes are buffered and set in one step when the span ends
        # (otel_llm._span_attributes: plain values without the SDK's per-value checks).
        self._pending: dict[str, Any] = {}
        # Whether every buffered value is what the SDK would store for it (a plain value,
        # or a tuple of str for a list): then the whole buffer is stored in one step.
        # otel-llm's own recorders keep it so; a value an application sets may not.
        self._pending_ready = True
        self._start_attrs = attrs
        #: Set by a stream wrapper that takes over ending the call (see ``ends_with_stream``).
        self._stream_ends = False
        try:
            self.span: Span = tracer().start_span(name, kind=_CLIENT, attributes=attrs, start_time=start_ns)
        except Exception as exc:  # noqa: BLE001 - e.g. a span processor whose on_start raises
            report("opening an LLM span", exc)
            self.span = trace.INVALID_SPAN

    # --- context -------------------------------------------------------------------
    def activate(self) -> None:
        """Make this call's span the current span (children nest under it)."""
        if self._token is None:
            self._token = _context.attach_span(self.span)

    def deactivate(self) -> None:
        """Undo :meth:`activate`; safe to call when not active."""
        token = self._token
        if token is not None:
            self._token = None
            try:
                _context.detach(token)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001
                report("detaching the LLM span context", exc)

    # --- recording -----------------------------------------------------------------
    @property
    def ended(self) -> bool:
        """Whether the span has ended (recording is then ignored)."""
        return self._ended

    @property
    def ends_with_stream(self) -> bool:
        """Whether a stream wrapper (:mod:`otel_llm.streaming`) has taken over ending this call.

        Its span then ends when the consumer is done with the stream, not when the block
        that opened the call leaves: a fallback attempt whose target returned a stream
        leaves the call open for it.
        """
        return self._stream_ends

    @property
    def start_attributes(self) -> Mapping[str, Any]:
        """The attributes the span was opened with (the scope's included); read only."""
        return MappingProxyType(self._start_attrs)

    @property
    def start_time_ns(self) -> int:
        """When the call started (epoch nanoseconds); time to first chunk is measured from here."""
        return self._start_ns

    def set_attribute(self, key: str, value: Any) -> None:
        """Set any attribute (a name from :mod:`otel_llm.semconv`)."""
        if self._ended or value is None:
            return
        if type(key) is not str or not key:
            self._invalid_key(key, value)
            return
        if type(value) not in PLAIN_TYPES:
            self._pending_ready = False
        self._pending[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes at once (None values are skipped), as :meth:`set_attribute` does."""
        if self._ended:
            return
        pending = self._pending
        for key, value in attributes.items():
            if value is None:
                continue
            if type(key) is not str or not key:
                self._invalid_key(key, value)
                continue
            if type(value) not in PLAIN_TYPES:
                self._pending_ready = False
            pending[key] = value

    def _invalid_key(self, key: Any, value: Any) -> None:
        """A name that is not a non-empty str: handed to the span at once, whose SDK drops
        it with a warning (the buffered attributes are set without per-key checks)."""
        try:
            self.span.set_attribute(key, value)
        except Exception as exc:  # noqa: BLE001
            report("setting an LLM span attribute", exc)

    def set_checked_response(
        self, attributes: Mapping[str, Any], input_tokens: int | None = None, output_tokens: int | None = None,
    ) -> None:
        """Record response attributes a reader has already checked, in one step.

        For the readers of known response classes (:mod:`otel_llm.extract`): every value
        is of the type and range :meth:`set_response` and :meth:`set_usage` would store
        (finish reasons a non-empty tuple of str, as the SDK stores a list; token counts
        non-negative ints; every other value a plain str, int or float), so the per-field
        checks are not paid again. Finish reasons are given, so the tool-call
        count is known too. ``input_tokens`` and ``output_tokens`` are the token counts
        among ``attributes`` (for the call's metrics), given apart so they are not looked up.
        """
        if self._ended:
            return
        self._pending.update(attributes)
        self._tool_calls_known = True
        if input_tokens is not None:
            self._input_tokens = input_tokens
        if output_tokens is not None:
            self._output_tokens = output_tokens

    def set_response(
        self,
        *,
        model: str | None = None,
        id: str | None = None,  # noqa: A002 - mirrors the response field
        finish_reasons: Iterable[str] | str | None = None,
    ) -> None:
        """Record the response model, response id and finish reasons."""
        if self._ended:
            return
        pending = self._pending
        if model is not None:
            model = model if type(model) is str else str(model)
            pending[semconv.GEN_AI_RESPONSE_MODEL] = model
        if id is not None:
            pending[semconv.GEN_AI_RESPONSE_ID] = id if type(id) is str else str(id)
        if type(finish_reasons) is str:  # one reason (Ollama's done_reason): nothing to convert
            pending[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = (finish_reasons,)
            self._tool_calls_known = True
        elif finish_reasons is not None:
            try:
                if isinstance(finish_reasons, str):
                    finish_reasons = [finish_reasons]
                reasons = tuple(r if type(r) is str else str(r) for r in finish_reasons if r is not None)
                if reasons:
                    pending[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
                    self._tool_calls_known = True
            except Exception as exc:  # noqa: BLE001
                report("recording finish reasons", exc)

    def set_usage(
        self,
        *,
        input_tokens: Any = None,
        output_tokens: Any = None,
        cache_read_input_tokens: Any = None,
        cache_creation_input_tokens: Any = None,
        reasoning_tokens: Any = None,
    ) -> None:
        """Record token counts. Input includes cached tokens, as the conventions say.

        A count of the wrong type is logged and skipped; the others are still recorded.
        """
        if self._ended:
            return
        # A plain non-negative int (the usual case) is stored here; anything else is
        # checked (and converted or skipped) by ``_count``.
        pending = self._pending
        if input_tokens is not None:
            if type(input_tokens) is int and input_tokens >= 0:
                pending[semconv.GEN_AI_USAGE_INPUT_TOKENS] = self._input_tokens = input_tokens
            else:
                count = self._count("input_tokens", semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens)
                if count is not None:
                    self._input_tokens = count
        if output_tokens is not None:
            if type(output_tokens) is int and output_tokens >= 0:
                pending[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = self._output_tokens = output_tokens
            else:
                count = self._count("output_tokens", semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
                if count is not None:
                    self._output_tokens = count
        if cache_read_input_tokens is not None:
            if type(cache_read_input_tokens) is int and cache_read_input_tokens >= 0:
                pending[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cache_read_input_tokens
            else:
                self._count(
                    "cache_read_input_tokens", semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read_input_tokens,
                )
        if cache_creation_input_tokens is not None:
            self._count(
                "cache_creation_input_tokens", semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                cache_creation_input_tokens,
            )
        if reasoning_tokens is not None:
            if type(reasoning_tokens) is int and reasoning_tokens >= 0:
                pending[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning_tokens
            else:
                self._count("reasoning_tokens", semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning_tokens)

    def _count(self, name: str, key: str, value: Any) -> int | None:
        """Buffer one token count; a value that is not a count is logged and skipped."""
        if type(value) is not int or value < 0:
            try:
                value = _as_count(name, value)
            except Exception as exc:  # noqa: BLE001
                report(f"recording {name}", exc)
                return None
        self._pending[key] = value
        return value

    def set_tools_offered(self, tools: int | Sequence[Any]) -> None:
        """Record how many tools the request offered the model."""
        with swallow("recording tools offered"):
            count = tools if isinstance(tools, int) else len(tools)
            self.set_attribute(semconv.OTEL_LLM_TOOLS_OFFERED, count)

    def add_tool_call(self, name: str | None, id: str | None = None) -> None:  # noqa: A002
        """Count one tool call the model emitted; its name and id are kept (not its arguments)."""
        if self._ended:
            return
        with swallow("recording a tool call"):
            self._tool_calls += 1
            self._tool_calls_known = True
            if name is not None:
                if self._tool_call_names is None:
                    self._tool_call_names = []
                self._tool_call_names.append(str(name))
            if id is not None:
                if self._tool_call_ids is None:
                    self._tool_call_ids = []
                self._tool_call_ids.append(str(id))

    def first_chunk(self, at_ns: int | None = None) -> None:
        """Mark the first streamed chunk (only the first call counts)."""
        if self._ended or self._ttfc_s is not None:
            return
        try:
            now = at_ns if at_ns is not None else time.time_ns()
            self._ttfc_s = ttfc = max(0.0, (now - self._start_ns) / 1e9)
            self._pending[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc
        except Exception as exc:  # noqa: BLE001
            report("recording time to first chunk", exc)

    def set_cost(self, usd: Any, basis: str = semconv.COST_BASIS_REPORTED) -> None:
        """Record a cost the provider or the application reported (US dollars)."""
        if self._ended:
            return
        with swallow("recording cost"):
            value = float(usd)
            if value < 0 or value != value:
                raise ValueError(f"cost must be a non-negative number, got {usd!r}")
            self._pending[semconv.OTEL_LLM_COST_USD] = value
            self._pending[semconv.OTEL_LLM_COST_BASIS] = basis if type(basis) is str else str(basis)

    def set_http_status(self, status: int) -> None:
        """Record the HTTP status of the provider's answer."""
        if self._ended:
            return
        if type(status) is not int:
            try:
                status = int(status)
            except Exception as exc:  # noqa: BLE001
                report("recording the HTTP status", exc)
                return
        self._pending[semconv.HTTP_RESPONSE_STATUS_CODE] = status

    def record_input_messages(self, messages: Any) -> None:
        """Record the prompt (only when content capture is enabled)."""
        if self._ended or messages is None or not content.capture_enabled():
            return
        with swallow("recording input messages"):
            self._pending[semconv.GEN_AI_INPUT_MESSAGES] = content.messages_json(messages)

    def add_output_message(self, message: Any, finish_reason: str | None = None) -> None:
        """Record one completion message (only when content capture is enabled)."""
        if self._ended or message is None or not content.capture_enabled():
            return
        with swallow("recording output messages"):
            if self._output_messages is None:
                self._output_messages = []
            self._output_messages.append(content.to_message(message, finish_reason))

    def record_response(self, response: Any, extractor: Any = None) -> None:
        """Read model, id, finish reasons, usage and tool calls out of a response.

        OpenAI- and Ollama-shaped responses (objects or dicts) are understood;
        ``extractor(call, response)`` handles any other shape. An answer an instrumented
        client already recorded onto this call (inside a fallback attempt) is not read
        again: its tool calls would count twice.
        """
        if self._ended or response is None:
            return
        if response is getattr(self, "_recorded", None):
            return  # an instrumented client recorded this very answer here already (a fallback attempt)
        try:
            (extractor or read_response)(self, response)
        except Exception as exc:  # noqa: BLE001
            report("reading the LLM response", exc)

    def fail(self, error: BaseException | str) -> None:
        """Mark the call failed (ERROR status, ``error.type``) without ending it."""
        if self._ended:
            return
        with swallow("recording an LLM call failure"):
            self._failed = True
            if isinstance(error, BaseException):
                etype = error_type_of(error)
                self.span.record_exception(error)
                self.span.set_status(Status(StatusCode.ERROR, f"{etype}: {error}"[:512]))
            else:
                etype = str(error) or semconv.ERROR_TYPE_OTHER
                self.span.set_status(Status(StatusCode.ERROR, etype))
            self._pending[semconv.ERROR_TYPE] = etype

    @property
    def failed(self) -> bool:
        """Whether :meth:`fail` was called (or the block raised)."""
        return self._failed

    def end(self, error: BaseException | None = None, end_time_ns: int | None = None) -> None:
        """End the span exactly once (later calls do nothing) and record the metrics."""
        if self._ended:
            return
        if error is not None:
            self.fail(error)
        self._ended = True
        if self._token is not None:
            self.deactivate()
        end_ns = end_time_ns if end_time_ns is not None else time.time_ns()
        pending = self._pending
        # Plain try blocks rather than ``swallow``: this runs once per call, on the hot path.
        try:
            if self._tool_calls_known:
                pending[semconv.OTEL_LLM_TOOL_CALLS] = self._tool_calls
                if self._tool_call_names:
                    pending[semconv.OTEL_LLM_TOOL_CALL_NAMES] = tuple(self._tool_call_names)
                if self._tool_call_ids:
                    pending[semconv.OTEL_LLM_TOOL_CALL_IDS] = tuple(self._tool_call_ids)
            if self._output_messages:
                pending[semconv.GEN_AI_OUTPUT_MESSAGES] = content.output_json(self._output_messages)
            if pending:
                set_span_attributes(self.span, pending, self._pending_ready)
        except Exception as exc:  # noqa: BLE001
            report("recording the LLM span's response attributes", exc)
        try:
            self.span.end(end_time=end_ns)
        except Exception as exc:  # noqa: BLE001
            report("ending the LLM span", exc)
        try:
            if metrics_enabled():
                record_call(
                    self._start_attrs, pending, (end_ns - self._start_ns) / 1e9,
                    self._input_tokens, self._output_tokens, self._ttfc_s,
                )
        except Exception as exc:  # noqa: BLE001
            report("recording GenAI metrics", exc)

    # --- with / async with -----------------------------------------------------------
    def __enter__(self) -> "LLMCall":
        self.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end(exc)



class llm_span(AsyncWithToo):  # noqa: N801 - used like a function: ``with otel_llm.llm_span(...)``
    """Open an inference span for one provider call; yields an :class:`LLMCall`.

    Usable with ``with`` and ``async with``. Attributes sampling needs (operation,
    provider, model, agent, route, server, stream, attempt) are given here, at start.
    An exception leaving the block sets ERROR status and ``error.type``, is recorded on
    the span, and propagates unchanged.

    >>> with llm_span(provider="openai", model="gpt-4o-mini", agent="support") as call:
    ...     response = client.chat.completions.create(...)
    ...     call.record_response(response)
    """

    __slots__ = ("_kwargs", "_call")

    def __init__(
        self,
        *,
        operation: str = semconv.OP_CHAT,
        provider: str | None = None,
        model: str | None = None,
        agent: str | None = None,
        route: str | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        stream: bool | None = None,
        tools: int | Sequence[Any] | None = None,
        attempt: int | None = None,
        fallback: bool | None = None,
        fallback_reason: str | None = None,
        logical_call_id: str | None = None,
        input_messages: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self._kwargs = dict(
            operation=operation, provider=provider, model=model, agent=agent, route=route,
            server_address=server_address, server_port=server_port, stream=stream, tools=tools,
            attempt=attempt, fallback=fallback, fallback_reason=fallback_reason,
            logical_call_id=logical_call_id, input_messages=input_messages, attributes=attributes,
        )
        self._call: LLMCall | None = None

    def __enter__(self) -> LLMCall:
        self._call = LLMCall(**self._kwargs)
        return self._call.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._call is not None:
            self._call.__exit__(exc_type, exc, tb)

