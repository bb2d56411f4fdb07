"""Durations written the way people type them: ``90s``, ``15m``, ``24h``, ``30d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """``"15m"`` -> 15 minutes. A positive number and one unit of s, m, h, d, w.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 90s, 15m, 24h, 30d, 2w")
    value = float(match.group(1))
    if value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return timedelta(**{_UNITS[match.group(2).lower()]: value})


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of ``delta`` in the units :func:`parse_duration` reads."""
    seconds = delta.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
