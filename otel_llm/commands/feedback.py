"""``otel-llm feedback stats``: what the recorded feedback says, per agent.

Feedback is recorded by the application with ``otel_llm.record_feedback(...)``; this
shows, per agent over the window, how much there is, the outcome mix (success,
fallback, timeout, error, user_rejected), and the mean quality and satisfaction.
"""

from __future__ import annotations

import argparse
from typing import Any

from otel_llm.commands._views import add_view_parser, fmt, name, run_view, show


def register(subparsers: Any) -> None:
    """Add ``feedback stats``."""
    feedback = subparsers.add_parser("feedback", help="recorded feedback: statistics per agent",
                                     description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    actions = feedback.add_subparsers(dest="feedback_command", metavar="ACTION")
    feedback.set_defaults(handler=lambda args: feedback.print_help() or 2)
    add_view_parser(actions, "stats", "feedback per agent: volume, outcomes, mean scores", __doc__, "30d", _stats)


def _stats(args: argparse.Namespace) -> int:
    from otel_llm.reports.confidence import feedback_stats_by_agent

    rows, window, now = run_view(args, lambda conn, schema, window, now: feedback_stats_by_agent(
        conn, window, now=now, schema=schema))
    show(args, "agents", rows, window, now, title="feedback per agent",
         header=["AGENT", "FEEDBACK", "SUCCESS", "FALLBACK", "TIMEOUT", "ERROR", "REJECTED", "SUCCESS%",
                 "QUALITY", "SATISF.", "COMMENTS", "MODELS"],
         cells=lambda s: [name(s.agent), str(s.feedback_count), *(str(v) for v in s.outcomes.values()),
                          f"{100 * s.success_rate:.1f}", fmt(s.mean_quality, ".1f"), fmt(s.mean_satisfaction, ".1f"),
                          str(s.comment_count), str(s.model_count)],
         empty="no feedback in this window")
    return 0
