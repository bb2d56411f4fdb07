"""Letting go of the interpreter lock from a thread that runs long stretches of pure Python.

Derivation is pure Python: while a background thread derives, it holds the interpreter
lock, and a thread that wants the lock back (an export thread whose database has
answered, or one of the application's threads) waits for the interpreter's switch
interval, 5 ms by default, before the lock is taken from the deriving thread. An export
thread comes back from its database several times a batch, so those waits, not the
work, can make up most of a batch's time.

:func:`let_go` releases the lock for a moment and offers the CPU, so a waiting thread
takes the lock at once; with nobody waiting it costs under a microsecond. Deriving
threads call it every :data:`YIELD_EVERY_SPANS` spans (a few tens of microseconds of work).
"""

from __future__ import annotations

import os
import time
from typing import Callable

#: Spans a deriving thread handles between two calls of :func:`let_go`.
YIELD_EVERY_SPANS = 4

#: Releases the interpreter lock for a moment, handing it to a thread waiting for it:
#: ``sched_yield`` where the platform has it (it also offers the CPU), ``sleep(0)`` elsewhere.
let_go: Callable[[], None] = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))
