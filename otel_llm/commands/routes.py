"""``otel-llm routes --window 15m``: per-route traffic, success, latency, TTFT, fallbacks.

Prints a table (or ``--json``). Windows up to 6 h are computed from raw rows (exact
percentiles), longer ones from the rollups (percentiles within 2 %).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from otel_llm.commands.db import add_database_arguments, open_database

if TYPE_CHECKING:
    from exporters.postgres.route_stats import RouteStatsReport


def register(subparsers: Any) -> None:
    """Add ``routes``."""
    parser = subparsers.add_parser("routes", help="per-route stats over a time window",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    parser.add_argument("--window", default="15m", metavar="DURATION",
                        help="how far back to look: 15m, 24h, 30d ... (default 15m)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--source", choices=("auto", "raw", "rollup"), default="auto",
                        help="read raw rows or the rollups (default: by window length)")
    add_database_arguments(parser)
    parser.set_defaults(handler=_routes)


def _routes(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from exporters.postgres.migrate import migrate
    from exporters.postgres.route_stats import route_stats

    window = parse_duration(args.window)
    with open_database(args) as (conn, schema):
        migrate(conn, schema)  # a fresh database answers "no traffic" rather than an error
        report = route_stats(conn, window, schema=schema, source=args.source)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_table(report))
    return 0


def format_table(report: "RouteStatsReport") -> str:
    """The report as an aligned text table, one line per route."""
    header = ["ROUTE", "CALLS", "OK%", "P50 ms", "P95 ms", "P99 ms", "TTFT P50", "TTFT P95",
              "FALLBACK%", "TOKENS IN", "TOKENS OUT", "COST USD"]
    lines = [header]
    for r in report.routes:
        lines.append([
            r.route if r.route is not None else "(none)",
            str(r.count),
            f"{100 * r.success_rate:.1f}",
            _ms(r.latency_p50_ms), _ms(r.latency_p95_ms), _ms(r.latency_p99_ms),
            _ms(r.ttft_p50_ms), _ms(r.ttft_p95_ms),
            f"{100 * r.fallback_rate:.1f}",
            str(r.input_tokens), str(r.output_tokens),
            "-" if r.cost_usd is None else f"{r.cost_usd:.4f}",
        ])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    title = (f"routes {report.start:%Y-%m-%d %H:%M:%S} .. {report.end:%Y-%m-%d %H:%M:%S} UTC "
             f"(from {'raw rows' if report.source == 'raw' else 'rollups'})")
    if not report.routes:
        return f"{title}\nno observations in this window"
    body = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                      for i, cell in enumerate(row)) for row in lines]
    return "\n".join([title, *body])


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
