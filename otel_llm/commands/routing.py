"""``otel-llm routing``: routing decisions per (model, complexity) across instances.

For attempts that carry a routing decision: calls, success and fallback rates, the
routing score, latency of successful attempts, cost and the number of instances.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, fmt, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``routing``."""
    add_view_parser(subparsers, "routing", "routing statistics per model and complexity", __doc__, "24h", _routing)


def _routing(args: argparse.Namespace) -> int:
    from otel_llm.reports.routing import routing_stats

    rows, window, now = run_view(args, lambda conn, schema, window, now: routing_stats(
        conn, window, now=now, schema=schema))
    show(args, "routing", rows, window, now, title="routing per model and complexity",
         header=["MODEL", "COMPLEXITY", "CALLS", "OK%", "FALLBACKS", "SCORE", "P50 ms", "P95 ms", "COST USD",
                 "INSTANCES"],
         cells=lambda r: [name(r.model), r.complexity, str(r.count), f"{100 * r.success_rate:.1f}",
                          str(r.fallback_count), fmt(r.mean_score, ".2f"), fmt(r.latency_p50_ms, ".1f"),
                          fmt(r.latency_p95_ms, ".1f"), fmt(r.cost_usd, ".4f"), str(r.instance_count)],
         empty="no routing decision in this window")
    return 0
