"""Latency percentiles per agent (or route) per hour or day: the line drawn against an SLO.

One query over the hourly rollup for the whole period, every key at once; its rows are
added up here per key and hour or day, and percentiles are nearest rank over the
merged histograms of successful calls (within 2 %, read by
:func:`exporters.postgres.histogram.percentiles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence

import psycopg

from exporters.postgres.histogram import percentiles
from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path



@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """One agent's (or route's) calls in one hour or day."""

    key: str | None
    start: datetime
    count: int
    ok_count: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "start": self.start.isoformat(), "count": self.count,
                "ok_count": self.ok_count, "latency_p50_ms": self.latency_p50_ms,
                "latency_p95_ms": self.latency_p95_ms, "latency_p99_ms": self.latency_p99_ms}


def latency_series(conn: psycopg.Connection, *, period: timedelta, step: Literal["hour", "day"] = "hour",
                   by: Literal["agent", "route"] = "agent", keys: Sequence[str] | None = None,
                   now: datetime | None = None, schema: str | None = None) -> list[LatencyPoint]:
    """Points for every hour (or UTC day) of the ``period`` ending at ``now``, per key.

    The period starts at the beginning of the hour holding ``now - period`` and includes
    the current hour. ``keys`` limits the answer to those agents (routes); points are
    ordered by key, then time; hours or days without calls have no point.
    """
    if step not in ("hour", "day"):
        raise ValueError(f"step must be 'hour' or 'day', got {step!r}")
    if by not in ("agent", "route"):
        raise ValueError(f"by must be 'agent' or 'route', got {by!r}")
    if period <= timedelta(0):
        raise ValueError("period must be positive")
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = (end - period).replace(minute=0, second=0, microsecond=0)
    params = {"by": by, "step": step, "start": start, "end": end,
              "keys": list(keys) if keys is not None else None}
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        rows = conn.cursor(binary=True).execute(load_sql("slo_latency_series"), params).fetchall()
    sums: dict[tuple[str | None, datetime], list[Any]] = {}
    for key, ts, n, n_ok, idx, cnt in rows:
        acc = sums.get((key, ts))
        if acc is None:
            acc = sums[(key, ts)] = [0, 0, [], []]
        acc[0] += n
        acc[1] += n_ok
        acc[2].extend(idx)
        acc[3].extend(cnt)
    points = []
    for (key, ts), (n, n_ok, idx, cnt) in sorted(sums.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1])):
        if not n:
            continue
        q = percentiles(idx, cnt, (0.5, 0.95, 0.99))
        points.append(LatencyPoint(key=key, start=ts, count=int(n), ok_count=int(n_ok),
                                   latency_p50_ms=q[0], latency_p95_ms=q[1], latency_p99_ms=q[2]))
    return points
