"""Provider health: success rate, latency and a circuit state per provider.

Read from raw route observations over a window (default the last hour). Latency
percentiles (exact, nearest rank) are over successful attempts.

The circuit state is derived from the provider's latest attempts in the window, with
``threshold`` N (default 5) and ``cooldown`` (default 60 s):

* **open**: its latest N or more attempts all failed (a trailing failure run of at
  least N) and the latest failure is less than ``cooldown`` before ``now`` — callers
  should not send it traffic;
* **half_open**: either such a failure run whose latest failure is ``cooldown`` or more
  before ``now`` (the cool-down is over; the next attempt is a probe whose result is
  not yet known), or the latest attempt succeeded once right after a run of at least N
  failures (the probe worked; one more success closes the circuit);
* **closed**: anything else — including a trailing failure run shorter than N.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Sequence

import psycopg

from otel_llm.reports._query import as_float, fetch, window_bounds

#: Consecutive failures that open the circuit.
DEFAULT_THRESHOLD = 5
#: How long an open circuit stays open after its latest failure.
DEFAULT_COOLDOWN = timedelta(seconds=60)
DEFAULT_WINDOW = timedelta(hours=1)

CircuitState = Literal["closed", "half_open", "open"]


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """Health of one provider over the window. ``provider`` is None for attempts without one."""

    provider: str | None
    count: int
    ok_count: int
    success_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    last_at: datetime
    last_ok_at: datetime | None
    last_failure_at: datetime | None
    #: Failures after the provider's latest success in the window.
    consecutive_failures: int
    circuit: CircuitState

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("last_at", "last_ok_at", "last_failure_at"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out


def circuit_state(recent_ok: Sequence[bool], failure_run: int, last_failure_at: datetime | None,
                  now: datetime, *, threshold: int = DEFAULT_THRESHOLD,
                  cooldown: timedelta = DEFAULT_COOLDOWN) -> CircuitState:
    """The rule of the module docstring. ``recent_ok``: latest outcomes, newest first (at
    least ``threshold + 1`` of them when there are that many); ``failure_run``: the
    failures after the latest success."""
    if failure_run >= threshold:
        assert last_failure_at is not None
        return "open" if now - last_failure_at < cooldown else "half_open"
    if (len(recent_ok) > threshold and recent_ok[0]
            and not any(recent_ok[1:threshold + 1])):
        return "half_open"
    return "closed"


def provider_health(conn: psycopg.Connection, window: timedelta = DEFAULT_WINDOW, *,
                    now: datetime | None = None, schema: str | None = None,
                    threshold: int = DEFAULT_THRESHOLD,
                    cooldown: timedelta = DEFAULT_COOLDOWN) -> list[ProviderHealth]:
    """Health of every provider with attempts in the ``window`` ending at ``now``, busiest first."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    start, end = window_bounds(window, now)
    rows = fetch(conn, schema, "health_providers", {"start": start, "end": end, "recent": threshold + 1})
    out = []
    for provider, n, n_ok, latency, last_at, last_ok_at, last_failure_at, failure_run, recent_ok in rows:
        latency = list(latency) if latency else [None, None]
        out.append(ProviderHealth(
            provider=provider, count=int(n), ok_count=int(n_ok), success_rate=int(n_ok) / int(n),
            latency_p50_ms=as_float(latency[0]), latency_p95_ms=as_float(latency[1]),
            last_at=last_at, last_ok_at=last_ok_at, last_failure_at=last_failure_at,
            consecutive_failures=int(failure_run),
            circuit=circuit_state(recent_ok, int(failure_run), last_failure_at, end,
                                  threshold=threshold, cooldown=cooldown),
        ))
    return out
