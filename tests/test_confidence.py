"""Confidence per (agent, model) and feedback statistics: figures equal hand-computed ones."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from exporters.postgres.feedback import FeedbackWriter
from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.feedback import build_feedback
from otel_llm.reports.confidence import (
    FeedbackTotals,
    confidence_by_agent_model,
    confidence_score,
    decay_factor,
    feedback_stats_by_agent,
)
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def _fb(i: int, agent: str | None, model: str | None, outcome: str, at: datetime,
        quality: float | None = None, satisfaction: float | None = None, trace: int | None = None):
    return build_feedback(outcome, trace_id=trace or 1000 + i, span_id=trace + 1 if trace else 1000 + i,
                          agent=agent, model=model, quality=quality, satisfaction=satisfaction,
                          time=at, feedback_id=f"c-{i}", comment="note" if i % 2 else None)


FEEDBACK = [
    # support / gpt-4o: recent week 3 of 4 successes, quality 8 and 6, satisfaction 10;
    # the week before 1 of 4, quality 4 and 2, no satisfaction. Last one 1 d 1 h ago.
    _fb(1, "support", "gpt-4o", "success", NOW - DAY - timedelta(hours=1), quality=8, satisfaction=10),
    _fb(2, "support", "gpt-4o", "success", NOW - 2 * DAY, quality=6),
    _fb(3, "support", "gpt-4o", "success", NOW - 3 * DAY),
    _fb(4, "support", "gpt-4o", "error", NOW - 4 * DAY),
    _fb(5, "support", "gpt-4o", "success", NOW - 8 * DAY, quality=4),
    _fb(6, "support", "gpt-4o", "error", NOW - 9 * DAY, quality=2),
    _fb(7, "support", "gpt-4o", "error", NOW - 10 * DAY),
    _fb(8, "support", "gpt-4o", "timeout", NOW - 11 * DAY),
    _fb(9, "support", "gpt-4o", "success", NOW - 40 * DAY, quality=0),  # outside the 30 d window
    # support / llama3.2: outcomes only, last one 2.5 days ago
    _fb(10, "support", "llama3.2", "success", NOW - 3 * DAY),
    _fb(11, "support", "llama3.2", "success", NOW - 2.75 * DAY),
    _fb(12, "support", "llama3.2", "fallback", NOW - 2.5 * DAY),
    # ops / small: the week before all success, the last week all errors
    *[_fb(20 + k, "ops", "small", "success", NOW - 8 * DAY - k * timedelta(hours=1)) for k in range(3)],
    *[_fb(30 + k, "ops", "small", "error", NOW - (k + 1) * timedelta(hours=1)) for k in range(3)],
    # billing / mistral learned from the route observation of the call
    _fb(40, None, None, "user_rejected", NOW - timedelta(hours=5), satisfaction=3, trace=77),
]


@pytest.fixture(scope="module")
def loaded(pg_dsn: str, pg_schema: str) -> None:
    from exporters.postgres.schema import connect

    with connect(pg_dsn, pg_schema) as conn:
        BatchWriter(conn, pg_schema).write([observation(77, agent="billing", request_model="mistral",
                                                        started_at=NOW - timedelta(hours=6))])
    writer = FeedbackWriter(pg_dsn, schema=pg_schema)
    for piece in FEEDBACK:
        writer.submit(piece)
    assert writer.shutdown(30)


def test_formula_with_missing_scores() -> None:
    assert confidence_score(FeedbackTotals()) is None
    assert confidence_score(FeedbackTotals(n=4, n_success=3)) == pytest.approx(0.75)
    # success 0.5, quality 0.6: weights 0.5 and 0.25 rescaled to 2/3 and 1/3
    assert confidence_score(FeedbackTotals(4, 2, 12.0, 2)) == pytest.approx(0.5 * 2 / 3 + 0.6 / 3)
    assert decay_factor(NOW - timedelta(hours=23), NOW) == 1.0
    assert decay_factor(NOW - timedelta(days=2.5), NOW) == pytest.approx(0.81)
    assert decay_factor(NOW + DAY, NOW) == 1.0


@pytest.mark.usefixtures("loaded")
def test_confidence_equals_hand_computed_figures(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    found = {(c.agent, c.model): c for c in confidence_by_agent_model(pg_conn, now=NOW, schema=pg_schema)}
    assert set(found) == {("support", "gpt-4o"), ("support", "llama3.2"), ("ops", "small"), ("billing", "mistral")}

    gpt = found["support", "gpt-4o"]
    assert (gpt.feedback_count, gpt.success_rate, gpt.mean_quality, gpt.mean_satisfaction) == (8, 0.5, 5.0, 10.0)
    assert gpt.score == pytest.approx(0.5 * 0.5 + 0.25 * 0.5 + 0.25 * 1.0)          # 0.625
    assert (gpt.inactive_days, gpt.decay_factor) == (1, pytest.approx(0.9))
    assert gpt.confidence == pytest.approx(0.625 * 0.9)
    assert gpt.recent_score == pytest.approx(0.5 * 0.75 + 0.25 * 0.7 + 0.25 * 1.0)   # 0.8
    assert gpt.previous_score == pytest.approx((0.5 * 0.25 + 0.25 * 0.3) / 0.75)     # 0.2667
    assert (gpt.trend, gpt.recent_count, gpt.previous_count) == ("improving", 4, 4)

    llama = found["support", "llama3.2"]
    assert llama.score == pytest.approx(2 / 3) and llama.mean_quality is None
    assert (llama.inactive_days, llama.confidence) == (2, pytest.approx(2 / 3 * 0.81))
    assert llama.trend == "insufficient_data"

    ops = found["ops", "small"]
    assert (ops.score, ops.confidence, ops.trend) == (0.5, 0.5, "degrading")
    assert (ops.recent_score, ops.previous_score) == (0.0, 1.0)

    billing = found["billing", "mistral"]
    assert billing.score == pytest.approx((0.5 * 0 + 0.25 * 0.3) / 0.75)


@pytest.mark.usefixtures("loaded")
def test_a_month_later_confidence_is_gone_from_the_window(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    later = confidence_by_agent_model(pg_conn, now=NOW + 29 * DAY, schema=pg_schema)
    assert [(c.agent, c.model, c.inactive_days) for c in later] == [("billing", "mistral", 29),
                                                                    ("ops", "small", 29)]
    assert later[0].decay_factor == pytest.approx(0.9 ** 29)


@pytest.mark.usefixtures("loaded")
def test_feedback_stats_per_agent(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    stats = {s.agent: s for s in feedback_stats_by_agent(pg_conn, timedelta(days=30), now=NOW, schema=pg_schema)}
    support = stats["support"]
    assert support.feedback_count == 11 and support.model_count == 2
    assert support.outcomes == {"success": 6, "fallback": 1, "timeout": 1, "error": 3, "user_rejected": 0}
    assert (support.mean_quality, support.quality_count, support.mean_satisfaction) == (5.0, 4, 10.0)
    assert support.comment_count == sum(1 for f in FEEDBACK[:12] if f.comment and f.feedback_id != "c-9")
    assert stats["billing"].outcomes["user_rejected"] == 1
    assert list(stats)[0] == "support"  # busiest first


@pytest.mark.usefixtures("loaded")
def test_commands(pg_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["confidence", "--dsn", pg_dsn, "--schema", pg_schema, "--json", "--now", NOW.isoformat()]) == 0
    rows = json.loads(capsys.readouterr().out)["confidence"]
    assert {(r["agent"], r["model"], r["trend"]) for r in rows} >= {("ops", "small", "degrading")}
    assert main(["confidence", "--dsn", pg_dsn, "--schema", pg_schema, "--now", NOW.isoformat()]) == 0
    table = capsys.readouterr().out
    assert "support" in table and "improving" in table and "0.562" in table
    assert main(["feedback", "stats", "--dsn", pg_dsn, "--schema", pg_schema, "--window", "30d",
                 "--now", NOW.isoformat(), "--json"]) == 0
    agents = {a["agent"]: a for a in json.loads(capsys.readouterr().out)["agents"]}
    assert agents["support"]["feedback_count"] == 11
