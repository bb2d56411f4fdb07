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
from contextlib import contextmanager
from typing import Iterator

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


@contextmanager
def swallow(where: str) -> Iterator[None]:
    """Run the block; an ``Exception`` inside it is reported and does not propagate."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - that is the point
        report(where, exc)


def reset_for_tests() -> None:
    """Forget rate-limit state (tests assert on log lines)."""
    with _lock:
        _last_logged.clear()
        _suppressed.clear()
