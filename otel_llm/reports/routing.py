"""Routing statistics: how the calls a router sent to each model at each complexity fared.

Attempts that carry a routing decision (``routing_complexity``, recorded with
``otel_llm.record_routing_decision``) are grouped by (request model, complexity) across
every instance of the service: volume, success and fallback rates, the routing score
(mean, min, max), latency of successful attempts (exact p50/p95), cost, and how many
attempts each instance (``service.instance.id``) contributed — so an instance that
routes differently from the others stands out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from otel_llm.reports._query import as_float, fetch, window_bounds

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RoutingStats:
    """One (model, complexity) over the window."""

    model: str | None
    complexity: str
    count: int
    ok_count: int
    success_rate: float
    fallback_count: int
    mean_score: float | None
    min_score: float | None
    max_score: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_usd: Decimal | None
    instance_count: int
    #: Attempts per instance id ('' for attempts without one).
    by_instance: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        return out


def routing_stats(conn: psycopg.Connection, window: timedelta = DEFAULT_WINDOW, *,
                  now: datetime | None = None, schema: str | None = None) -> list[RoutingStats]:
    """Per (request model, complexity) in the ``window`` ending at ``now``, by model."""
    start, end = window_bounds(window, now)
    out = []
    for (model, complexity, n, n_ok, n_fallback, mean_score, min_score, max_score, latency, cost, n_cost,
         n_instances, by_instance) in fetch(conn, schema, "routing_stats", {"start": start, "end": end}):
        latency = list(latency) if latency else [None, None]
        out.append(RoutingStats(
            model=model, complexity=complexity, count=int(n), ok_count=int(n_ok),
            success_rate=int(n_ok) / int(n), fallback_count=int(n_fallback),
            mean_score=as_float(mean_score), min_score=as_float(min_score), max_score=as_float(max_score),
            latency_p50_ms=as_float(latency[0]), latency_p95_ms=as_float(latency[1]),
            cost_usd=cost if n_cost else None, instance_count=int(n_instances),
            by_instance={k: int(v) for k, v in sorted(by_instance.items())}))
    return out
