"""Auto-instrumentation of the ``ollama`` client: one LLM span per call.

Where it hooks in
-----------------
``chat``, ``generate``, ``embed`` and ``embeddings`` — on ``Client``, ``AsyncClient``
and the module-level functions, which are bound methods of a default ``Client`` — all
end in ``Client._request`` / ``AsyncClient._request`` with the HTTP method, the API
path and the JSON body. Those two methods are the only ones patched (with ``wrapt``);
a table (:data:`ENDPOINTS`) names the operation per path, and requests to any other
path (``pull``, ``list``, ``show``, ...) pass through untouched.

What a span carries
-------------------
The Ollama client does not retry, so each call is one HTTP attempt and one inference
span: ``gen_ai.provider.name`` ``ollama`` (unless the user's host mapping names the
server otherwise), ``server.address``/``server.port`` from the client's host, the
request model and options (temperature, top_p, ``num_predict`` as max tokens, seed,
``format`` as output type), tools offered, and from the answer the response model,
finish reason (``done_reason``), token counts (``prompt_eval_count``/``eval_count``),
tool calls (names; Ollama gives no ids) and Ollama's own timings — load, prompt
evaluation, evaluation and total duration, in seconds — so cold starts and decode
speed are visible.

Inside a fallback attempt the attempt's span observes the call instead: the request's
attributes fill it in (the target's names standing, see
:func:`~otel_llm.instrumentation._base.record_request_on_host`) and a stream is wrapped
onto it, the attempt leaving it open until the stream ends.

Streams (NDJSON) are wrapped in :class:`~otel_llm.streaming.SyncStreamWrapper` /
:class:`~otel_llm.streaming.AsyncStreamWrapper`: the span ends exactly once on every
exit path, the counts and timings come from the final ``done`` chunk, and time to first
chunk is measured from the call (the HTTP request itself is only sent when the stream
is first read, as the client does it). A failed call is ERROR with ``error.type`` the
client's exception class (``ResponseError``, ``ConnectionError``) and, when the server
answered with an error status, ``http.response.status_code`` — for a stream too, whose
error status surfaces on its first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from otel_llm import semconv
from otel_llm._safety import report, swallow
from otel_llm.call import LLMCall
from otel_llm.content import capture_enabled
from otel_llm.extract import StreamAccumulator, record_response
from otel_llm.instrumentation import _base, _patching
from otel_llm.instrumentation.hosts import HostResolver
from otel_llm.streaming import UNTIL_FIRST_CHUNK, wrap_async, wrap_sync

_INSTRUMENTS = ("ollama >= 0.4",)

#: API path -> operation name.
ENDPOINTS: Mapping[str, str] = {
    "/api/chat": semconv.OP_CHAT,
    "/api/generate": semconv.OP_TEXT_COMPLETION,
    "/api/embed": semconv.OP_EMBEDDINGS,
    "/api/embeddings": semconv.OP_EMBEDDINGS,
}

#: The provider name of every Ollama server the user mapping does not name.
PROVIDER = "ollama"

#: Host resolution of the options :func:`install` was given; None while not installed, when
#: a wrapper of ours that could not be taken out of another library's chain passes calls through.
_resolver: HostResolver | None = None


#: Every request field :func:`request_attributes` reads (the client sends ``options`` and
#: ``format`` as None when unset).
_REQUEST_KEYS = frozenset({"options", "format", "dimensions"})


def request_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes a request body gives (never message content)."""
    attrs: dict[str, Any] = {}
    options = body.get("options")
    if options is not None and isinstance(options, Mapping):  # the client sends None when unset
        get = options.get
        value = _base.number(get("temperature"))
        if value is not None:
            attrs[semconv.GEN_AI_REQUEST_TEMPERATURE] = value
        value = _base.number(get("top_p"))
        if value is not None:
            attrs[semconv.GEN_AI_REQUEST_TOP_P] = value
        value = _base.positive_int(get("num_predict"))
        if value is not None:
            attrs[semconv.GEN_AI_REQUEST_MAX_TOKENS] = value
        seed = _base.int64(get("seed"))
        if seed is not None:
            attrs[semconv.GEN_AI_REQUEST_SEED] = seed
    fmt = body.get("format")
    if fmt is not None and (fmt == "json" or isinstance(fmt, Mapping)):
        attrs[semconv.GEN_AI_OUTPUT_TYPE] = "json"
    dims = _base.positive_int(body.get("dimensions"))
    if dims is not None:
        attrs[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dims
    return attrs


def input_messages(path: str, body: Mapping[str, Any]) -> Any:
    """The prompt of a request, for opt-in content capture."""
    if path == "/api/chat":
        return body.get("messages")
    if path == "/api/generate":
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else None
    return None


def _httpx_clients() -> tuple[type, ...]:
    import httpx

    return httpx.Client, httpx.AsyncClient


#: The HTTP client's base URL: for httpx's own clients, whose ``base_url`` property only
#: returns ``_base_url``, that attribute is read directly (one call less per request).
_BASE_URL = _base.PropertyShortcut("base_url", "_base_url", _httpx_clients)


def _start(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[LLMCall, bool, bool] | None:
    """The call to record ``_request(cls, method, path, json=..., stream=...)`` on, whether this
    instrumentation owns its end, and whether content is captured; None to pass through."""
    resolver = _resolver
    if resolver is None:
        return None  # uninstalled: a wrapper left in another library's chain
    path = args[2] if len(args) > 2 else kwargs.get("url")
    operation = ENDPOINTS.get(path) if isinstance(path, str) else None
    if operation is None:
        return None
    mode, host = _base.mode()
    if mode == _base.OFF or mode == _base.NESTED:
        return None
    body = kwargs.get("json")
    if type(body) is not dict and not isinstance(body, Mapping):
        body = {}
    client = instance._client
    model = body.get("model")
    ident, name, template = _base.start_for(
        resolver, _BASE_URL.read(client),
        operation, model if type(model) is str and model else None, bool(kwargs.get("stream", False)), False,
    )
    tools = body.get("tools")  # the client always sends a list; [] is none
    tools = (len(tools) if type(tools) is list else _base.count(tools)) or None
    capture = capture_enabled()
    attrs = template.copy()
    if tools is not None:
        attrs[semconv.OTEL_LLM_TOOLS_OFFERED] = tools
    if not _REQUEST_KEYS.isdisjoint(body.keys()):
        attrs.update(request_attributes(body))
    if host is not None:  # inside a fallback attempt: its span observes the call
        _base.record_request_on_host(host, attrs)
        call, own = host, False
    else:
        call, own = LLMCall.from_attributes(name, attrs), True
    if capture:
        call.record_input_messages(input_messages(path, body))
    return call, own, capture


def _record_status(call: LLMCall, exc: BaseException) -> None:
    """The HTTP status a failure carries (``ResponseError.status_code``; -1 for an error the
    server reported inside a 200 answer, which records none)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status > 0:
        call.set_http_status(status)


def _failed(call: LLMCall, own: bool, exc: BaseException) -> None:
    with swallow("ending a failed Ollama span"):
        _record_status(call, exc)
        if own:
            call.end(exc)


def _answered(call: LLMCall, own: bool, result: Any) -> Any:
    """Record a whole (not streamed) answer and end the span when this instrumentation owns it."""
    try:
        record_response(call, result)  # what call.record_response does, without its indirection
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the call
        report("recording an Ollama response", exc)
    if own:
        call.end()
    else:  # a fallback attempt's call: the target may record the same answer (LLMCall.record_response)
        call._recorded = result
    return result


def _streamed(call: LLMCall, own: bool, capture: bool, result: Any, wrap: Callable[..., Any]) -> Any:
    """A streamed answer, wrapped (``wrap_sync``/``wrap_async``) so that its span ends with it.

    The client sends the request on the first read, so the span is current until the
    first chunk has been read (an HTTP client span then nests under it); later reads only
    parse the body. An HTTP error status also surfaces on that read, as the stream's
    exception: the wrapper hands it to :func:`_record_status` before the span ends."""
    try:
        return wrap(call, result, StreamAccumulator(capture), UNTIL_FIRST_CHUNK, None, _record_status)
    except Exception as exc:  # noqa: BLE001 - telemetry never breaks the call
        report("recording an Ollama response", exc)
        if own:
            call.end()
        return result


def _request(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        started = _start(instance, args, kwargs)
    except Exception as exc:  # noqa: BLE001
        report("starting an Ollama span", exc)
        started = None
    if started is None:
        return wrapped(*args, **kwargs)
    call, own, capture = started
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _failed(call, own, exc)
        raise
    if kwargs.get("stream", False):
        return _streamed(call, own, capture, result, wrap_sync)
    return _answered(call, own, result)


async def _arequest(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        started = _start(instance, args, kwargs)
    except Exception as exc:  # noqa: BLE001
        report("starting an Ollama span", exc)
        started = None
    if started is None:
        return await wrapped(*args, **kwargs)
    call, own, capture = started
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _failed(call, own, exc)
        raise
    if kwargs.get("stream", False):
        return _streamed(call, own, capture, result, wrap_async)
    return _answered(call, own, result)


def _client_module() -> Any:
    # ``ollama._client`` as an attribute of the package is the default Client instance,
    # not the module; import the module by name.
    return importlib.import_module("ollama._client")


_PATCHES: tuple[tuple[str, Any], ...] = (("Client", _request), ("AsyncClient", _arequest))


def _set_resolver(resolver: HostResolver | None) -> None:
    global _resolver
    _resolver = resolver


def install(settings: _base.Settings) -> bool:
    """Patch ``Client._request`` and ``AsyncClient._request`` (once)."""
    _set_resolver(HostResolver(settings.resolver.mapping, default=PROVIDER))
    client_module = _client_module()

    for class_name, wrapper in _PATCHES:
        _patching.patch(getattr(client_module, class_name), "_request", wrapper)
    return True


def uninstall() -> None:
    """Take our wrappers out of ``_request``; one that cannot be taken out of another
    library's chain stays and passes calls through (see :mod:`._patching`)."""
    _set_resolver(None)
    try:
        client_module = _client_module()
    except ImportError:
        return
    for class_name, _wrapper in _PATCHES:
        _patching.unpatch(getattr(client_module, class_name), "_request")


class OllamaInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the ``ollama`` client (chat, generate, embed, embeddings; sync and async).

    ``OllamaInstrumentor().instrument(provider_hosts={...})``; or let
    ``opentelemetry-instrument`` find it through its entry point; or call
    :func:`otel_llm.instrument`. Spans go to the global tracer provider.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        install(_base.Settings.from_kwargs(kwargs))

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstall()
