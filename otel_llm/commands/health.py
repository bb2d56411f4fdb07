"""``otel-llm health``: per provider, success rate, latency and circuit state.

The circuit is open when a provider's latest N attempts (--threshold, default 5) all
failed and the latest failure is within the cool-down (--cooldown, default 60s);
half-open when that cool-down has passed, or when the latest attempt succeeded once
right after such a run; closed otherwise. Exit status 1 when a circuit is open.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, fmt, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``health``."""
    parser = add_view_parser(subparsers, "health", "provider health: success, latency, circuit state", __doc__,
                             "1h", _health)
    parser.add_argument("--threshold", type=int, default=5, metavar="N",
                        help="consecutive failures that open the circuit (default 5)")
    parser.add_argument("--cooldown", default="60s", metavar="DURATION",
                        help="how long the circuit stays open after the latest failure (default 60s)")


def _health(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from otel_llm.reports.health import provider_health

    cooldown = parse_duration(args.cooldown)
    rows, window, now = run_view(args, lambda conn, schema, window, now: provider_health(
        conn, window, now=now, schema=schema, threshold=args.threshold, cooldown=cooldown))
    show(args, "providers", rows, window, now, title="provider health",
         header=["PROVIDER", "CALLS", "OK%", "P50 ms", "P95 ms", "FAILS IN A ROW", "CIRCUIT"],
         cells=lambda h: [name(h.provider), str(h.count), f"{100 * h.success_rate:.1f}",
                          fmt(h.latency_p50_ms, ".1f"), fmt(h.latency_p95_ms, ".1f"),
                          str(h.consecutive_failures), h.circuit],
         empty="no observations in this window")
    return 1 if any(h.circuit == "open" for h in rows) else 0
