"""``otel-llm confidence``: how far to trust each agent on each model, from recorded feedback.

Confidence = 50 % success rate + 25 % mean quality/10 + 25 % mean satisfaction/10 over
the window (scores nobody gave are left out and the other weights rescaled), times
0.9 per whole day since the latest feedback; the trend compares the last 7 days with
the 7 before (a change of 0.05 or more is improving / degrading).
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_arguments, fmt, name, print_json, run_view, table


def register(subparsers: Any) -> None:
    """Add ``confidence``."""
    parser = subparsers.add_parser("confidence", help="confidence per agent and model, from feedback",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    add_view_arguments(parser, "30d")
    parser.set_defaults(handler=_confidence)


def _confidence(args: argparse.Namespace) -> int:
    from otel_llm.reports.confidence import confidence_by_agent_model

    rows, window, now = run_view(args, lambda conn, schema, window, now: confidence_by_agent_model(
        conn, now=now, schema=schema, window=window))
    if args.json:
        print_json("confidence", rows, window, now)
        return 0
    print(table(
        f"confidence per agent and model, {args.window} to {now:%Y-%m-%d %H:%M} UTC",
        ["AGENT", "MODEL", "FEEDBACK", "SUCCESS%", "QUALITY", "SATISF.", "SCORE", "IDLE DAYS",
         "CONFIDENCE", "TREND"],
        [[name(c.agent), name(c.model), str(c.feedback_count), f"{100 * c.success_rate:.1f}",
          fmt(c.mean_quality, ".1f"), fmt(c.mean_satisfaction, ".1f"), f"{c.score:.3f}",
          str(c.inactive_days), f"{c.confidence:.3f}", c.trend] for c in rows],
        "no feedback in this window"))
    return 0
