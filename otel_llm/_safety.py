"""Telemetry never harms the host: internal failures are logged, rate-limited, and swallowed.

Every place where otel-llm runs inside the user's call path (recording a response,
ending a span, recording metrics) goes through :func:`swallow` or :func:`report`, so a
bad exporter, an odd response object or a token count of the wrong type can never raise
into the application nor change its return value.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("otel_llm")

#: Minimum seconds between two log lines about failures at the same place.
LOG_INTERVAL_S = 60.0

_last_logged: dict[str, float] = {}
_suppressed: dict[str, int] = {}
_lock = threading.Lock()


def report(where: str, exc: BaseException) -> None:
    """Log an internal failure at ``where`` at most once per :data:`LOG_INTERVAL_S`.

    Failures in between are counted and the count is reported with the next line, so
    nothing is hidden, but a hot loop cannot flood the log.
    """
    try:
        now = time.monotonic()
        with _lock:
            last = _last_logged.get(where)
            if last is not None and now - last < LOG_INTERVAL_S:
                _suppressed[where] = _suppressed.get(where, 0) + 1
                return
            _last_logged[where] = now
            skipped = _suppressed.pop(where, 0)
        more = f" ({skipped} similar failures suppressed)" if skipped else ""
        logger.warning(
            "otel-llm: %s failed and was skipped; the application is unaffected%s: %s: %s",
            where, more, type(exc).__name__, exc,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
    except Exception:  # pragma: no cover - logging itself broke; nothing more to do
        pass


#: (setting, value) pairs :func:`report_setting_once` has logged.
_reported_settings: set[tuple[str, str | None]] = set()


def report_setting_once(setting: str, value: str | None, message: str, *args: object) -> None:
    """Log an error about a configuration setting (an environment variable) having a value
    otel-llm cannot use, once per value: every instrumentor, and every ``instrument()``,
    reads the setting again, and one line per bad value says all there is to say."""
    try:
        with _lock:
            if (setting, value) in _reported_settings:
                return
            _reported_settings.add((setting, value))
        logger.error(message, *args)
    except Exception:  # pragma: no cover - logging itself broke; nothing more to do
        pass


class swallow:  # noqa: N801 - used like a function: ``with swallow("where"):``
    """Run the block; an ``Exception`` inside it is reported and does not propagate.

    A class rather than a generator-based context manager: it sits on every call's hot
    path, and this form costs a fraction of ``contextlib.contextmanager``'s.
    ``BaseException`` (KeyboardInterrupt, CancelledError) is never swallowed.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        report(self.where, exc)
        return True


def reset_for_tests() -> None:
    """Forget rate-limit and reported-setting state (tests assert on log lines)."""
    with _lock:
        _last_logged.clear()
        _suppressed.clear()
        _reported_settings.clear()
