"""``otel-llm confidence``: how far to trust each agent on each model, from recorded feedback.

Confidence = 50 % success rate + 25 % mean quality/10 + 25 % mean satisfaction/10 over
the window (scores nobody gave are left out and the other weights rescaled), times
0.9 per whole day since the latest feedback; the trend compares the last 7 days with
the 7 before (a change of 0.05 or more is improving / degrading).
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, fmt, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``confidence``."""
    add_view_parser(subparsers, "confidence", "confidence per agent and model, from feedback", __doc__, "30d",
                    _confidence)


def _confidence(args: argparse.Namespace) -> int:
    from otel_llm.reports.confidence import confidence_by_agent_model

    rows, window, now = run_view(args, lambda conn, schema, window, now: confidence_by_agent_model(
        conn, now=now, schema=schema, window=window))
    show(args, "confidence", rows, window, now, title="confidence per agent and model",
         header=["AGENT", "MODEL", "FEEDBACK", "SUCCESS%", "QUALITY", "SATISF.", "SCORE", "IDLE DAYS",
                 "CONFIDENCE", "TREND"],
         cells=lambda c: [name(c.agent), name(c.model), str(c.feedback_count), f"{100 * c.success_rate:.1f}",
                          fmt(c.mean_quality, ".1f"), fmt(c.mean_satisfaction, ".1f"), f"{c.score:.3f}",
                          str(c.inactive_days), f"{c.confidence:.3f}", c.trend],
         empty="no feedback in this window")
    return 0
