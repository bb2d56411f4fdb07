"""``otel-llm tools``: which routes are offered tools and never call one.

A route offered tools on at least N successful attempts (--min-offers, default 5) in
the window, none of which made a tool call, is marked never_calls_tools: offering it
tools only costs input tokens. Exit status 1 when such a route is found.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_arguments, name, print_json, run_view, table


def register(subparsers: Any) -> None:
    """Add ``tools``."""
    parser = subparsers.add_parser("tools", help="learned tool capability per route",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    add_view_arguments(parser, "7d")
    parser.add_argument("--min-offers", type=int, default=5, metavar="N",
                        help="offers without a tool call before a route is marked (default 5)")
    parser.set_defaults(handler=_tools)


def _tools(args: argparse.Namespace) -> int:
    from otel_llm.reports.tools import tool_capability

    rows, window, now = run_view(args, lambda conn, schema, window, now: tool_capability(
        conn, window, now=now, schema=schema, min_offers=args.min_offers))
    if args.json:
        print_json("routes", rows, window, now)
    else:
        print(table(
            f"tool capability per route, {args.window} to {now:%Y-%m-%d %H:%M} UTC",
            ["ROUTE", "OFFERED", "KNOWN", "WITH TOOL CALLS", "TOOL CALLS", "MAX TOOLS", "CAPABILITY"],
            [[name(t.route), str(t.offered), str(t.offered_known), str(t.with_tool_calls), str(t.tool_calls),
              str(t.max_tools_offered), t.capability] for t in rows],
            "no route was offered tools in this window"))
    return 1 if any(t.capability == "never_calls_tools" for t in rows) else 0
