"""``otel-llm anomalies --window 1h --baseline 7d``: what changed unusually, per agent and route.

Latency spikes (p50, p95; robust z-score of log-latency against the baseline's
slots), success-rate drops (against the baseline's rate) and degrading confidence
(from recorded feedback), each with the figures that explain it. Exit status 0 when nothing is found, 1 when something is, 2 on an error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from otel_llm.commands.db import add_database_arguments, open_database


def register(subparsers: Any) -> None:
    """Add ``anomalies``."""
    parser = subparsers.add_parser("anomalies", help="latency spikes, success-rate drops and confidence drops per agent and route",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    parser.add_argument("--window", default="1h", metavar="DURATION",
                        help="the window under test, ending now: 15m, 1h, 24h ... (default 1h)")
    parser.add_argument("--baseline", default="7d", metavar="DURATION",
                        help="the trailing baseline before the window (default 7d)")
    parser.add_argument("--now", metavar="ISO", help="as of this time (ISO 8601 time or date; default: now)")
    parser.add_argument("--z", type=float, default=None, metavar="Z",
                        help="|z| at or above which a change is reported (default 3.5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_database_arguments(parser)
    parser.set_defaults(handler=_anomalies)


def _anomalies(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from exporters.postgres.migrate import migrate
    from otel_llm.commands.slo import parse_time
    from otel_llm.reports.anomalies import DEFAULT_Z, find_anomalies

    window, baseline = parse_duration(args.window), parse_duration(args.baseline)
    now = parse_time(args.now)
    z = DEFAULT_Z if args.z is None else args.z
    with open_database(args) as (conn, schema):
        migrate(conn, schema)
        found = find_anomalies(conn, window=window, baseline=baseline, now=now, schema=schema, z_threshold=z)
    if args.json:
        print(json.dumps([a.as_dict() for a in found], indent=2))
    elif not found:
        print(f"no anomalies in the last {args.window} against the {args.baseline} before it")
    else:
        print(f"{len(found)} anomalies in the last {args.window} against the {args.baseline} before it:")
        for a in found:
            print(f"  {a.kind:<18} {a.explanation}")
    return 1 if found else 0
