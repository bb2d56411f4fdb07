"""Confidence per (agent, model), from the feedback the application recorded.

How much to trust an agent on a model, as one number between 0 and 1:

* **score** = 50 % success rate + 25 % mean quality / 10 + 25 % mean satisfaction / 10,
  over the feedback of the window (default the last 30 days). The success rate counts
  only the outcome ``success``: ``fallback``, ``timeout``, ``error`` and
  ``user_rejected`` all count against it. A score that no feedback of the window
  carried (no quality given, say) is left out and the weights of the others are scaled
  up to sum to 1: with outcomes only, the score is the success rate; with outcomes and
  quality only, it is 2/3 success rate + 1/3 quality.
* **decay**: 10 % per inactive day — the score is multiplied by ``0.9 ** d``, where ``d``
  is the number of whole days (24 h) between the latest feedback and ``now``. Feedback
  within the last 24 h means no decay; 2.5 days of silence multiply by 0.81.
* **trend**: the (undecayed) score of the last 7 days against that of the 7 days before:
  ``improving`` when it rose by at least :data:`TREND_THRESHOLD` (0.05), ``degrading``
  when it fell by at least that much, ``stable`` otherwise, and ``insufficient_data``
  when either week has fewer than :data:`TREND_MIN_FEEDBACK` (3) pieces of feedback.

Agent and model come from the feedback itself or, when the recorder did not give them,
from the route observation of the same call (``trace_id``, ``span_id``); feedback for
which neither knows them is grouped under ``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from otel_llm.feedback import OUTCOMES
from otel_llm.reports._query import as_float, fetch, window_bounds

#: Weights of the three parts of the score.
WEIGHT_SUCCESS = 0.50
WEIGHT_QUALITY = 0.25
WEIGHT_SATISFACTION = 0.25
#: Factor applied per whole inactive day.
DAILY_DECAY = 0.9
#: Length of each of the two periods the trend compares.
TREND_PERIOD = timedelta(days=7)
#: Smallest change of score that counts as improving or degrading.
TREND_THRESHOLD = 0.05
#: Feedback needed in each trend period for a trend to be given.
TREND_MIN_FEEDBACK = 3
#: Default window of the score.
DEFAULT_WINDOW = timedelta(days=30)

Trend = Literal["improving", "stable", "degrading", "insufficient_data"]


@dataclass(frozen=True, slots=True)
class FeedbackTotals:
    """Counts and score sums of some feedback: the inputs of :func:`confidence_score`."""

    n: int = 0
    n_success: int = 0
    quality_sum: float = 0.0
    quality_n: int = 0
    satisfaction_sum: float = 0.0
    satisfaction_n: int = 0

    @property
    def success_rate(self) -> float | None:
        return self.n_success / self.n if self.n else None

    @property
    def mean_quality(self) -> float | None:
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def mean_satisfaction(self) -> float | None:
        return self.satisfaction_sum / self.satisfaction_n if self.satisfaction_n else None


@dataclass(frozen=True, slots=True)
class Confidence:
    """Confidence of one (agent, model); see the module docstring for every figure."""

    agent: str | None
    model: str | None
    feedback_count: int
    success_rate: float
    mean_quality: float | None
    mean_satisfaction: float | None
    #: The weighted score before decay.
    score: float
    last_feedback_at: datetime
    inactive_days: int
    decay_factor: float
    #: ``score * decay_factor``: the figure to act on.
    confidence: float
    trend: Trend
    recent_score: float | None
    previous_score: float | None
    recent_count: int
    previous_count: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_feedback_at"] = self.last_feedback_at.isoformat()
        return out


# --- the formula (pure) ----------------------------------------------------------------
def confidence_score(totals: FeedbackTotals) -> float | None:
    """50 % success + 25 % quality/10 + 25 % satisfaction/10, missing parts left out
    and the remaining weights rescaled; None without feedback."""
    if not totals.n:
        return None
    parts = [(WEIGHT_SUCCESS, totals.success_rate)]
    if totals.mean_quality is not None:
        parts.append((WEIGHT_QUALITY, totals.mean_quality / 10.0))
    if totals.mean_satisfaction is not None:
        parts.append((WEIGHT_SATISFACTION, totals.mean_satisfaction / 10.0))
    weight = sum(w for w, _ in parts)
    return sum(w * float(v) for w, v in parts) / weight  # type: ignore[arg-type]


def inactive_days(last_feedback_at: datetime, now: datetime) -> int:
    """Whole days (24 h) from the latest feedback to ``now``; 0 if it is in the future."""
    elapsed = (now - last_feedback_at).total_seconds()
    return max(0, math.floor(elapsed / 86400.0))


def decay_factor(last_feedback_at: datetime, now: datetime) -> float:
    """``0.9 ** inactive_days``: what is left of the score after the silence."""
    return DAILY_DECAY ** inactive_days(last_feedback_at, now)


def trend_of(recent: FeedbackTotals, previous: FeedbackTotals) -> tuple[Trend, float | None, float | None]:
    """The trend label and the two scores it compared."""
    recent_score, previous_score = confidence_score(recent), confidence_score(previous)
    if recent.n < TREND_MIN_FEEDBACK or previous.n < TREND_MIN_FEEDBACK:
        return "insufficient_data", recent_score, previous_score
    change = recent_score - previous_score  # type: ignore[operator]
    # A tolerance keeps a change of exactly the threshold from being lost to rounding.
    if change >= TREND_THRESHOLD - 1e-12:
        return "improving", recent_score, previous_score
    if change <= -TREND_THRESHOLD + 1e-12:
        return "degrading", recent_score, previous_score
    return "stable", recent_score, previous_score


def build_confidence(agent: str | None, model: str | None, window: FeedbackTotals, last_at: datetime,
                     recent: FeedbackTotals, previous: FeedbackTotals, now: datetime) -> Confidence:
    """One :class:`Confidence` from the totals of its periods."""
    score = confidence_score(window)
    assert score is not None, "a confidence needs feedback in its window"
    factor = decay_factor(last_at, now)
    trend, recent_score, previous_score = trend_of(recent, previous)
    return Confidence(
        agent=agent, model=model, feedback_count=window.n, success_rate=window.success_rate or 0.0,
        mean_quality=window.mean_quality, mean_satisfaction=window.mean_satisfaction,
        score=score, last_feedback_at=last_at, inactive_days=inactive_days(last_at, now),
        decay_factor=factor, confidence=score * factor, trend=trend,
        recent_score=recent_score, previous_score=previous_score,
        recent_count=recent.n, previous_count=previous.n,
    )


# --- the query --------------------------------------------------------------------------
def confidence_by_agent_model(conn: psycopg.Connection, *, now: datetime | None = None,
                              schema: str | None = None,
                              window: timedelta = DEFAULT_WINDOW) -> list[Confidence]:
    """Confidence of every (agent, model) with feedback in the ``window`` ending at ``now``.

    Sorted by agent then model. ``conn`` may be any connection; the query runs in its own
    transaction with a local ``search_path``.
    """
    start, end = window_bounds(window, now)
    rows = fetch(conn, schema, "feedback_confidence",
                 {"start": start, "end": end, "recent_start": end - TREND_PERIOD,
                  "previous_start": end - 2 * TREND_PERIOD})
    periods: dict[tuple[str | None, str | None], dict[str, tuple[FeedbackTotals, datetime]]] = {}
    for agent, model, period, n, n_success, q_sum, q_n, s_sum, s_n, last_at in rows:
        totals = FeedbackTotals(int(n), int(n_success), float(q_sum or 0.0), int(q_n),
                                float(s_sum or 0.0), int(s_n))
        periods.setdefault((agent, model), {})[period] = (totals, last_at)
    out = []
    for (agent, model), found in periods.items():
        if "window" not in found:
            continue
        totals, last_at = found["window"]
        out.append(build_confidence(agent, model, totals, last_at,
                                    found.get("recent", (FeedbackTotals(), last_at))[0],
                                    found.get("previous", (FeedbackTotals(), last_at))[0], end))
    out.sort(key=lambda c: (c.agent is None, c.agent or "", c.model is None, c.model or ""))
    return out


# --- feedback statistics per agent ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentFeedbackStats:
    """What the feedback of one agent says over a window."""

    agent: str | None
    feedback_count: int
    outcomes: dict[str, int]
    success_rate: float
    mean_quality: float | None
    quality_count: int
    mean_satisfaction: float | None
    satisfaction_count: int
    comment_count: int
    model_count: int
    first_at: datetime
    last_at: datetime

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_at"], out["last_at"] = self.first_at.isoformat(), self.last_at.isoformat()
        return out


def feedback_stats_by_agent(conn: psycopg.Connection, window: timedelta = DEFAULT_WINDOW, *,
                            now: datetime | None = None, schema: str | None = None) -> list[AgentFeedbackStats]:
    """Feedback volume, outcome mix and mean scores per agent, busiest first."""
    start, end = window_bounds(window, now)
    out = []
    for (agent, n, n_success, n_fallback, n_timeout, n_error, n_rejected, mean_q, q_n, mean_s, s_n,
         n_comments, n_models, first_at, last_at) in fetch(conn, schema, "feedback_stats",
                                                           {"start": start, "end": end}):
        outcomes = dict(zip(OUTCOMES, map(int, (n_success, n_fallback, n_timeout, n_error, n_rejected))))
        out.append(AgentFeedbackStats(
            agent=agent, feedback_count=int(n), outcomes=outcomes, success_rate=int(n_success) / int(n),
            mean_quality=as_float(mean_q), quality_count=int(q_n),
            mean_satisfaction=as_float(mean_s), satisfaction_count=int(s_n),
            comment_count=int(n_comments), model_count=int(n_models), first_at=first_at, last_at=last_at))
    return out
