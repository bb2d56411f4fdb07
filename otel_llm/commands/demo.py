"""``otel-llm demo``: run a small agent workload against a local simulated provider.

The workload (several agents, routes, a fallback chain, tool calls, some failures) goes
through the SDK like an application's would; its route observations are written to
PostgreSQL (OTEL_LLM_DSN, or the embedded server) and the route stats are printed.
No network is used and no real model is called: the provider is simulated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from typing import Any

from otel_llm.commands.db import add_database_arguments, open_database


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    parser = subparsers.add_parser("demo", help="run a simulated agent workload and print its route stats",
                                   description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--calls", type=int, default=60, help="agent steps to run (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the simulated provider")
    parser.add_argument("--fast", action="store_true", help="no simulated latency")
    parser.add_argument("--json", action="store_true", help="print the route stats as JSON")
    add_database_arguments(parser)
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from exporters.postgres.route_stats import route_stats
    from otel_llm.commands.routes import format_table
    from otel_llm.demo import run_workload
    from otel_llm.setup import configure

    if args.calls < 1:
        raise ValueError("--calls must be at least 1")
    if args.schema:
        os.environ["OTEL_LLM_SCHEMA"] = args.schema
    os.environ.setdefault("OTEL_SERVICE_NAME", "otel-llm-demo")
    print("otel-llm demo: calling a LOCAL SIMULATED provider (no network, no real model)", file=sys.stderr)
    telemetry = configure(observations=True, dsn=args.dsn)
    started = time.monotonic()
    result = run_workload(args.calls, seed=args.seed, time_scale=0.0 if args.fast else 1.0)
    flushed = telemetry.force_flush(60_000)
    elapsed = time.monotonic() - started
    processor_stats = [p.stats() for p in telemetry.span_processors if hasattr(p, "stats")]
    telemetry.shutdown()
    print(
        f"ran {args.calls} agent steps in {elapsed:.1f}s: {result.chains} fallback chains "
        f"({result.chains_failed} exhausted), {result.failures} failed calls"
        + ("" if flushed else "; WARNING: not every observation was flushed in time"),
        file=sys.stderr,
    )
    for stats in processor_stats:
        print(f"observations: {_describe(stats)}", file=sys.stderr)
    with open_database(args) as (conn, schema):
        report = route_stats(conn, timedelta(minutes=15), schema=schema)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_table(report))
    return 0


def _describe(stats: Any) -> str:
    values = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
    return ", ".join(f"{k} {v}" for k, v in values.items())
