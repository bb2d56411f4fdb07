"""Auto-instrumentation of the ``openai`` client: one LLM span per HTTP attempt.

Where it hooks in
-----------------
Every resource method of the client (chat completions ``create``/``parse``/``stream``,
legacy completions, embeddings, the Responses API ``create``/``parse``/``stream``)
ends in ``SyncAPIClient.request`` / ``AsyncAPIClient.request``, which holds the SDK's
own retry loop; each HTTP attempt inside the loop goes through ``_send_request``, and
the back-off before a retry is computed by ``_calculate_retry_timeout``. Those three
methods are what is patched (with ``wrapt``; plus the stream helpers' ``close``, see
below), so every endpoint, the helper methods built on ``create``, sync and async
clients, and every subclass (Azure, Bedrock, the module-level client) are covered at
once. A thin table of endpoint adapters
(:data:`ENDPOINTS`) maps the request body to span attributes; requests to any other
endpoint pass through untouched.

Span structure (one observation per provider attempt)
-----------------------------------------------------
There is **no parent span for the logical call**. Each HTTP attempt is its own
inference span (kind CLIENT, ``{operation} {model}``), a sibling under whatever span
was current when the application called the client:

* ``otel_llm.attempt`` = the SDK's retry index (0 for the first try),
  ``otel_llm.fallback`` = false (a retry of the same route is not a fallback),
  ``http.request.resend_count`` on retries, ``otel_llm.retry.backoff_s`` = the back-off
  the SDK waited before this attempt;
* ``otel_llm.logical_call.id`` shared by all attempts of one call;
* ``http.response.status_code``; a failed attempt (HTTP error status, timeout,
  connection error) is ERROR with ``error.type`` named as the SDK names the error it
  would raise (``RateLimitError``, ``InternalServerError``, ``APITimeoutError``,
  ``APIConnectionError``) and ends when its answer arrives, so its duration is the
  attempt's own.

The first attempt's span starts when the application called the client, so for the
common single-attempt call the span covers the whole call; later attempts start when
they are sent. The processor therefore sees exactly one inference span per attempt
and nothing else: a retried-then-successful call is two observations (one failed)
with one logical call id. Not having a parent keeps the common case at one span per
call, which is what the overhead budget allows.

Streams are wrapped in :class:`~otel_llm.streaming.SyncStreamWrapper` /
:class:`~otel_llm.streaming.AsyncStreamWrapper`, which end the attempt's span exactly
once on every exit path; usage comes from the provider's usage chunk, which
``include_usage=True`` asks for (``stream_options.include_usage``) when the caller did
not. The wrapper reads the SDK's own chunk iterator (``Stream._iterator``) when the
stream class's iteration only passes it through, checked once per class against
pass-through bodies; other classes are read through their own methods. Calls made
inside an LLM span the application opened itself, or inside a fallback attempt, are
recorded as :mod:`otel_llm.instrumentation._base` describes.

Inside a fallback attempt the attempt's span observes the call: the request's
attributes fill it in (:func:`~otel_llm.instrumentation._base.record_request_on_host`,
the target's names standing), a stream is wrapped onto it and the attempt leaves it
open until the stream ends, and the SDK's retries are observed per HTTP attempt by
:class:`~otel_llm.instrumentation._hosted.HostedTries`.

The ``chat.completions.stream()`` / ``responses.stream()`` helpers read the raw stream
but close the HTTP response directly, so their ``close`` is patched too: leaving the
helper's ``with`` block early ends the span then, not when the helper is collected.

Raw responses (``.with_raw_response``) come back when the headers have arrived. Not
streamed, the JSON body has been read by then and is recorded as a parsed answer is.
Streamed, the span stays open: the application gets the raw response in a transparent
proxy (:class:`~otel_llm.instrumentation._openai_raw.RawStreamResponse`) whose
``parse()`` returns the stream wrapped as above, so the span ends by the stream's exit
paths; a raw response collected without a parsed stream ends the span then, with status
and request attributes only.

Known limit: with ``.with_streaming_response`` (streamed or not) the body is read by the
application through the SDK's ``APIResponse`` after the call returns, and nothing of it is
read here: such spans end when the call returns, with status and request attributes only
(no usage, finish reasons or time to first chunk). Nor is the body of a streamed
``.with_raw_response`` read here when the application reads it without ``parse()``
(``http_response.iter_lines()``); that span ends when the raw response is collected.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from random import getrandbits as _getrandbits
from collections.abc import Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_llm import semconv
from otel_llm._safety import logger, report, swallow
from otel_llm.call import LLMCall, error_type_of
from otel_llm.content import capture_enabled
from otel_llm.extract import StreamAccumulator, record_response
from otel_llm.instrumentation import _base, _patching
from otel_llm.instrumentation._hosted import HostedTries
from otel_llm.instrumentation._openai_raw import RawStreamResponse
from otel_llm.streaming import AsyncStreamWrapper, SyncStreamWrapper, wrap_async, wrap_sync

_INSTRUMENTS = ("openai >= 1.40",)

#: Endpoint (the request's path) -> operation name. Only POSTs to these are recorded.
ENDPOINTS: Mapping[str, str] = {
    "/chat/completions": semconv.OP_CHAT,
    "/completions": semconv.OP_TEXT_COMPLETION,
    "/embeddings": semconv.OP_EMBEDDINGS,
    "/responses": semconv.OP_CHAT,
}

#: Endpoints whose streams support ``stream_options.include_usage``.
_USAGE_OPTION_ENDPOINTS = frozenset({"/chat/completions", "/completions"})

#: ``response_format``/``text.format`` type -> ``gen_ai.output.type``.
_OUTPUT_TYPES = {"json_schema": "json", "json_object": "json", "text": "text"}

#: The options :func:`install` was given; None while not installed, when a wrapper of ours
#: that could not be taken out of another library's chain passes calls through.
_settings: _base.Settings | None = None


# --- request -> attributes (pure) ----------------------------------------------------------
def request_attributes(path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes a request body gives (never message content)."""
    attrs: dict[str, Any] = {}
    get = body.get
    value = _base.number(get("temperature"))
    if value is not None:
        attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] = value
    value = _base.number(get("top_p"))
    if value is not None:
        attrs[semconv.GEN_AI_REQUEST_TOP_P] = value
    value = _base.positive_int(get("max_completion_tokens") or get("max_tokens") or get("max_output_tokens"))
    if value is not None:
        attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] = value
    seed = _base.int64(get("seed"))
    if seed is not None:
        attrs[semconv.GEN_AI_REQUEST_SEED] = seed
    n = _base.positive_int(get("n"))
    if n is not None and n != 1:
        attrs[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if path == "/embeddings":
        fmt = get("encoding_format")
        if isinstance(fmt, str):
            attrs[semconv.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
        dims = _base.positive_int(get("dimensions"))
        if dims is not None:
            attrs[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims
    fmt_spec = get("response_format")
    if fmt_spec is None:
        text = get("text")
        fmt_spec = text.get("format") if text is not None and isinstance(text, Mapping) else None
    if fmt_spec is not None and isinstance(fmt_spec, Mapping):
        out = _OUTPUT_TYPES.get(fmt_spec.get("type"))  # type: ignore[arg-type]
        if out is not None:
            attrs[semconv.GEN_AI_OUTPUT_TYPE] = out
    return attrs


#: Every request field :func:`request_attributes` and :func:`tools_offered` read.
_REQUEST_KEYS = frozenset({
    "temperature", "top_p", "max_completion_tokens", "max_tokens", "max_output_tokens", "seed", "n",
    "encoding_format", "dimensions", "response_format", "text", "tools", "functions",
})


def tools_offered(body: Mapping[str, Any]) -> int | None:
    """How many tools (or legacy functions) the request offers the model."""
    tools = _base.count(body.get("tools"))
    functions = _base.count(body.get("functions"))
    if tools is None and functions is None:
        return None
    return (tools or 0) + (functions or 0)


def input_messages(path: str, body: Mapping[str, Any]) -> Any:
    """The prompt of a request, for opt-in content capture."""
    if path == "/chat/completions":
        return body.get("messages")
    if path == "/completions":
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else None
    if path == "/responses":
        return body.get("input")
    return None


def _with_usage_option(options: Any, body: Mapping[str, Any]) -> None:
    """Ask for the usage chunk on this stream (the caller did not)."""
    stream_options = body.get("stream_options")
    if isinstance(stream_options, Mapping) and "include_usage" in stream_options:
        return  # the caller decided, either way
    merged = dict(stream_options) if isinstance(stream_options, Mapping) else {}
    merged["include_usage"] = True
    new_body = dict(body)
    new_body["stream_options"] = merged
    options.json_data = new_body


# --- errors ------------------------------------------------------------------------------
def _transport_error_type(exc: BaseException) -> str:
    """The SDK's name for a transport failure it would raise (timeout / connection error)."""
    try:
        from openai._httpx2 import request_exceptions, timeout_exceptions

        if isinstance(exc, timeout_exceptions()):
            return "APITimeoutError"
        if isinstance(exc, request_exceptions()):
            return "APIConnectionError"
    except Exception:  # noqa: BLE001 - older SDK layout: name the exception itself
        pass
    return error_type_of(exc)


def _status_error_type(client: Any, response: Any) -> str:
    """The SDK's exception class name for an HTTP error status (e.g. ``RateLimitError``)."""
    try:
        return type(client._make_status_error("", body=None, response=response)).__name__
    except Exception:  # noqa: BLE001
        return str(response.status_code)


# --- one logical call ----------------------------------------------------------------------
class _LogicalCall:
    """State of one ``request()``: its attempts share everything here.

    The first attempt's span is opened with the call (it starts when the application
    called the client); later attempts' spans when they are sent.
    """

    __slots__ = (
        "mode", "host", "tools", "name", "attrs", "messages",
        "attempts", "current", "backoff", "sending", "capture", "hosted",
    )

    def __init__(
        self, mode: int, host: LLMCall | None, name: str, attrs: dict[str, Any], tools: int | None,
        messages: Any, capture: bool,
    ) -> None:
        self.mode = mode
        self.host = host
        self.tools = tools
        #: Span name and start attributes of every attempt (the template's, with this
        #: call's model options, tools offered and logical call id).
        self.name = name
        self.attrs = attrs
        self.messages = messages
        self.attempts = 0
        self.backoff: float | None = None
        self.sending = False
        self.capture = capture
        self.current: LLMCall | None = None
        #: Inside a fallback attempt: its HTTP tries (set by ``_start``).
        self.hosted: HostedTries | None = None
        if mode != _base.ATTEMPT:
            attrs[semconv.OTEL_LLM_ATTEMPT] = 0
            self.current = call = LLMCall.from_attributes(name, attrs)  # takes the dict over
            if messages is not None:
                call.record_input_messages(messages)

    def begin_attempt(self) -> LLMCall | None:
        """The span of the next HTTP attempt: the first one's, opened with the call, or a
        new one (inside a fallback attempt: None, the attempt's own call observes it and
        an earlier, failed try gets its span from ``hosted``)."""
        index = self.attempts
        self.attempts += 1
        current = self.current
        if index == 0 and current is not None:  # (inside a fallback attempt there is none)
            return current
        if self.mode == _base.ATTEMPT:
            hosted = self.hosted
            if hosted is not None:
                hosted.begin(self.backoff)
            self.backoff = None
            return None
        attrs = dict(self.attrs)
        attrs[semconv.OTEL_LLM_ATTEMPT] = index
        attrs[semconv.HTTP_REQUEST_RESEND_COUNT] = index
        if self.backoff is not None:
            attrs[semconv.OTEL_LLM_RETRY_BACKOFF_S] = self.backoff
            self.backoff = None
        call = LLMCall.from_attributes(self.name, attrs)
        if self.messages is not None:
            call.record_input_messages(self.messages)
        self.current = call
        return call

    # --- how the call ended ------------------------------------------------------------
    def failed(self, exc: BaseException) -> None:
        """``request()`` raised: end the open attempt (if still open) with the exception."""
        if self.mode == _base.ATTEMPT:
            if self.hosted is not None:
                self.hosted.settle()
            return  # the fallback attempt records the exception itself
        call = self.current
        if call is not None and not call.ended:
            call.end(exc)

    def finished(self, result: Any, is_async: bool) -> Any:
        """``request()`` returned: record the answer and end the span, or wrap a stream (or a
        streamed raw response) that ends it later."""
        if self.mode == _base.ATTEMPT:
            call = self.host
            if call is not None:
                call._recorded = result  # recorded here: the target may record it too (LLMCall.record_response)
            if self.hosted is not None:
                with swallow("recording onto the fallback attempt"):
                    self.hosted.settle()
        else:
            call = self.current
        if call is None or call._ended:
            return result
        try:
            kind = _KIND_BY_CLASS.get(type(result), _UNSEEN)  # _special_kind(result), its cache read here
            if kind is _UNSEEN:
                kind = _special_kind(result)
            # The request was sent while the attempt's span was current; reading the body
            # opens no spans, so the span need not be made current for every chunk.
            if kind is _SYNC_STREAM:
                return wrap_sync(call, result, StreamAccumulator(self.capture), False, _chunk_source(result))
            if kind is _ASYNC_STREAM:
                return wrap_async(call, result, StreamAccumulator(self.capture), False, _chunk_source(result))
            if kind is None:
                record_response(call, result)  # what call.record_response does, without its indirection
            elif kind is _LEGACY_RAW and result._stream:  # .with_raw_response, streamed: read later
                return RawStreamResponse(result, call, functools.partial(_wrap_parsed, call, self.capture))
            else:
                _record_raw(call, result)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the call
            report("recording an OpenAI response", exc)
        if self.mode != _base.ATTEMPT:
            call.end()
        return result


#: ``_RAW``: a ``.with_streaming_response`` answer (``APIResponse``); ``_LEGACY_RAW``: a
#: ``.with_raw_response`` one (``LegacyAPIResponse``), whose stream is wrapped when parsed.
_SYNC_STREAM, _ASYNC_STREAM, _RAW, _LEGACY_RAW = "stream", "async stream", "raw", "legacy raw"
#: The SDK's stream and raw-response classes -> kind (filled on first use).
_SPECIAL_TYPES: dict[type, str] = {}
#: Result class -> its kind, or None for a parsed response: one dict lookup per call.
_KIND_BY_CLASS: dict[type, str | None] = {}
_UNSEEN = "unseen"


def _special_kind(result: Any) -> str | None:
    """Whether a result is a stream, a raw response, or (None) a parsed response."""
    cls = type(result)
    kind = _KIND_BY_CLASS.get(cls, _UNSEEN)
    if kind is not _UNSEEN:
        return kind
    if not _SPECIAL_TYPES:
        from openai import AsyncStream, Stream

        _SPECIAL_TYPES.update({Stream: _SYNC_STREAM, AsyncStream: _ASYNC_STREAM})
        try:
            from openai._legacy_response import LegacyAPIResponse
            from openai._response import BaseAPIResponse

            _SPECIAL_TYPES.update({LegacyAPIResponse: _LEGACY_RAW, BaseAPIResponse: _RAW})
        except ImportError:  # pragma: no cover - another SDK layout: raw responses go unread
            pass
    kind = next((k for base, k in _SPECIAL_TYPES.items() if isinstance(result, base)), None)
    # A proxy (its ``__class__`` is not its type) may stand for different classes: not cached.
    if result.__class__ is cls and len(_KIND_BY_CLASS) < 256:
        _KIND_BY_CLASS[cls] = kind
    return kind


# --- reading a stream's chunks -------------------------------------------------------------
def _iter_passes_through(self):  # type: ignore[no-untyped-def]
    for item in self._iterator:
        yield item


def _next_passes_through(self):  # type: ignore[no-untyped-def]
    return self._iterator.__next__()


async def _anext_passes_through(self):  # type: ignore[no-untyped-def]
    return await self._iterator.__anext__()


#: Code flags that tell a generator, a coroutine and a plain function apart.
_KIND_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _same_code(method: Any, reference: Any) -> bool:
    """Whether ``method`` is compiled from the same body as ``reference``."""
    code, ref = getattr(method, "__code__", None), reference.__code__
    return code is not None and all(
        getattr(code, name) == getattr(ref, name) for name in ("co_code", "co_names", "co_varnames", "co_consts")
    ) and (code.co_flags & _KIND_FLAGS) == (ref.co_flags & _KIND_FLAGS)


#: Stream class -> whether its ``__iter__``/``__next__`` (sync) or ``__anext__`` (async)
#: only pass its ``_iterator`` through (checked once per class).
_PASSES_THROUGH: dict[type, bool] = {}


def _chunk_source(stream: Any) -> Any:
    """The SDK's own chunk iterator of an OpenAI ``Stream``/``AsyncStream``, when the
    stream's iteration only passes it through; else None (the stream is read as it is).

    Read directly, each chunk skips a generator step (sync) or a coroutine (async) that
    adds nothing. Whether the class passes it through is checked, once per class, by
    comparing its methods' code with pass-through bodies compiled here: a subclass or a
    later SDK that does more in them is read through them.
    """
    cls = type(stream)
    passes = _PASSES_THROUGH.get(cls)
    if passes is None:
        try:
            if hasattr(cls, "__anext__"):
                passes = _same_code(cls.__anext__, _anext_passes_through)
            else:
                passes = _same_code(cls.__iter__, _iter_passes_through) and _same_code(cls.__next__, _next_passes_through)
        except Exception:  # noqa: BLE001 - an unexpected class: read as it is
            passes = False
        if len(_PASSES_THROUGH) < 64:
            _PASSES_THROUGH[cls] = passes
    return getattr(stream, "_iterator", None) if passes else None


def _wrap_parsed(call: LLMCall, capture: bool, parsed: Any) -> Any:
    """The stream a streamed raw response's ``parse()`` returned, wrapped as ``finished``
    wraps a stream; None when ``parsed`` is not a stream."""
    kind = _special_kind(parsed)
    if kind is _SYNC_STREAM:
        return wrap_sync(call, parsed, StreamAccumulator(capture), False, _chunk_source(parsed))
    if kind is _ASYNC_STREAM:
        return wrap_async(call, parsed, StreamAccumulator(capture), False, _chunk_source(parsed))
    return None


def _record_raw(call: LLMCall, result: Any) -> None:
    """A raw response: parse the JSON body if it was already read (never read it here)."""
    http = getattr(result, "http_response", None)
    if http is None or "json" not in http.headers.get("content-type", ""):
        return
    try:
        content = http.content  # raises when the application has not read the body yet
    except Exception:  # noqa: BLE001 - a .with_streaming_response body not read yet: status only
        return
    with swallow("reading a raw OpenAI response"):
        import json

        call.record_response(json.loads(content))


def _client_classes() -> tuple[type, ...]:
    import importlib

    # By module name: the package's ``_client`` attribute is not always the module.
    base, client_module = importlib.import_module(_BASE), importlib.import_module(_CLIENT)
    return base.BaseClient, client_module.OpenAI, client_module.AsyncOpenAI


#: The client's base URL object. The SDK's ``base_url`` property runs an import
#: statement on every read; for the SDK's own client classes, whose property only
#: returns ``_configured_base_url``, that attribute is read instead.
_BASE_URL = _base.PropertyShortcut("base_url", "_configured_base_url", _client_classes)


def _start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _LogicalCall | None:
    """A logical call for ``request(cast_to, options, stream=...)``, or None to pass through."""
    settings = _settings
    if settings is None:
        return None  # uninstalled: a wrapper left in another library's chain
    options = args[1] if len(args) > 1 else kwargs.get("options")
    if options is None:
        return None
    path = options.url
    operation = ENDPOINTS.get(path)
    if operation is None or options.method.lower() != "post":
        return None
    mode, host = _base.mode()
    if mode == _base.OFF or mode == _base.NESTED:
        return None
    body = options.json_data
    if type(body) is not dict and not isinstance(body, Mapping):
        body = {}
    stream = bool(kwargs.get("stream", False) or body.get("stream"))
    if stream and settings.include_usage and path in _USAGE_OPTION_ENDPOINTS:
        _with_usage_option(options, body)
    capture = capture_enabled()
    messages = input_messages(path, body) if capture else None
    # Most requests set none of the options read below: one key intersection says so.
    options_given = not _REQUEST_KEYS.isdisjoint(body.keys())
    tools = tools_offered(body) if options_given else None
    model = body.get("model")
    url = _BASE_URL.read(instance)
    _identity, name, template = _base.start_for(
        settings.resolver, url, operation, model if type(model) is str else None, stream, True,
    )
    attrs = template.copy()
    if tools is not None:
        attrs[semconv.OTEL_LLM_TOOLS_OFFERED] = tools
    # The id every attempt of this call shares: 64 random bits, hex. Not a secret and
    # not a span id; it only has to be unique among a service's calls.
    attrs[semconv.OTEL_LLM_LOGICAL_CALL_ID] = "%016x" % _getrandbits(64)
    if options_given:
        attrs.update(request_attributes(path, body))
    state = _LogicalCall(mode, host, name, attrs, tools, messages, capture)
    if host is not None:
        host_started = time.time_ns()  # when the first HTTP try of this call begins (soon)
        with swallow("recording onto the fallback attempt"):
            request = _base.record_request_on_host(host, attrs)
            if messages is not None:
                host.record_input_messages(messages)
            attempt = _base.current_attempt()
            if attempt is not None:
                state.hosted = HostedTries(host, attempt, request, host_started)
    return state


# --- the patches ---------------------------------------------------------------------------
_STATE: contextvars.ContextVar[_LogicalCall | None] = contextvars.ContextVar("otel_llm_openai_call", default=None)


def _request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        state = _start(instance, args, kwargs)
    except Exception as exc:  # noqa: BLE001
        report("starting an OpenAI span", exc)
        state = None
    if state is None:
        return wrapped(*args, **kwargs)
    token = _STATE.set(state)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _STATE.reset(token)
        with swallow("ending a failed OpenAI span"):
            state.failed(exc)
        raise
    _STATE.reset(token)
    return state.finished(result, False)


async def _arequest(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        state = _start(instance, args, kwargs)
    except Exception as exc:  # noqa: BLE001
        report("starting an OpenAI span", exc)
        state = None
    if state is None:
        return await wrapped(*args, **kwargs)
    token = _STATE.set(state)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _STATE.reset(token)
        with swallow("ending a failed OpenAI span"):
            state.failed(exc)
        raise
    _STATE.reset(token)
    return state.finished(result, True)


def _attempt_begin(state: _LogicalCall) -> LLMCall | None:
    """Open the attempt's span and make it current while the request is sent (an HTTP
    client span nests under it)."""
    state.sending = True
    try:
        call = state.begin_attempt()
        if call is not None:
            call.activate()
    except Exception as exc:  # noqa: BLE001
        report("opening an OpenAI attempt span", exc)
        return None
    return call


def _attempt_raised(state: _LogicalCall, call: LLMCall | None, exc: BaseException) -> None:
    state.sending = False
    if call is None:
        if state.hosted is not None:
            with swallow("recording a failed OpenAI attempt"):
                etype = _transport_error_type(exc) if isinstance(exc, Exception) else error_type_of(exc)
                state.hosted.raised(exc, etype)
        return
    call.deactivate()
    with swallow("ending a failed OpenAI attempt"):
        if isinstance(exc, Exception):
            call.span.record_exception(exc)
            call.fail(_transport_error_type(exc))
            call.end()
        else:
            call.end(exc)


def _attempt_answered(state: _LogicalCall, call: LLMCall | None, instance: Any, response: Any) -> None:
    state.sending = False
    if call is not None:
        call.deactivate()
    try:
        status = response.status_code
        if call is None:  # inside a fallback attempt (or nothing to record)
            if state.hosted is not None:
                state.hosted.answered(status, _status_error_type(instance, response) if status >= 400 else None)
            return
        call.set_http_status(status)
        if status >= 400:
            call.fail(_status_error_type(instance, response))
            call.end()
    except Exception as exc:  # noqa: BLE001
        report("recording an OpenAI attempt's answer", exc)


def _send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    state = _STATE.get()
    if state is None or state.sending:
        return wrapped(*args, **kwargs)
    call = _attempt_begin(state)
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        _attempt_raised(state, call, exc)
        raise
    _attempt_answered(state, call, instance, response)
    return response


async def _asend(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    state = _STATE.get()
    if state is None or state.sending:
        return await wrapped(*args, **kwargs)
    call = _attempt_begin(state)
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _attempt_raised(state, call, exc)
        raise
    _attempt_answered(state, call, instance, response)
    return response


def _retry_timeout(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    timeout = wrapped(*args, **kwargs)
    state = _STATE.get()
    if state is not None:
        with swallow("recording the retry back-off"):
            state.backoff = float(timeout)
    return timeout


def _helper_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``chat.completions.stream()`` / ``responses.stream()`` helpers close the HTTP response
    directly, bypassing the raw stream they read; end its span there too."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if type(raw) is SyncStreamWrapper:
            with swallow("ending a stream helper's span"):
                raw.close()


async def _ahelper_close(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if type(raw) is AsyncStreamWrapper:
            with swallow("ending a stream helper's span"):
                await raw.aclose()


# --- installing ----------------------------------------------------------------------------
_BASE = "openai._base_client"
_CLIENT = "openai._client"
_CHAT_HELPER = "openai.lib.streaming.chat._completions"
_RESPONSES_HELPER = "openai.lib.streaming.responses._responses"

#: (module, attribute path, wrapper) of every patch.
_PATCHES: tuple[tuple[str, str, Any], ...] = (
    (_BASE, "SyncAPIClient.request", _request),
    (_BASE, "AsyncAPIClient.request", _arequest),
    (_BASE, "SyncAPIClient._send_request", _send),
    (_BASE, "AsyncAPIClient._send_request", _asend),
    (_CLIENT, "OpenAI._send_request", _send),
    (_CLIENT, "AsyncOpenAI._send_request", _asend),
    (_BASE, "BaseClient._calculate_retry_timeout", _retry_timeout),
    (_CHAT_HELPER, "ChatCompletionStream.close", _helper_close),
    (_CHAT_HELPER, "AsyncChatCompletionStream.close", _ahelper_close),
    (_RESPONSES_HELPER, "ResponseStream.close", _helper_close),
    (_RESPONSES_HELPER, "AsyncResponseStream.close", _ahelper_close),
)


def _owner(module_name: str, path: str) -> tuple[Any, str] | None:
    import importlib

    obj: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    # Patch only methods a class defines itself: a subclass that inherits is covered by its base.
    if not isinstance(obj, type) or name not in vars(obj):
        return None
    return obj, name


def _set_settings(settings: _base.Settings | None) -> None:
    global _settings
    _settings = settings


def install(settings: _base.Settings) -> bool:
    """Patch the client; returns False (and logs why) when this SDK version has no choke point."""
    _set_settings(settings)
    required = ("SyncAPIClient.request", "AsyncAPIClient.request", "SyncAPIClient._send_request")
    for path in required:
        if _owner(_BASE, path) is None:
            logger.warning("otel-llm: this openai version has no %s; the openai client is not instrumented", path)
            return False
    for module_name, path, wrapper in _PATCHES:
        try:
            owner = _owner(module_name, path)
        except ImportError:  # a helper module this SDK version does not have
            continue
        if owner is None:
            continue
        _patching.patch(*owner, wrapper)  # once: a wrapper of ours already there is kept
    return True


def uninstall() -> None:
    """Take our wrappers out of the client's methods; one that cannot be taken out of
    another library's chain stays and passes calls through (see :mod:`._patching`)."""
    _set_settings(None)
    for module_name, path, _wrapper in _PATCHES:
        try:
            owner = _owner(module_name, path)
        except ImportError:
            continue
        if owner is None:
            continue
        _patching.unpatch(*owner)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``openai`` client (every endpoint it serves LLM calls from).

    ``OpenAIInstrumentor().instrument(provider_hosts={...}, include_usage=False)``; or
    let ``opentelemetry-instrument`` find it through its entry point; or call
    :func:`otel_llm.instrument`. Spans go to the global tracer provider.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        install(_base.Settings.from_kwargs(kwargs))

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstall()
