"""Route stats: per route, how much traffic, how healthy, how fast, how often it falls back.

One aggregate query per call. Windows up to :data:`RAW_WINDOW_LIMIT` read raw rows and
give exact nearest-rank percentiles over exactly ``[now - window, now)``. Longer windows
read the per-route hourly rollup and give percentiles from merged histograms, within
2 % of exact; they start at the beginning of the hour containing ``now - window`` (so
they cover up to 59 minutes more than asked; the report's ``start`` says where).
Latency percentiles are over successful attempts; TTFT percentiles over successful
attempts that reported one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

import psycopg

from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path

#: Longest window answered from raw rows; longer ones use the rollups.
RAW_WINDOW_LIMIT = timedelta(hours=6)

Source = Literal["auto", "raw", "rollup"]


@dataclass(frozen=True, slots=True)
class RouteStats:
    """Stats of one route over a window. ``route`` is ``None`` for attempts with no route."""

    route: str | None
    count: int
    ok_count: int
    success_rate: float
    fallback_count: int
    fallback_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None
    input_tokens: int
    output_tokens: int
    #: Sum of known costs; ``None`` when no attempt in the window had a cost.
    cost_usd: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (cost as a string, to keep its precision) for JSON output."""
        out = asdict(self)
        out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        return out


@dataclass(frozen=True, slots=True)
class RouteStatsReport:
    """The answer for one window: which interval was read, from where, and the routes."""

    start: datetime
    end: datetime
    source: Literal["raw", "rollup"]
    routes: tuple[RouteStats, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "source": self.source,
            "routes": [r.as_dict() for r in self.routes],
        }


def rollup_start(start: datetime) -> datetime:
    """Where a rollup answer starts: the beginning of the hour containing ``start``."""
    return start.replace(minute=0, second=0, microsecond=0)


def route_stats(conn: psycopg.Connection, window: timedelta, *, schema: str | None = None,
                now: datetime | None = None, source: Source = "auto") -> RouteStatsReport:
    """Stats per route for the ``window`` ending at ``now`` (default: the current time).

    ``conn`` may be any connection; the query runs in its own transaction with a local
    ``search_path``, leaving the connection's settings untouched.
    """
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    schema = resolve_schema(schema)
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = end - window
    use = source if source != "auto" else ("raw" if window <= RAW_WINDOW_LIMIT else "rollup")
    if use == "raw":
        query, params = load_sql("route_stats_raw"), {"start": start, "end": end}
    else:
        start = rollup_start(start)
        query, params = load_sql("route_stats_rollup"), {"start": start, "end": end}
    with conn.transaction():
        set_local_search_path(conn, schema)
        rows = conn.execute(query, params).fetchall()
    return RouteStatsReport(start=start, end=end, source=use, routes=tuple(_to_stats(r) for r in rows))


def _to_stats(row: tuple) -> RouteStats:
    route, n, n_ok, n_fallback, latency, ttft, input_tokens, output_tokens, cost, n_cost = row
    n, n_ok, n_fallback = int(n), int(n_ok), int(n_fallback)
    latency = list(latency) if latency else [None, None, None]
    ttft = list(ttft) if ttft else [None, None, None]
    return RouteStats(
        route=route,
        count=n,
        ok_count=n_ok,
        success_rate=n_ok / n if n else 0.0,
        fallback_count=n_fallback,
        fallback_rate=n_fallback / n if n else 0.0,
        latency_p50_ms=_f(latency[0]), latency_p95_ms=_f(latency[1]), latency_p99_ms=_f(latency[2]),
        ttft_p50_ms=_f(ttft[0]), ttft_p95_ms=_f(ttft[1]), ttft_p99_ms=_f(ttft[2]),
        input_tokens=int(input_tokens or 0),
        output_tokens=int(output_tokens or 0),
        cost_usd=cost if n_cost else None,
    )


def _f(value: Any) -> float | None:
    return None if value is None else float(value)
