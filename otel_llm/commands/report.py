"""``otel-llm report --html report.html``: one self-contained page to look at.

Cost per agent per day, latency percentiles over time against the SLO thresholds of
--slo-file with every objective's burn rates, the top anomalies, provider health and
confidence. The page needs no network to open: charts are inline SVG, styles inline.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otel_llm.commands.db import add_database_arguments, open_database


def register(subparsers: Any) -> None:
    """Add ``report``."""
    parser = subparsers.add_parser("report", help="write an HTML report: costs, latency vs SLOs, anomalies",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    parser.add_argument("--html", required=True, metavar="PATH", help="file to write the page to")
    parser.add_argument("--period", default="7d", metavar="DURATION",
                        help="how far back the charts go: 24h, 7d, 30d ... (default 7d)")
    parser.add_argument("--slo-file", metavar="PATH", help="SLO file whose objectives and burn rates to show")
    parser.add_argument("--now", metavar="ISO", help="report as of this time (ISO 8601; default: now)")
    add_database_arguments(parser)
    parser.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from exporters.postgres.migrate import migrate
    from otel_llm.commands._views import parse_now
    from otel_llm.reports.html import write_report
    from otel_llm.reports.slo import SLOFileError

    try:
        period, now = parse_duration(args.period), parse_now(args.now)
        with open_database(args) as (conn, schema):
            migrate(conn, schema)
            data = write_report(args.html, conn, schema=schema, now=now, period=period, slo_file=args.slo_file)
    except (ValueError, OSError, SLOFileError) as exc:
        print(f"otel-llm report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.html}: {data.chart_count} charts, {len(data.anomalies)} anomalies"
          + (f", {len(data.slo.results)} SLOs" if data.slo else ""))
    return 0
