"""``otel-llm health``: per provider, success rate, latency and circuit state.

The circuit is open when a provider's latest N attempts (--threshold, default 5) all
failed and the latest failure is within the cool-down (--cooldown, default 60s);
half-open when that cool-down has passed, or when the latest attempt succeeded once
right after such a run; closed otherwise. Exit status 1 when a circuit is open.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_arguments, fmt, name, print_json, run_view, table


def register(subparsers: Any) -> None:
    """Add ``health``."""
    parser = subparsers.add_parser("health", help="provider health: success, latency, circuit state",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    add_view_arguments(parser, "1h")
    parser.add_argument("--threshold", type=int, default=5, metavar="N",
                        help="consecutive failures that open the circuit (default 5)")
    parser.add_argument("--cooldown", default="60s", metavar="DURATION",
                        help="how long the circuit stays open after the latest failure (default 60s)")
    parser.set_defaults(handler=_health)


def _health(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from otel_llm.reports.health import provider_health

    cooldown = parse_duration(args.cooldown)
    rows, window, now = run_view(args, lambda conn, schema, window, now: provider_health(
        conn, window, now=now, schema=schema, threshold=args.threshold, cooldown=cooldown))
    if args.json:
        print_json("providers", rows, window, now)
    else:
        print(table(
            f"provider health, {args.window} to {now:%Y-%m-%d %H:%M:%S} UTC",
            ["PROVIDER", "CALLS", "OK%", "P50 ms", "P95 ms", "FAILS IN A ROW", "CIRCUIT"],
            [[name(h.provider), str(h.count), f"{100 * h.success_rate:.1f}", fmt(h.latency_p50_ms, ".1f"),
              fmt(h.latency_p95_ms, ".1f"), str(h.consecutive_failures), h.circuit] for h in rows],
            "no observations in this window"))
    return 1 if any(h.circuit == "open" for h in rows) else 0
