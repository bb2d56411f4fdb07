"""``otel-llm sessions``: per session, totals, owner and hot route.

The owner is the agent of the session's first attempt in the window; the hot route the
route of its latest successful attempt. Most recently active sessions first.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, fmt, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``sessions``."""
    parser = add_view_parser(subparsers, "sessions", "per session: totals, owner, hot route", __doc__, "24h",
                             _sessions)
    parser.add_argument("--session", metavar="ID", help="only this session")
    parser.add_argument("--limit", type=int, default=100, metavar="N", help="at most N sessions (default 100)")


def _sessions(args: argparse.Namespace) -> int:
    from otel_llm.reports.sessions import session_totals

    rows, window, now = run_view(args, lambda conn, schema, window, now: session_totals(
        conn, window, now=now, schema=schema, session=args.session, limit=args.limit))
    show(args, "sessions", rows, window, now, title="sessions",
         header=["SESSION", "CALLS", "OK", "FALLBACKS", "TOKENS IN", "TOKENS OUT", "COST USD", "OWNER",
                 "HOT ROUTE", "LAST"],
         cells=lambda s: [s.session_id, str(s.count), str(s.ok_count), str(s.fallback_count), str(s.input_tokens),
                          str(s.output_tokens), fmt(s.cost_usd, ".4f"), name(s.owner), name(s.hot_route),
                          f"{s.last_at:%Y-%m-%d %H:%M:%S}"],
         empty="no session in this window")
    return 0
