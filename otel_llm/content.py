"""Message content: recorded only when the user opts in.

With ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` prompts and completions
are put on the span in the conventions' message JSON shape
(``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``); otherwise they are
never read beyond what counting needs.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

from otel_llm import semconv

_TRUE = {"true", "1", "yes", "on"}

# ``os.environ.get`` of an unset variable costs a raised and caught KeyError, and this
# is asked on every call: the raw value is looked up in the dict behind ``os.environ``
# (which ``os.environ[...] = ...``, ``del`` and pytest's ``monkeypatch.setenv`` all keep
# current) and parsed only when it changed.
_ENV_DATA: Mapping[Any, Any] | None = getattr(os.environ, "_data", None)
try:
    _ENV_KEY: Any = os.environ.encodekey(semconv.CAPTURE_MESSAGE_CONTENT_ENV)  # type: ignore[attr-defined]
except Exception:  # noqa: BLE001 - another os.environ: read it the ordinary way
    _ENV_DATA = None
#: (raw value, parsed) of the last read, replaced as one tuple so threads never see half of it.
_last: tuple[Any, bool] = (None, False)


def _parse(raw: str | None) -> bool:
    return (raw or "").strip().lower() in _TRUE


def capture_enabled() -> bool:
    """Whether message content may be recorded (follows the environment variable at every call)."""
    global _last
    if _ENV_DATA is None:
        return _parse(os.environ.get(semconv.CAPTURE_MESSAGE_CONTENT_ENV))
    raw = _ENV_DATA.get(_ENV_KEY)
    last = _last
    if raw != last[0]:
        last = _last = (raw, _parse(os.environ.get(semconv.CAPTURE_MESSAGE_CONTENT_ENV)))
    return last[1]


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        for item in content:
            kind = _get(item, "type")
            if kind == "text" or (kind is None and _get(item, "text") is not None):
                parts.append({"type": "text", "content": _get(item, "text")})
            else:
                parts.append({"type": str(kind or "unknown")})
        return parts
    return [{"type": "text", "content": str(content)}]


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object: OpenAI sends a JSON string, Ollama an object."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # not JSON (a truncated stream, say): keep what the model said
    return value


def _tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls or ():
        fn = _get(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": _get(call, "id"),
                "name": _get(fn, "name") if fn is not None else _get(call, "name"),
                "arguments": _arguments(_get(fn, "arguments") if fn is not None else _get(call, "arguments")),
            }
        )
    return parts


def _tool_response_parts(message: Any) -> list[dict[str, Any]]:
    """A tool-result message (role ``tool``) as one ``tool_call_response`` part."""
    value = _get(message, "content")
    if not isinstance(value, str) and value is not None:
        texts = [p.get("content") for p in _parts(value) if p.get("type") == "text"]
        value = "".join(t for t in texts if isinstance(t, str))
    return [{"type": "tool_call_response", "id": _get(message, "tool_call_id"), "response": value}]


def to_message(message: Any, finish_reason: str | None = None) -> dict[str, Any]:
    """One OpenAI- or Ollama-shaped message (object or dict) in the conventions' shape."""
    role = _get(message, "role") or "user"
    if role == "tool":
        parts = _tool_response_parts(message)
    else:
        parts = _parts(_get(message, "content")) + _tool_call_parts(_get(message, "tool_calls"))
    out: dict[str, Any] = {"role": role, "parts": parts}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


def messages_json(messages: Any) -> str:
    """Input messages (a list, or one prompt string) as the conventions' JSON string."""
    if isinstance(messages, str):
        shaped = [{"role": "user", "parts": _parts(messages)}]
    else:
        shaped = [to_message(m) for m in messages]
    return json.dumps(shaped, default=str, ensure_ascii=False)


def output_json(messages: list[dict[str, Any]]) -> str:
    """Already-shaped output messages as a JSON string."""
    return json.dumps(messages, default=str, ensure_ascii=False)
