"""A streamed ``.with_raw_response``: the span ends with the stream ``parse()`` returns.

``client.chat.completions.with_raw_response.create(..., stream=True)`` returns the SDK's
raw response (``LegacyAPIResponse``) as soon as the response headers have arrived; the
body is read later, through the ``Stream`` / ``AsyncStream`` its ``parse()`` builds. Ending
the span when the call returns would record the status and nothing of the answer, so the
application gets the raw response inside a :class:`RawStreamResponse` instead: a
transparent ``wrapt`` proxy (``isinstance`` and every attribute are the raw response's)
whose ``parse()`` returns that stream wrapped like any other stream. Nothing else of the
SDK is patched: the proxy is made where every call already passes, ``request()``.

Who ends the span, exactly once:

* ``parse()`` returned a stream: the stream wrapper, by its usual exit paths (exhausted,
  ``close()``, ``with``, a failure mid-stream, cancellation, collected unclosed; see
  :mod:`otel_llm.streaming`). ``parse()`` again returns the same wrapper, as the SDK
  returns the same stream; so the proxy holds the wrapper as the SDK holds its stream,
  and a stream left unclosed ends when it and its raw response are both gone (the
  HTTP response stays open as long).
* ``parse()`` never returned a stream (the application read the body another way, e.g.
  ``http_response.iter_lines()``, or not at all): the proxy, when it is collected. The
  span ends OK with the status and request attributes, as a stream collected unread does.
* Inside a fallback attempt the span is the attempt's, and the attempt leaves it open
  for the raw response as it does for a stream (``LLMCall.ends_with_stream``): the same
  two rules end it, with the parsed stream recorded onto it as any stream is.

A later ``parse(to=OtherStream)`` giving another stream object is returned as it is: the
call's one span belongs to the first stream.
"""

from __future__ import annotations

from typing import Any, Callable

import wrapt

from otel_llm._safety import report
from otel_llm.call import LLMCall


class RawStreamResponse(wrapt.ObjectProxy):  # type: ignore[misc]
    """The raw response of a streamed call, whose ``parse()`` wraps the stream it returns.

    :param raw: the SDK's raw response (``LegacyAPIResponse``).
    :param call: the call's span, still open.
    :param wrap: ``wrap(parsed)`` -> the stream wrapper that now owns ``call``'s end, or
        None when ``parsed`` is not a stream.
    """

    def __init__(self, raw: Any, call: LLMCall, wrap: Callable[[Any], Any]) -> None:
        super().__init__(raw)
        call._stream_ends = True  # this proxy, or the stream it parses, ends the call
        self._self_call = call
        self._self_wrap = wrap
        #: (the SDK's stream, its wrapper) once ``parse()`` has returned a stream.
        self._self_parsed: tuple[Any, Any] | None = None

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``parse()``; a stream comes back wrapped (the same wrapper every time)."""
        parsed = self.__wrapped__.parse(*args, **kwargs)
        try:
            held = self._self_parsed
            if held is not None:
                return held[1] if parsed is held[0] else parsed
            wrapper = self._self_wrap(parsed)
            if wrapper is None:
                return parsed
            self._self_parsed = (parsed, wrapper)
            return wrapper
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the call
            report("wrapping a raw OpenAI stream", exc)
            return parsed

    def __del__(self) -> None:
        # Collected before any stream was parsed: nothing else will end the span.
        try:
            if self._self_parsed is None:
                self._self_call.end()
        except BaseException:  # noqa: BLE001 - a finaliser must never raise
            pass
