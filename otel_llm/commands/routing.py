"""``otel-llm routing``: routing decisions per (model, complexity) across instances.

For attempts that carry a routing decision: calls, success and fallback rates, the
routing score, latency of successful attempts, cost and the number of instances.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_arguments, fmt, name, print_json, run_view, table


def register(subparsers: Any) -> None:
    """Add ``routing``."""
    parser = subparsers.add_parser("routing", help="routing statistics per model and complexity",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    add_view_arguments(parser, "24h")
    parser.set_defaults(handler=_routing)


def _routing(args: argparse.Namespace) -> int:
    from otel_llm.reports.routing import routing_stats

    rows, window, now = run_view(args, lambda conn, schema, window, now: routing_stats(
        conn, window, now=now, schema=schema))
    if args.json:
        print_json("routing", rows, window, now)
        return 0
    print(table(
        f"routing per model and complexity, {args.window} to {now:%Y-%m-%d %H:%M} UTC",
        ["MODEL", "COMPLEXITY", "CALLS", "OK%", "FALLBACKS", "SCORE", "P50 ms", "P95 ms", "COST USD",
         "INSTANCES"],
        [[name(r.model), r.complexity, str(r.count), f"{100 * r.success_rate:.1f}", str(r.fallback_count),
          fmt(r.mean_score, ".2f"), fmt(r.latency_p50_ms, ".1f"), fmt(r.latency_p95_ms, ".1f"),
          "-" if r.cost_usd is None else f"{r.cost_usd:.4f}", str(r.instance_count)] for r in rows],
        "no routing decision in this window"))
    return 0
