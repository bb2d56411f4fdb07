"""``otel-llm tools``: which routes are offered tools and never call one.

A route offered tools on at least N successful attempts (--min-offers, default 5) in
the window, none of which made a tool call, is marked never_calls_tools: offering it
tools only costs input tokens. Exit status 1 when such a route is found.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``tools``."""
    parser = add_view_parser(subparsers, "tools", "learned tool capability per route", __doc__, "7d", _tools)
    parser.add_argument("--min-offers", type=int, default=5, metavar="N",
                        help="offers without a tool call before a route is marked (default 5)")


def _tools(args: argparse.Namespace) -> int:
    from otel_llm.reports.tools import tool_capability

    rows, window, now = run_view(args, lambda conn, schema, window, now: tool_capability(
        conn, window, now=now, schema=schema, min_offers=args.min_offers))
    show(args, "routes", rows, window, now, title="tool capability per route",
         header=["ROUTE", "OFFERED", "KNOWN", "WITH TOOL CALLS", "TOOL CALLS", "MAX TOOLS", "CAPABILITY"],
         cells=lambda t: [name(t.route), str(t.offered), str(t.offered_known), str(t.with_tool_calls),
                          str(t.tool_calls), str(t.max_tools_offered), t.capability],
         empty="no route was offered tools in this window")
    return 1 if any(t.capability == "never_calls_tools" for t in rows) else 0
