"""Handing the interpreter lock over from a thread that runs long stretches of pure Python.

Derivation is pure Python: while a background thread derives, it holds the interpreter
lock. A thread that wants the lock back — an export thread whose database has answered
— waits for the interpreter's switch interval, 5 ms by default, before the lock is taken
from the deriving thread. An export thread comes back from its database several times a
batch, so those waits, not the work, can make up most of a batch's time.

Releasing the lock for an instant is not enough: the thread waiting for it sleeps on
another CPU and needs tens of microseconds to wake, by which time the deriving thread
has taken the lock again (``sched_yield`` hands over only when the two share a CPU).
:func:`hand_over` releases it for a short sleep, so the waiting thread does take it. It
costs the deriving thread about 70 µs on Linux, so deriving threads call it only while
an export is in flight, once every :data:`HAND_OVER_EVERY_SPANS` spans (a few hundred
microseconds of work): the export thread then waits for the lock a fraction of a
millisecond at most.
"""

from __future__ import annotations

import time

#: Spans a deriving thread handles between two calls of :func:`hand_over` while an
#: export is in flight.
HAND_OVER_EVERY_SPANS = 32


def hand_over() -> None:
    """Release the interpreter lock long enough for a thread waiting for it to take it."""
    time.sleep(0)
