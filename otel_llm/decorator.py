"""``@llm_call``: one decorator turns a provider call into an LLM span.

Works on sync functions, ``async`` functions, generator functions and async generator
functions (the kind is detected once, when decorating). The span opens when the
function is called and ends when its answer is complete:

* a returned response is read at once (OpenAI- and Ollama-shaped objects or dicts, see
  :func:`otel_llm.extract.record_response`; ``extractor=`` for any other shape);
* a generator function's chunks, or a returned stream (an iterator or async iterator,
  such as OpenAI's ``Stream`` or Ollama's chunk generator with ``stream=True``), end the
  span when the stream ends — on every exit path, see :mod:`otel_llm.streaming`;
* a sync function that returns a coroutine (for example an async SDK method reached
  through a sync wrapper) is followed until the coroutine is awaited to completion.

What the decorated function returns is exactly what the function returned; only a
returned stream comes back inside a transparent proxy (so does the generator of a
decorated generator function: the decorated function is then a plain function that
returns the proxy, which ``isinstance`` still sees as a generator, with ``send``/``throw``
or ``asend``/``athrow`` forwarded). Exceptions propagate unchanged
(the same object), after being recorded on the span. Telemetry failures never reach the
caller. Argument mistakes fail when decorating, with a ``TypeError`` or ``ValueError``.

The request model is the ``model=`` given to the decorator; without one it is read
from the wrapped call's ``model`` argument — keyword or positional, else the
parameter's default — or from the argument named by ``model_from=`` (a parameter name,
or a callable ``(args, kwargs) -> str``).
From the call's keyword arguments the decorator also reads ``stream=True`` (so the
span says it streams from the start), ``tools=`` (a list: counted as tools offered,
unless ``tools=`` was given to the decorator) and ``messages=`` (recorded only when
message-content capture is on).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Awaitable, Callable, TypeVar, overload

from opentelemetry import trace

from otel_llm import semconv
from otel_llm._safety import report
from otel_llm.call import LLMCall, enclosing_inference_span
from otel_llm.fallback import current_attempt
from otel_llm.extract import StreamAccumulator, record_response
from otel_llm.streaming import (
    ASYNC_STREAM, COROUTINE, PLAIN, SYNC_STREAM, AsyncStreamWrapper, ChunkAccumulator, ChunkHook,
    SyncStreamWrapper, result_kind,
)

F = TypeVar("F", bound=Callable[..., Any])

Extractor = Callable[[LLMCall, Any], None]
ModelFrom = str | Callable[[tuple[Any, ...], dict[str, Any]], "str | None"]

_UNSET: Any = object()
_MODEL_PARAM = "model"

_ATTRIBUTE_SCALARS = (str, bool, int, float)
_WRAPPERS = (SyncStreamWrapper, AsyncStreamWrapper)


def _end(call: LLMCall, error: BaseException | None = None) -> None:
    try:
        call.end(error)
    except Exception as exc:  # noqa: BLE001
        report("ending the LLM span", exc)


# --- argument checks (decoration time) ------------------------------------------------------
def _check_bool(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"llm_call(): {name} must be a bool, got {value!r}")


def _check_str(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"llm_call(): {name} must be a non-empty str, got {value!r}")


def _check_attributes(attributes: Any) -> None:
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        raise TypeError(f"llm_call(): attributes must be a mapping of str to attribute values, got {type(attributes).__name__}")
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"llm_call(): attribute names must be non-empty str, got {key!r}")
        ok = isinstance(value, _ATTRIBUTE_SCALARS) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, _ATTRIBUTE_SCALARS) for v in value)
        )
        if not ok:
            raise TypeError(
                f"llm_call(): attribute {key!r} must be a str, bool, int, float or a list of them, got {type(value).__name__}"
            )


def _check_arguments(
    operation: Any, provider: Any, model: Any, agent: Any, route: Any, server_address: Any,
    server_port: Any, stream: Any, tools: Any, attempt: Any, fallback: Any, fallback_reason: Any,
    logical_call_id: Any, attributes: Any, extractor: Any, chunk_extractor: Any, model_from: Any,
) -> None:
    if not isinstance(operation, str) or not operation:
        raise TypeError(f"llm_call(): operation must be a non-empty str such as 'chat' or 'embeddings', got {operation!r}")
    for name, value in (
        ("provider", provider), ("model", model), ("agent", agent), ("route", route),
        ("server_address", server_address), ("fallback_reason", fallback_reason),
        ("logical_call_id", logical_call_id),
    ):
        _check_str(name, value)
    if server_port is not None:
        if not isinstance(server_port, int) or isinstance(server_port, bool):
            raise TypeError(f"llm_call(): server_port must be an int, got {server_port!r}")
        if not 0 < server_port < 65536:
            raise ValueError(f"llm_call(): server_port must be between 1 and 65535, got {server_port}")
    _check_bool("stream", stream)
    _check_bool("fallback", fallback)
    if attempt is not None:
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            raise TypeError(f"llm_call(): attempt must be an int (0 = first choice), got {attempt!r}")
        if attempt < 0:
            raise ValueError(f"llm_call(): attempt must be >= 0, got {attempt}")
    if tools is not None:
        if isinstance(tools, bool) or not isinstance(tools, (int, Sequence)) or isinstance(tools, (str, bytes)):
            raise TypeError(f"llm_call(): tools must be a count or a list of tool definitions, got {tools!r}")
        if isinstance(tools, int) and tools < 0:
            raise ValueError(f"llm_call(): tools must be >= 0, got {tools}")
    _check_attributes(attributes)
    for name, hook in (("extractor", extractor), ("chunk_extractor", chunk_extractor)):
        if hook is not None and not callable(hook):
            raise TypeError(f"llm_call(): {name} must be a callable (call, response) -> None, got {hook!r}")
    if model_from is not _UNSET and model_from is not None:
        if not (isinstance(model_from, str) and model_from.isidentifier()) and not callable(model_from):
            raise TypeError(
                f"llm_call(): model_from must be a parameter name or a callable (args, kwargs) -> str, got {model_from!r}"
            )


# --- the request model -------------------------------------------------------------------------
def _model_resolver(func: Callable[..., Any], model_from: Any) -> Callable[[tuple[Any, ...], dict[str, Any]], Any] | None:
    """A per-call reader of the request model, prepared once (parameter position looked up here)."""
    if model_from is None:
        return None
    if callable(model_from):
        user_resolver = model_from

        def from_hook(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                value = user_resolver(args, kwargs)
            except Exception as exc:  # noqa: BLE001
                report("reading the model with model_from", exc)
                return None
            return value if isinstance(value, str) and value else None

        return from_hook

    explicit = model_from is not _UNSET
    name = model_from if explicit else _MODEL_PARAM
    position: int | None = None
    default: str | None = None
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: keyword only
        params = None
    if params is not None:
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i, p in enumerate(positional):
            if p.name == name:
                position = i
        for p in params:
            if p.name == name and isinstance(p.default, str) and p.default:
                default = p.default
        known = any(p.name == name for p in params) or any(p.kind is p.VAR_KEYWORD for p in params)
        if explicit and not known:
            raise TypeError(f"llm_call(): model_from={name!r} names no parameter of {func.__qualname__}")
        if not known and position is None:
            return None

    def from_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = kwargs.get(name) if kwargs else None
        if value is None and position is not None and len(args) > position:
            value = args[position]
        return value if isinstance(value, str) and value else default

    return from_argument


# --- the decorator ------------------------------------------------------------------------------
@overload
def llm_call(func: F, /) -> F: ...


@overload
def llm_call(
    *,
    operation: str = ...,
    provider: str | None = ...,
    model: str | None = ...,
    agent: str | None = ...,
    route: str | None = ...,
    server_address: str | None = ...,
    server_port: int | None = ...,
    stream: bool | None = ...,
    tools: int | Sequence[Any] | None = ...,
    attempt: int | None = ...,
    fallback: bool | None = ...,
    fallback_reason: str | None = ...,
    logical_call_id: str | None = ...,
    attributes: Mapping[str, Any] | None = ...,
    extractor: Extractor | None = ...,
    chunk_extractor: Extractor | None = ...,
    model_from: ModelFrom | None = ...,
) -> Callable[[F], F]: ...


def llm_call(
    func: Callable[..., Any] | None = None,
    /,
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
    attributes: Mapping[str, Any] | None = None,
    extractor: Extractor | None = None,
    chunk_extractor: Extractor | None = None,
    model_from: ModelFrom | None = _UNSET,
) -> Any:
    """Make every call of the decorated function an LLM span (see the module docs).

    Usable bare (``@llm_call``) or with arguments (``@llm_call(provider="openai",
    agent="support")``). The arguments are those of :func:`otel_llm.llm_span` plus:

    :param extractor: ``hook(call, response)`` that records a response of a shape the
        built-in reader does not know (it replaces the built-in reader; call
        :func:`otel_llm.extract.record_response` inside it to keep both).
    :param chunk_extractor: ``hook(call, chunk)`` run on each streamed chunk, in place
        of the built-in :class:`~otel_llm.extract.StreamAccumulator`.
    :param model_from: where the request model comes from when ``model`` is not given:
        the name of a parameter of the decorated function (default ``"model"``, read
        from keyword or positional arguments), a callable ``(args, kwargs) -> str``, or
        ``None`` to not read one.

    Arguments are checked here, when decorating: an unknown one or one of the wrong type
    raises ``TypeError`` (a value out of range ``ValueError``).
    """
    _check_arguments(
        operation, provider, model, agent, route, server_address, server_port, stream, tools,
        attempt, fallback, fallback_reason, logical_call_id, attributes, extractor,
        chunk_extractor, model_from,
    )
    options = dict(
        operation=operation, provider=provider, model=model, agent=agent, route=route,
        server_address=server_address, server_port=server_port, stream=stream, tools=tools,
        attempt=attempt, fallback=fallback, fallback_reason=fallback_reason,
        logical_call_id=logical_call_id, attributes=dict(attributes) if attributes else None,
        extractor=extractor, chunk_extractor=chunk_extractor, model_from=model_from,
    )
    if func is None:
        return lambda f: _decorate(f, **options)
    return _decorate(func, **options)


def _decorate(
    func: Callable[..., Any],
    *,
    model: str | None,
    stream: bool | None,
    tools: Any,
    extractor: Extractor | None,
    chunk_extractor: Extractor | None,
    model_from: Any,
    **static: Any,
) -> Callable[..., Any]:
    if not callable(func):
        raise TypeError(
            f"llm_call() decorates a function, got {func!r}; its arguments are keyword-only "
            "(e.g. @llm_call(provider='openai'))"
        )
    if inspect.isasyncgenfunction(func):
        kind = "asyncgen"
    elif inspect.isgeneratorfunction(func):
        kind = "gen"
    elif inspect.iscoroutinefunction(func):
        kind = "async"
    else:
        kind = "sync"
    if stream is None and kind in ("gen", "asyncgen"):
        stream = True

    # Everything that does not depend on the call is fixed here, once.
    fixed: dict[str, Any] = {k: v for k, v in static.items() if v is not None}
    if stream is not None:
        fixed["stream"] = stream
    if tools is not None:
        fixed["tools"] = tools
    resolve_model = None if model is not None else _model_resolver(func, model_from)
    read_stream_kwarg = stream is None
    read_tools_kwarg = tools is None
    record = extractor if extractor is not None else record_response

    def open_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> LLMCall | None:
        """The call's span, or None if even opening it failed (the function then runs bare)."""
        if enclosing_inference_span() is not None:
            return None  # already observed by the enclosing LLM span: never count a call twice
        try:
            request_model = model if resolve_model is None else resolve_model(args, kwargs)
            if kwargs:
                per_call = dict(fixed)
                if read_stream_kwarg and kwargs.get("stream") is True:
                    per_call["stream"] = True
                if read_tools_kwarg:
                    offered = kwargs.get("tools")
                    if isinstance(offered, (list, tuple)) and offered:
                        per_call["tools"] = offered
                messages = kwargs.get("messages")
                if isinstance(messages, (list, tuple)):
                    per_call["input_messages"] = messages
                return LLMCall(model=request_model, **per_call)
            return LLMCall(model=request_model, **fixed)
        except Exception as exc:  # noqa: BLE001 - e.g. a span processor whose on_start raises
            report("opening an LLM span", exc)
            return None

    def record_into_attempt(result: Any) -> Any:
        """Inside a fallback attempt, the response goes onto the attempt's own span.

        The attempt's span is the observation of this provider call; reading
        ``attempt.call`` tells the chain the response is recorded already.
        """
        attempt = current_attempt()
        if attempt is None or result_kind(result) != PLAIN:
            return result
        try:
            call = attempt.call
            if (call is not None and not call.ended and call.span is trace.get_current_span()
                    and result is not getattr(call, "_recorded", None)):  # an instrumented client's, recorded
                record(call, result)
        except Exception as exc:  # noqa: BLE001
            report("reading the LLM response", exc)
        return result

    def accumulator(call: LLMCall) -> ChunkAccumulator:
        return ChunkHook(call, chunk_extractor) if chunk_extractor is not None else StreamAccumulator()

    def complete(call: LLMCall, result: Any) -> Any:
        """Record a returned response and end the span; or hand a returned stream its end."""
        kind = result_kind(result)
        if kind == PLAIN:
            try:
                record(call, result)
            except Exception as exc:  # noqa: BLE001
                report("reading the LLM response", exc)
            _end(call)
            return result
        call.deactivate()
        if type(result) in _WRAPPERS and result._llm_state.call is call:
            return result  # already wrapped for this very call: a second wrapper would count twice
        try:
            if read_stream_kwarg and kind != COROUTINE:
                call.set_attribute(semconv.GEN_AI_REQUEST_STREAM, True)
            if kind == SYNC_STREAM:
                return SyncStreamWrapper(call, result, accumulator(call))
            if kind == ASYNC_STREAM:
                return AsyncStreamWrapper(call, result, accumulator(call))
            return _follow(call, result)
        except Exception as exc:  # noqa: BLE001 - wrapping failed: hand back the bare result
            report("wrapping a returned stream", exc)
            _end(call)
            return result

    async def _follow(call: LLMCall, coroutine: Awaitable[Any]) -> Any:
        call.activate()
        try:
            result = await coroutine
        except BaseException as exc:
            _end(call, exc)
            raise
        return complete(call, result)

    if kind == "sync":

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = open_call(args, kwargs)
            if call is None:
                return record_into_attempt(func(*args, **kwargs))
            call.activate()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                _end(call, exc)
                raise
            return complete(call, result)

        return sync_wrapper

    if kind == "async":

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = open_call(args, kwargs)
            if call is None:
                return record_into_attempt(await func(*args, **kwargs))
            call.activate()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                _end(call, exc)
                raise
            if result_kind(result) == COROUTINE:  # an awaited value that is itself a coroutine: leave it be
                _end(call)
                return result
            return complete(call, result)

        return async_wrapper

    wrapper_class: Any = SyncStreamWrapper if kind == "gen" else AsyncStreamWrapper

    @functools.wraps(func)
    def stream_wrapper(*args: Any, **kwargs: Any) -> Any:
        call = open_call(args, kwargs)
        if call is None:
            return func(*args, **kwargs)
        try:
            generator = func(*args, **kwargs)
        except BaseException as exc:
            _end(call, exc)
            raise
        try:
            return wrapper_class(call, generator, accumulator(call))
        except Exception as exc:  # noqa: BLE001
            report("wrapping a stream", exc)
            _end(call)
            return generator

    return stream_wrapper
