"""Reading what a provider's response says: usage, model, id, finish reasons, tool calls.

Two entry points, both pure (they only read the response and record on the call):

* :func:`record_response` for a whole response — OpenAI chat completions, legacy text
  completions, embeddings and Responses API objects, and Ollama chat / generate / embed
  responses, each as the SDK's pydantic object or as a plain dict;
* :class:`StreamAccumulator` for a stream, fed one chunk at a time (OpenAI chat chunks,
  Responses API stream events, Ollama chunks) and asked to record the sum at the end.

Odd shapes never raise: every part (usage, response metadata, tool calls, content) is
read independently, so a broken part is logged (rate-limited) and skipped without
losing the others. Token counts of the wrong type are skipped by
:meth:`LLMCall.set_usage <otel_llm.call.LLMCall.set_usage>`. Tool-call arguments and
message text are read only when message-content capture is on, and then only through
:meth:`LLMCall.add_output_message`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from otel_llm import semconv
from otel_llm._safety import report
from otel_llm.content import capture_enabled

if TYPE_CHECKING:
    from otel_llm.call import LLMCall

_NS_PER_S = 1e9

#: Ollama's server timings (nanoseconds in the response) and the attribute (seconds) each becomes.
OLLAMA_TIMINGS: tuple[tuple[str, str], ...] = (
    ("load_duration", semconv.OTEL_LLM_OLLAMA_LOAD_DURATION),
    ("prompt_eval_duration", semconv.OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION),
    ("eval_duration", semconv.OTEL_LLM_OLLAMA_EVAL_DURATION),
    ("total_duration", semconv.OTEL_LLM_OLLAMA_TOTAL_DURATION),
)

#: Responses API status -> finish reason (chat completions' vocabulary, so routes compare).
_RESPONSES_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
#: Responses API output items that are tool calls the application executes.
_RESPONSES_TOOL_CALL_ITEMS = frozenset({"function_call", "custom_tool_call"})


#: How to read a field of an instance of a class (one dict lookup per read instead of
#: isinstance checks): ``_AS_DICT`` for dicts (``obj.get``), ``_AS_OBJECT`` for objects
#: that are not mappings (``getattr``), ``_AS_EITHER`` for other mappings (``getattr``,
#: then ``obj.get``).
_AS_DICT, _AS_OBJECT, _AS_EITHER = range(3)
_READ_BY_CLASS: dict[type, int] = {}
_CLASS_CACHE_MAX = 512


def _read_mode(cls: type) -> int:
    if issubclass(cls, dict):
        mode = _AS_DICT
    elif issubclass(cls, Mapping):
        mode = _AS_EITHER
    else:
        mode = _AS_OBJECT
    if len(_READ_BY_CLASS) < _CLASS_CACHE_MAX:
        _READ_BY_CLASS[cls] = mode
    return mode


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for objects; None when absent."""
    cls = type(obj)
    mode = _READ_BY_CLASS.get(cls)
    if mode is None:
        mode = _read_mode(cls)
    if mode == _AS_DICT:
        return obj.get(key)
    value = getattr(obj, key, None)
    if value is None and mode == _AS_EITHER:
        return obj.get(key)
    return value


# --- whole responses -------------------------------------------------------------------
def record_response(call: LLMCall, response: Any) -> None:
    """Record what ``response`` says on ``call``; never raises.

    Understands OpenAI-shaped responses (``choices`` with ``message`` or ``text``,
    Responses API ``output``, embeddings ``data``) and Ollama-shaped ones (``message``
    or ``response``, ``prompt_eval_count``/``eval_count``, ``done_reason``, timings),
    as pydantic objects or plain dicts. Anything it does not recognise is ignored.
    """
    if response is None or isinstance(response, (str, bytes)):
        return
    try:
        _response_reader(response)(call, response)
    except Exception as exc:  # noqa: BLE001 - telemetry never raises into the host
        report("reading the LLM response", exc)


def _record_ollama_response(call: LLMCall, response: Any) -> None:
    _record_ollama(call, response, messages=True)


def _detect_response_reader(response: Any) -> tuple[Callable[[LLMCall, Any], None], bool]:
    """The reader for ``response``, and whether its class may keep that reader.

    The client's own response classes are told apart by class. Any other class by the
    fields this object fills, which says what the class is only when a field that marks
    a kind is there: an object that marks none (an error body answered with status 200
    and parsed into a chat completion class, an embeddings answer without usage) is read
    the general way this once, and the next object of its class is looked at afresh.
    """
    cls = type(response)
    if cls in _OPENAI_CHAT_COMPLETION_CLASSES:
        return _record_chat_completion_object, True  # reads odd values the general way itself
    if cls in _OLLAMA_RESPONSE_CLASSES:
        return _record_ollama_object, True
    if _get(response, "choices") is not None:
        return _record_openai_choices_response, True
    kind = _get(response, "object")
    if kind == "response" or _get(response, "output") is not None:
        return _record_responses_api, True
    if _get(response, "data") is not None and (kind == "list" or _get(response, "usage") is not None):
        return _record_openai_embeddings, True
    return _record_ollama_response, any(_get(response, field) is not None for field in _OLLAMA_RESPONSE_MARKS)


#: Fields only an Ollama answer fills (chat, generate, embed, embeddings).
_OLLAMA_RESPONSE_MARKS = ("done", "message", "eval_count", "prompt_eval_count", "embeddings", "embedding")

#: Reader per pydantic response class. Their fields are fixed, so the shape is recognised
#: once per class: probing an object for fields it lacks (pydantic answers a missing
#: attribute by raising internally) is what reading a response used to cost most. Only
#: a reader the class itself or a field marking its kind chose is kept (see
#: :func:`_detect_response_reader`): one odd answer never decides how every later
#: answer of its class is read.
_READER_BY_CLASS: dict[type, Callable[[LLMCall, Any], None]] = {}


def _response_reader(response: Any) -> Callable[[LLMCall, Any], None]:
    cls = type(response)
    reader = _READER_BY_CLASS.get(cls)
    if reader is None:
        reader, by_kind = _detect_response_reader(response)
        # Only classes with fixed fields (pydantic models) are cached: a dict's keys vary.
        if by_kind and hasattr(cls, "model_fields") and len(_READER_BY_CLASS) < _CLASS_CACHE_MAX:
            _READER_BY_CLASS[cls] = reader
    return reader


def _record_openai_choices_response(call: LLMCall, response: Any) -> None:
    """Chat completion (``choices[].message``) or legacy completion (``choices[].text``)."""
    reasons: list[str] = []
    outputs: list[tuple[Any, Any]] = []
    try:
        for choice in _get(response, "choices") or ():  # none: an error body parsed as a completion
            reason = _get(choice, "finish_reason")
            if reason is not None:
                reasons.append(reason)
            message = _get(choice, "message")
            if message is None:
                message = {"role": "assistant", "content": _get(choice, "text")}
            elif _get(message, "tool_calls") or _get(message, "function_call") is not None:
                _record_openai_tool_calls(call, message)
            outputs.append((message, reason))
    except Exception as exc:  # noqa: BLE001
        report("reading choices", exc)
    call.set_response(model=_get(response, "model"), id=_get(response, "id"), finish_reasons=reasons or None)
    usage = _get(response, "usage")
    if usage is not None:
        _record_openai_usage(call, usage)
    if outputs and capture_enabled():
        for message, reason in outputs:
            call.add_output_message(message, reason)


def _record_chat_completion_object(call: LLMCall, response: Any) -> None:
    """An OpenAI ``ChatCompletion`` object: its fields read as attributes, without probing.

    Anything unexpected (a field missing, a nested dict) and content capture go the
    general way; nothing is recorded before everything has been read.
    """
    if capture_enabled():
        _record_openai_choices_response(call, response)
        return
    try:
        reasons: list[str] = []
        with_tools: list[Any] | None = None
        for choice in response.choices:
            reason = choice.finish_reason
            if reason is not None:
                reasons.append(reason)
            message = choice.message
            if message.tool_calls or message.function_call is not None:
                if with_tools is None:
                    with_tools = []
                with_tools.append(message)
        model = response.model
        rid = response.id
        usage = response.usage
    except Exception:  # noqa: BLE001 - another shape after all: the general reader
        _record_openai_choices_response(call, response)
        return
    if with_tools is not None:
        for message in with_tools:
            _record_openai_tool_calls(call, message)
    _record_completion_totals(call, model, rid, reasons, usage)


def _record_completion_totals(call: LLMCall, model: Any, rid: Any, reasons: list[Any], usage: Any) -> None:
    """Model, id, finish reasons and usage of a chat completion (or a stream of chunk objects).

    The usual answer — str model and id, one str finish reason, a usage object whose
    counts are all plain non-negative ints (the detailed ones may be absent) — is
    recorded in one step, read here in one function (each further call on this path is
    a measurable share of an instrumented call); anything else field by field, each
    field checked.
    """
    if type(model) is str and type(rid) is str and len(reasons) == 1 and type(reasons[0]) is str:
        attrs = {
            semconv.GEN_AI_RESPONSE_MODEL: model,
            semconv.GEN_AI_RESPONSE_ID: rid,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: (reasons[0],),  # stored as the SDK stores a list
        }
        if usage is None:
            call.set_checked_response(attrs)
            return
        try:
            input_tokens = usage.prompt_tokens
            output_tokens = usage.completion_tokens
            in_details = usage.prompt_tokens_details
            out_details = usage.completion_tokens_details
            cached = written = reasoning = None
            if in_details is not None:
                cached = in_details.cached_tokens
                written = in_details.cache_write_tokens
            if out_details is not None:
                reasoning = out_details.reasoning_tokens
            # Every count a plain int or (the detailed ones) absent, none negative. An
            # absent input or output count passes the type test, and min() raises on it.
            plain = (
                {type(input_tokens), type(output_tokens), type(cached), type(written), type(reasoning)}
                <= _COUNT_TYPES
                and min(input_tokens, output_tokens, cached or 0, written or 0, reasoning or 0) >= 0
            )
        except Exception:  # noqa: BLE001 - another shape: the general reader
            plain = False
        if plain:
            attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
            attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
            if cached is not None:
                attrs[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
            if written is not None:
                attrs[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = written
            if reasoning is not None:
                attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
            call.set_checked_response(attrs, input_tokens, output_tokens)
            return
    call.set_response(model=model, id=rid, finish_reasons=reasons or None)
    if usage is not None:
        _record_completion_usage_object(call, usage)


#: The types a token count of a usage object may have on the one-step path (None: absent).
_COUNT_TYPES = frozenset((int, type(None)))


def _record_ollama_object(call: LLMCall, response: Any, messages: bool = True) -> None:
    """An Ollama ``ChatResponse`` / ``GenerateResponse`` object: fields read as attributes.

    Content capture and anything unexpected go the general way (:func:`_record_ollama`).
    """
    if messages and capture_enabled():
        _record_ollama(call, response, messages=True)
        return
    try:
        model = response.model
        reason = response.done_reason
        input_tokens = response.prompt_eval_count
        output_tokens = response.eval_count
        load = response.load_duration
        prompt_eval = response.prompt_eval_duration
        eval_ = response.eval_duration
        total = response.total_duration
        message = response.message if messages and type(response) in _OLLAMA_CHAT_CLASSES else None
        tool_calls = message.tool_calls if message is not None else None
    except Exception:  # noqa: BLE001 - another shape after all: the general reader
        _record_ollama(call, response, messages=messages)
        return
    if (
        type(model) is str and type(reason) is str
        and int is type(input_tokens) is type(output_tokens) is type(load) is type(prompt_eval) is type(eval_)
        is type(total)
        and min(input_tokens, output_tokens, load, prompt_eval, eval_, total) >= 0
    ):
        # The usual final answer (every field present and plain): recorded in one step,
        # the same attributes the per-field way below records.
        call.set_checked_response({
            semconv.GEN_AI_RESPONSE_MODEL: model,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: (reason,),
            semconv.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            semconv.OTEL_LLM_OLLAMA_LOAD_DURATION: load / _NS_PER_S,
            semconv.OTEL_LLM_OLLAMA_PROMPT_EVAL_DURATION: prompt_eval / _NS_PER_S,
            semconv.OTEL_LLM_OLLAMA_EVAL_DURATION: eval_ / _NS_PER_S,
            semconv.OTEL_LLM_OLLAMA_TOTAL_DURATION: total / _NS_PER_S,
        }, input_tokens, output_tokens)
    else:
        _record_ollama_fields(call, model, reason, input_tokens, output_tokens, (load, prompt_eval, eval_, total))
    if tool_calls:
        try:
            for tc in tool_calls:
                fn = _get(tc, "function")
                call.add_tool_call(_get(fn, "name") if fn is not None else _get(tc, "name"), _get(tc, "id"))
        except Exception as exc:  # noqa: BLE001
            report("reading the Ollama message", exc)


def _record_ollama_fields(
    call: LLMCall, model: Any, reason: Any, input_tokens: Any, output_tokens: Any, timings: tuple[Any, ...]
) -> None:
    """The fields of an Ollama response object, each checked as it is recorded."""
    call.set_response(model=model, finish_reasons=reason)
    if input_tokens is not None or output_tokens is not None:
        call.set_usage(input_tokens=input_tokens, output_tokens=output_tokens)
    seconds: dict[str, float] = {}
    for (field, key), value in zip(OLLAMA_TIMINGS, timings):
        if value is not None:
            if type(value) is int and value >= 0:
                seconds[key] = value / _NS_PER_S
            else:
                _record_ollama_timing(call, field, key, value)
    if seconds:
        call.set_attributes(seconds)


def _record_openai_tool_calls(call: LLMCall, message: Any) -> None:
    """Count the tool calls of one chat message, keeping names and ids (never arguments)."""
    tool_calls = _get(message, "tool_calls")
    if tool_calls:
        for tc in tool_calls:
            fn = _get(tc, "function") or _get(tc, "custom")
            call.add_tool_call(_get(fn, "name") if fn is not None else _get(tc, "name"), _get(tc, "id"))
        return
    legacy = _get(message, "function_call")  # deprecated single function call
    if legacy is not None:
        call.add_tool_call(_get(legacy, "name"), None)


def _record_completion_usage_object(call: LLMCall, usage: Any) -> None:
    """The usage of a chat completion (or chunk) object: its fields read as attributes;
    another shape goes the general way (:func:`_record_openai_usage`)."""
    try:
        in_details = usage.prompt_tokens_details
        out_details = usage.completion_tokens_details
        counts = (
            usage.prompt_tokens, usage.completion_tokens,
            in_details.cached_tokens if in_details is not None else None,
            in_details.cache_write_tokens if in_details is not None else None,
            out_details.reasoning_tokens if out_details is not None else None,
        )
    except Exception:  # noqa: BLE001
        _record_openai_usage(call, usage)
        return
    call.set_usage(
        input_tokens=counts[0], output_tokens=counts[1], cache_read_input_tokens=counts[2],
        cache_creation_input_tokens=counts[3], reasoning_tokens=counts[4],
    )


def _record_openai_usage(call: LLMCall, usage: Any) -> None:
    """Chat/completion usage (prompt/completion tokens) or Responses usage (input/output tokens)."""
    input_tokens = _get(usage, "prompt_tokens")
    if input_tokens is not None:
        output_tokens = _get(usage, "completion_tokens")
        in_details = _get(usage, "prompt_tokens_details")
        out_details = _get(usage, "completion_tokens_details")
    else:
        input_tokens = _get(usage, "input_tokens")
        output_tokens = _get(usage, "output_tokens")
        in_details = _get(usage, "input_tokens_details")
        out_details = _get(usage, "output_tokens_details")
    call.set_usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=_get(in_details, "cached_tokens") if in_details is not None else None,
        cache_creation_input_tokens=_get(in_details, "cache_write_tokens") if in_details is not None else None,
        reasoning_tokens=_get(out_details, "reasoning_tokens") if out_details is not None else None,
    )


def _record_openai_embeddings(call: LLMCall, response: Any) -> None:
    call.set_response(model=_get(response, "model"), id=_get(response, "id"))
    _record_openai_usage(call, _get(response, "usage"))


def _responses_finish_reason(response: Any, has_tool_calls: bool) -> str | None:
    status = _get(response, "status")
    if status == "completed":
        return "tool_calls" if has_tool_calls else "stop"
    if status == "incomplete":
        details = _get(response, "incomplete_details")
        reason = _get(details, "reason") if details is not None else None
        return _RESPONSES_INCOMPLETE_REASONS.get(reason, reason) or "incomplete"
    if status == "failed":
        return "error"
    return None


def _responses_error_type(error: Any) -> str:
    """``error.type`` of a Responses API failure (a failed response's ``error``, or an
    in-band ``error`` event): its ``code``, else ``_OTHER``."""
    code = _get(error, "code") if error is not None else None
    return str(code) if code else semconv.ERROR_TYPE_OTHER


def _record_responses_api(call: LLMCall, response: Any) -> None:
    """A Responses API ``response`` object (also what ``response.completed`` events carry)."""
    output = _get(response, "output") or ()
    tool_items: list[Any] = []
    texts: list[str] = []
    capture = capture_enabled()
    try:
        for item in output:
            kind = _get(item, "type")
            if kind in _RESPONSES_TOOL_CALL_ITEMS:
                tool_items.append(item)
                call.add_tool_call(_get(item, "name"), _get(item, "call_id") or _get(item, "id"))
            elif capture and kind == "message":
                for part in _get(item, "content") or ():
                    text = _get(part, "text")
                    if text is not None:
                        texts.append(text)
    except Exception as exc:  # noqa: BLE001
        report("reading Responses API output", exc)
    reason = _responses_finish_reason(response, bool(tool_items))
    call.set_response(model=_get(response, "model"), id=_get(response, "id"), finish_reasons=reason)
    usage = _get(response, "usage")
    if usage is not None:
        _record_openai_usage(call, usage)
    if _get(response, "status") == "failed":
        error = _get(response, "error")
        call.fail(_responses_error_type(error))
    if capture and (texts or tool_items):
        message = {
            "role": "assistant",
            "content": "".join(texts) if texts else None,
            "tool_calls": [
                {"id": _get(t, "call_id"), "name": _get(t, "name"), "arguments": _get(t, "arguments") or _get(t, "input")}
                for t in tool_items
            ],
        }
        call.add_output_message(message, reason)


def _record_ollama(call: LLMCall, response: Any, *, messages: bool) -> None:
    """An Ollama chat/generate/embed response (or a stream's final chunk when ``messages`` is False)."""
    call.set_response(model=_get(response, "model"), finish_reasons=_get(response, "done_reason"))
    input_tokens = _get(response, "prompt_eval_count")
    output_tokens = _get(response, "eval_count")
    if input_tokens is not None or output_tokens is not None:
        call.set_usage(input_tokens=input_tokens, output_tokens=output_tokens)
    record_ollama_timings(call, response)
    if not messages:
        return
    try:
        message = _get(response, "message")
        if message is not None:
            for tc in _get(message, "tool_calls") or ():
                fn = _get(tc, "function")
                call.add_tool_call(_get(fn, "name") if fn is not None else _get(tc, "name"), _get(tc, "id"))
            if capture_enabled():
                call.add_output_message(message, _get(response, "done_reason"))
        else:
            text = _get(response, "response")
            if isinstance(text, str) and capture_enabled():
                call.add_output_message({"role": "assistant", "content": text}, _get(response, "done_reason"))
    except Exception as exc:  # noqa: BLE001
        report("reading the Ollama message", exc)


def record_ollama_timings(call: LLMCall, response: Any) -> None:
    """Ollama's load / prompt-eval / eval / total durations (ns) as seconds attributes."""
    for field, key in OLLAMA_TIMINGS:
        value = _get(response, field)
        if value is not None:
            _record_ollama_timing(call, field, key, value)


def _record_ollama_timing(call: LLMCall, field: str, key: str, value: Any) -> None:
    """One Ollama duration (ns) as seconds; a value that is not a non-negative number is logged."""
    cls = type(value)
    if (cls is int or cls is float) and value >= 0:  # the usual case, checked first
        call.set_attribute(key, value / _NS_PER_S)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        report(f"recording Ollama {field}", TypeError(f"{field} must be a non-negative number of ns, got {value!r}"))
        return
    call.set_attribute(key, value / _NS_PER_S)


# --- streams -----------------------------------------------------------------------------
_KIND_OTHER = 0
_KIND_OPENAI = 1  # chat / legacy completion chunk: has ``choices``
_KIND_RESPONSES = 2  # Responses API stream event: ``type`` "response.*", or the in-band "error"
_KIND_OLLAMA = 3  # Ollama chunk: ``done`` / ``message`` / ``response``
_KIND_SKIP = 4  # text and bytes chunks carry no metadata

#: Chunk kind per pydantic class (their fields are fixed), so detection runs once per class.
_KIND_BY_CLASS: dict[type, int] = {}


def _detect_kind(chunk: Any) -> int:
    if _get(chunk, "choices") is not None:
        return _KIND_OPENAI
    etype = _get(chunk, "type")
    if isinstance(etype, str) and (etype.startswith("response.") or etype == "error"):
        return _KIND_RESPONSES
    if _get(chunk, "done") is not None or _get(chunk, "message") is not None or _get(chunk, "eval_count") is not None:
        return _KIND_OLLAMA
    return _KIND_OTHER


def _chunk_classes(*specs: tuple[str, str]) -> frozenset[type]:
    """The classes named (module, class) that can be imported; the others are left out."""
    import importlib

    found: set[type] = set()
    for module_name, class_name in specs:
        try:
            found.add(getattr(importlib.import_module(module_name), class_name))
        except Exception:  # noqa: BLE001 - client not installed, or another layout
            continue
    return frozenset(found)


class _LazyClasses:
    """A set of client classes, imported on first use (the clients may not be installed)."""

    __slots__ = ("_specs", "_classes")

    def __init__(self, *specs: tuple[str, str]) -> None:
        self._specs = specs
        self._classes: frozenset[type] | None = None

    def __contains__(self, cls: object) -> bool:
        classes = self._classes
        if classes is None:
            classes = self._classes = _chunk_classes(*self._specs)
        return cls in classes


#: Chunk classes whose fields the short path of :meth:`StreamAccumulator.add` reads
#: directly: OpenAI chat chunks (``choices[].delta``) and Ollama chat chunks (``message``).
_OPENAI_CHAT_CHUNK_CLASSES = _LazyClasses(("openai.types.chat", "ChatCompletionChunk"))
_OLLAMA_CHAT_CHUNK_CLASSES = _LazyClasses(("ollama", "ChatResponse"))
#: Whole-response classes read by attribute (see :func:`_record_chat_completion_object`).
_OPENAI_CHAT_COMPLETION_CLASSES = _LazyClasses(("openai.types.chat", "ChatCompletion"))
_OLLAMA_CHAT_CLASSES = _OLLAMA_CHAT_CHUNK_CLASSES
_OLLAMA_RESPONSE_CLASSES = _LazyClasses(("ollama", "ChatResponse"), ("ollama", "GenerateResponse"))


class _ShortPathKinds(dict):  # type: ignore[type-arg]
    """Chunk class -> short-path kind of :meth:`StreamAccumulator.add` (``_KIND_OPENAI`` /
    ``_KIND_OLLAMA``), or None: filled per class on first sight, so choosing a stream's
    path is one dict lookup."""

    def __missing__(self, cls: type) -> int | None:
        if cls in _OPENAI_CHAT_CHUNK_CLASSES:
            kind: int | None = _KIND_OPENAI
        elif cls in _OLLAMA_CHAT_CHUNK_CLASSES:
            kind = _KIND_OLLAMA
        else:
            kind = None
        if len(self) < _CLASS_CACHE_MAX:
            self[cls] = kind
        return kind


_SHORT_PATH_KINDS = _ShortPathKinds()


def _chunk_kind(chunk: Any) -> int:
    cls = type(chunk)
    kind = _KIND_BY_CLASS.get(cls)
    if kind is not None:
        return kind
    if cls is str or cls is bytes:
        return _KIND_SKIP
    kind = _detect_kind(chunk)
    # Only classes with fixed fields (pydantic models) are cached: a dict's keys vary.
    if hasattr(cls, "model_fields") and kind != _KIND_OTHER and len(_KIND_BY_CLASS) < _CLASS_CACHE_MAX:
        _KIND_BY_CLASS[cls] = kind
    return kind


#: The shared empty container of :class:`StreamAccumulator` parts not written yet.
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


class _ToolCallParts:
    """One streamed tool call, assembled from deltas that share an index."""

    __slots__ = ("id", "name", "arguments")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []


class StreamAccumulator:
    """Sums a streamed response chunk by chunk; :meth:`finish` records the total on a call.

    Understands OpenAI chat (and legacy completion) chunks — tool-call deltas assembled
    by index, finish reasons, the usage chunk sent with
    ``stream_options={"include_usage": True}``, model and id — Responses API stream
    events (the ``response.completed`` / ``.incomplete`` / ``.failed`` event carries the
    whole response), and Ollama chunks (the final ``done=True`` chunk has the counts).

    :meth:`add` runs once per chunk, so it does little and never raises. Message text
    and tool-call arguments are kept only when content capture was on when the
    accumulator was made.
    """

    __slots__ = (
        "_capture", "_model", "_id", "_usage", "_finish", "_tools", "_text",
        "_response", "_ollama_final", "_ollama_tools", "_ollama_model", "_failed_adds",
        "_openai_cls", "_ollama_cls", "_unseen", "_error",
    )

    def __init__(self, capture_content: bool | None = None) -> None:
        self._capture = capture_enabled() if capture_content is None else bool(capture_content)
        self._model: Any = None
        self._id: Any = None
        self._usage: Any = None
        self._finish: dict[int, str] = {}
        # Containers most streams never fill start as shared empty read-only ones and are
        # made when first written (fewer objects per call for the garbage collector).
        self._tools: Mapping[tuple[int, int], _ToolCallParts] = _EMPTY
        self._text: dict[int, list[str]] = {} if self._capture else _EMPTY  # type: ignore[assignment]
        self._response: Any = None
        self._ollama_final: Any = None
        self._ollama_tools: list[Any] | tuple[()] = ()
        self._ollama_model: Any = None
        self._failed_adds = 0
        # The class of this stream's chunks once one has been read the general way, when
        # the short path of ``add`` can read it (an OpenAI chat chunk or an Ollama chat
        # chunk, pydantic, content not captured): that path is plain attribute reads.
        self._openai_cls: type | None = None
        self._ollama_cls: type | None = None
        self._unseen = True  # no chunk read yet: the first one chooses the short path
        #: ``error.type`` of an in-band error event (a Responses API stream's "error"): the
        #: client hands it to the application as an event, not an exception.
        self._error: str | None = None

    def add(self, chunk: Any) -> None:
        """Take one chunk into account; never raises."""
        cls = type(chunk)
        if self._unseen:  # the first chunk chooses the short path
            self._unseen = False
            if not self._capture:
                kind = _SHORT_PATH_KINDS[cls]
                if kind == _KIND_OPENAI:
                    self._openai_cls = cls
                elif kind == _KIND_OLLAMA:
                    self._ollama_cls = cls
        if cls is self._openai_cls:
            self._add_openai_chunk(chunk)
        elif cls is self._ollama_cls:
            self._add_ollama_chunk(chunk)
        else:
            self._add_general(chunk)

    def chunk_step(self) -> Callable[[Any], None]:
        """What adds the rest of this stream's chunks most cheaply, once one has been added.

        For a stream of OpenAI or Ollama chat chunk objects (content not captured) that
        is the short path's own method, without :meth:`add`'s choice per chunk: on a long
        stream the per-chunk step is most of the cost (``benchmarks/stream_chunk_cost.py``).
        It reads any later chunk by its fields, whatever its class, and hands one it
        cannot read to the general path; otherwise :meth:`add`.
        """
        if self._openai_cls is not None:
            # Model and id are the first chunk's that names them: once both are known,
            # later chunks are not asked again.
            return self._add_openai_later if self._model is not None and self._id is not None else self._add_openai_chunk
        if self._ollama_cls is not None:
            return self._add_ollama_later if self._ollama_model is not None else self._add_ollama_chunk
        return self.add

    def starts_chat_stream(self, chunk: Any) -> bool:
        """Whether a stream wrapper's loop may read this stream's later chunks itself: the
        first is an OpenAI chat chunk object naming model and id, content not captured.
        If so the first chunk is added here, and the loop reads every later chunk as
        :meth:`_add_openai_later` does: the usage object into ``_usage``, finish reasons
        into ``_finish`` by choice index, tool-call deltas handed to
        :meth:`add_tool_deltas`, a chunk it cannot read to :meth:`read_odd_chunk`. If not,
        nothing is taken (the loop hands the chunk to :meth:`add`).
        """
        cls = type(chunk)
        if not self._unseen or self._capture or _SHORT_PATH_KINDS[cls] != _KIND_OPENAI:
            return False
        try:
            model = chunk.model
            rid = chunk.id
        except Exception:  # noqa: BLE001 - an odd chunk: add() reads it
            return False
        if not model or not rid:
            return False
        self._unseen = False
        self._openai_cls = cls
        self._model = model
        self._id = rid
        self._add_openai_later(chunk)
        return True

    def read_odd_chunk(self, chunk: Any) -> None:
        """A chunk the short way could not read: read the general way (idempotent), as are
        the totals at the end."""
        self._openai_cls = None
        self._add_general(chunk)

    def _add_openai_chunk(self, chunk: Any) -> None:
        """The short path: an OpenAI chat chunk object, read as attributes."""
        try:
            if self._model is None:
                self._model = chunk.model or None
            if self._id is None:
                self._id = chunk.id or None
        except Exception:  # noqa: BLE001 - an odd chunk: read it the general way (idempotent)
            self.read_odd_chunk(chunk)
            return
        self._add_openai_later(chunk)

    def _add_openai_later(self, chunk: Any) -> None:
        """The short path's step once model and id are known (:meth:`chunk_step`)."""
        try:
            usage = chunk.usage
            if usage is not None:
                self._usage = usage
            for choice in chunk.choices:
                reason = choice.finish_reason
                if reason is not None:
                    self._finish[choice.index or 0] = reason
                if choice.delta.tool_calls:
                    self.add_tool_deltas(choice.index or 0, choice.delta.tool_calls)
        except Exception:  # noqa: BLE001 - an odd chunk: read it the general way (idempotent)
            self.read_odd_chunk(chunk)

    def _add_ollama_chunk(self, chunk: Any) -> None:
        """The short path: an Ollama chat chunk object, read as attributes."""
        if self._ollama_model is None:
            try:
                self._ollama_model = chunk.model or None
            except Exception:  # noqa: BLE001 - an odd chunk: read it the general way
                self._ollama_cls = None
                self._add_general(chunk)
                return
        self._add_ollama_later(chunk)

    def _add_ollama_later(self, chunk: Any) -> None:
        """The short path's step once the model is known (:meth:`chunk_step`)."""
        try:
            message = chunk.message
            if message is not None and message.tool_calls:
                self._add_ollama_tools(message.tool_calls)
            if chunk.done:
                self._ollama_final = chunk
        except Exception:  # noqa: BLE001 - an odd chunk: read it the general way
            self._ollama_cls = None
            self._add_general(chunk)

    def _add_general(self, chunk: Any) -> None:
        try:
            kind = _KIND_BY_CLASS.get(type(chunk))
            if kind is None:
                kind = _chunk_kind(chunk)
            if kind == _KIND_OPENAI:
                self._add_openai(chunk)
            elif kind == _KIND_RESPONSES:
                response = _get(chunk, "response")
                if response is not None:
                    self._response = response  # the last one (completed/incomplete/failed) wins
                elif _get(chunk, "type") == "error":  # the stream failed; the client raised nothing
                    self._error = _responses_error_type(chunk)
            elif kind == _KIND_OLLAMA:
                self._add_ollama(chunk)
        except Exception as exc:  # noqa: BLE001 - per-chunk telemetry never raises
            self._failed_adds += 1
            report("reading a stream chunk", exc)

    def _add_openai(self, chunk: Any) -> None:
        if self._model is None:
            self._model = _get(chunk, "model") or None
        if self._id is None:
            self._id = _get(chunk, "id") or None
        usage = _get(chunk, "usage")
        if usage is not None:
            self._usage = usage
        for choice in _get(chunk, "choices"):
            index = _get(choice, "index") or 0
            reason = _get(choice, "finish_reason")
            if reason is not None:
                self._finish[index] = reason
            delta = _get(choice, "delta")
            if delta is None:  # legacy completion chunk
                if self._capture:
                    text = _get(choice, "text")
                    if text:
                        self._text.setdefault(index, []).append(text)
                continue
            tool_calls = _get(delta, "tool_calls")
            if tool_calls:
                self.add_tool_deltas(index, tool_calls)
            if self._capture:
                text = _get(delta, "content")
                if text:
                    self._text.setdefault(index, []).append(text)

    def add_tool_deltas(self, index: int, tool_calls: Any) -> None:
        """Tool-call deltas of choice ``index``, assembled by their index (names and ids;
        the arguments only when content is captured); also the step a stream wrapper's
        loop hands them to (see :meth:`starts_chat_stream`)."""
        tools = self._tools
        if tools is _EMPTY:
            tools = self._tools = {}
        for tc in tool_calls:
            key = (index, _get(tc, "index") or 0)
            parts = tools.get(key)
            if parts is None:
                parts = tools[key] = _ToolCallParts()  # type: ignore[index]
            tc_id = _get(tc, "id")
            if tc_id:
                parts.id = tc_id
            fn = _get(tc, "function")
            if fn is not None:
                name = _get(fn, "name")
                if name:
                    parts.name = name
                if self._capture:
                    args = _get(fn, "arguments")
                    if args:
                        parts.arguments.append(args)

    def _add_ollama_tools(self, tool_calls: Any) -> None:
        if type(self._ollama_tools) is tuple:
            self._ollama_tools = []
        self._ollama_tools.extend(tool_calls)  # type: ignore[union-attr]

    def _add_ollama(self, chunk: Any) -> None:
        if self._ollama_model is None:
            self._ollama_model = _get(chunk, "model") or None
        message = _get(chunk, "message")
        if message is not None:
            tool_calls = _get(message, "tool_calls")
            if tool_calls:
                self._add_ollama_tools(tool_calls)
            if self._capture:
                text = _get(message, "content")
                if text:
                    self._text.setdefault(0, []).append(text)
        elif self._capture:
            text = _get(chunk, "response")
            if isinstance(text, str) and text:
                self._text.setdefault(0, []).append(text)
        if _get(chunk, "done"):
            self._ollama_final = chunk

    def finish(self, call: LLMCall) -> None:
        """Record everything accumulated on ``call``; never raises. Call once, at the end."""
        try:
            if self._openai_cls is not None and not self._tools and not self._capture and len(self._finish) < 2:
                # The usual OpenAI stream (chat chunk objects, one choice, no tool calls,
                # content not captured): its totals at once. A stream has one kind of chunk.
                _record_completion_totals(call, self._model, self._id, list(self._finish.values()), self._usage)
                return
            final = self._ollama_final
            if final is not None and type(final) is self._ollama_cls and not self._ollama_tools:
                # The usual Ollama stream (chat chunk objects ending in a done chunk, no tool calls).
                _record_ollama_object(call, final, messages=False)
                return
            # Each part is recorded only when its chunks were seen (a stream has one kind).
            if (self._model is not None or self._id is not None or self._finish or self._usage is not None
                    or self._tools):
                self._finish_openai(call)
            if self._response is not None:
                record_response(call, self._response)
            if self._error is not None and not call.failed:
                call.fail(self._error)
            if self._ollama_final is not None or self._ollama_model is not None or self._ollama_tools:
                self._finish_ollama(call)
        except Exception as exc:  # noqa: BLE001
            report("recording a streamed response", exc)

    def _finish_openai(self, call: LLMCall) -> None:
        finish = self._finish
        # One choice (the usual case) needs no ordering.
        reasons = list(finish.values()) if len(finish) < 2 else [finish[i] for i in sorted(finish)]
        if self._openai_cls is not None:  # chunks were chat chunk objects
            _record_completion_totals(call, self._model, self._id, reasons, self._usage)
        else:
            call.set_response(model=self._model, id=self._id, finish_reasons=reasons or None)
            if self._usage is not None:
                _record_openai_usage(call, self._usage)
        if self._tools:
            for key in sorted(self._tools):
                parts = self._tools[key]
                call.add_tool_call(parts.name, parts.id)
        if self._capture:
            for index in sorted(set(self._text) | {k[0] for k in self._tools}):
                tool_calls = [
                    {"id": p.id, "name": p.name, "arguments": "".join(p.arguments)}
                    for k, p in sorted(self._tools.items()) if k[0] == index
                ]
                text = self._text.get(index)
                message = {"role": "assistant", "content": "".join(text) if text else None, "tool_calls": tool_calls}
                call.add_output_message(message, self._finish.get(index))

    def _finish_ollama(self, call: LLMCall) -> None:
        final = self._ollama_final
        if final is not None:
            if type(final) is self._ollama_cls or type(final) in _OLLAMA_RESPONSE_CLASSES:
                _record_ollama_object(call, final, messages=False)
            else:
                _record_ollama(call, final, messages=False)
        else:
            call.set_response(model=self._ollama_model)
        for tc in self._ollama_tools:
            fn = _get(tc, "function")
            call.add_tool_call(_get(fn, "name") if fn is not None else _get(tc, "name"), _get(tc, "id"))
        text = self._text.get(0)
        if self._capture and (text or self._ollama_tools):
            message = {"role": "assistant", "content": "".join(text) if text else None, "tool_calls": self._ollama_tools}
            call.add_output_message(message, _get(final, "done_reason") if final is not None else None)
