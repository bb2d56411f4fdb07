"""Feedback: recorded from application code, stored once, never raising, surviving an outage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from opentelemetry import trace
from psycopg import sql

import otel_llm
from exporters.postgres.feedback import FeedbackWriter
from exporters.postgres.migrate import migrate
from exporters.postgres.schema import connect
from exporters.postgres.writer import BatchWriter
from otel_llm.feedback import build_feedback, set_feedback_database, shutdown_feedback
from tests.pg import ScratchServer, fresh_schema, observation, pg_dsn, scratch_server  # noqa: F401

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def _rows(dsn: str, schema: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql.SQL(
            "SELECT feedback_id, trace_id, span_id, outcome, quality, satisfaction, agent, model, comment "
            "FROM {}.feedback ORDER BY recorded_at, feedback_id").format(sql.Identifier(schema))).fetchall()


@pytest.fixture
def front(pg_dsn: str, fresh_schema: str):
    """record_feedback writing to a schema of this test's own."""
    shutdown_feedback()
    set_feedback_database(pg_dsn, schema=fresh_schema)
    yield fresh_schema
    shutdown_feedback()
    set_feedback_database(None)


def test_feedback_on_a_call_handle_is_stored_once(front: str, pg_dsn: str) -> None:
    with otel_llm.scope(agent="support"):
        with otel_llm.llm_span(provider="openai", model="gpt-4o-mini") as call:
            pass
    ctx = call.span.get_span_context()
    fid = otel_llm.record_feedback("success", call=call, quality=8, satisfaction=9.5, comment="good")
    assert otel_llm.flush_feedback(30)
    assert otel_llm.flush_feedback(30)  # a second flush stores nothing twice
    otel_llm.record_feedback("success", call=call, quality=8, feedback_id=fid)  # resent: same id
    assert otel_llm.flush_feedback(30)
    assert _rows(pg_dsn, front) == [(fid, format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"),
                                     "success", 8.0, 9.5, "support", "gpt-4o-mini", "good")]
    stats = otel_llm.feedback.feedback_stats()
    assert (stats["accepted"], stats["written"], stats["duplicates"], stats["pending"]) == (2, 1, 1, 0)


def test_feedback_by_ids_learns_agent_and_model_from_the_observation(front: str, pg_dsn: str) -> None:
    with connect(pg_dsn, front) as conn:
        migrate(conn, front)
        BatchWriter(conn, front).write([observation(7, agent="billing", request_model="llama3.2")])
    otel_llm.record_feedback("user_rejected", trace_id=f"{7:032x}", span_id=7 + 1, satisfaction=2)
    assert otel_llm.flush_feedback(30)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(sql.SQL("SELECT agent, model, outcome FROM {}.feedback_resolved")
                           .format(sql.Identifier(front))).fetchall()
    assert row == [("billing", "llama3.2", "user_rejected")]
    assert _rows(pg_dsn, front)[0][6:8] == (None, None)  # stored as given; resolved on read


def test_feedback_on_the_current_span(front: str, pg_dsn: str) -> None:
    with otel_llm.llm_span(provider="ollama", model="llama3.2", agent="writer") as call:
        otel_llm.record_feedback("timeout")
    assert otel_llm.flush_feedback(30)
    ctx = call.span.get_span_context()
    assert [(r[1], r[3], r[6]) for r in _rows(pg_dsn, front)] == [(format(ctx.trace_id, "032x"), "timeout", "writer")]


@pytest.mark.parametrize("kwargs, message", [
    ({"outcome": "great"}, "unknown feedback outcome"),
    ({"outcome": "success", "quality": 11}, "quality must be from 0 to 10"),
    ({"outcome": "success", "satisfaction": -1}, "satisfaction must be from 0 to 10"),
    ({"outcome": "success", "quality": float("nan")}, "quality must be from 0 to 10"),
    ({"outcome": "success", "quality": "8"}, "quality must be a number"),
    ({"outcome": "success", "trace_id": "ab"}, "span_id is required"),
    ({"outcome": "success", "trace_id": "xyz", "span_id": 1}, "trace_id must be hexadecimal"),
    ({"outcome": "success", "call": object()}, "call must be an LLMCall"),
])
def test_programming_errors_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        otel_llm.record_feedback(**kwargs)


def test_without_a_traced_call_feedback_is_dropped_not_raised(front: str) -> None:
    before = otel_llm.feedback.feedback_stats().get("dropped", 0)
    assert otel_llm.record_feedback("success", quality=5) == ""  # no span is current here
    non_recording = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)  # what tracing turned off gives
    assert otel_llm.record_feedback("error", call=non_recording, feedback_id="f-off") == "f-off"
    assert otel_llm.feedback.feedback_stats()["dropped"] == before + 2


def _feedback(i: int, outcome: str = "success"):
    return build_feedback(outcome, trace_id=i + 1, span_id=i + 1, quality=i % 11,
                          time=T0 + timedelta(seconds=i), feedback_id=f"fb-{i}")


def test_database_down_at_record_time_loses_nothing(scratch_server: ScratchServer) -> None:
    schema = "feedback_outage"
    writer = FeedbackWriter(scratch_server.dsn, schema=schema, retry_initial_s=0.05, retry_max_s=0.2)
    try:
        assert writer.flush(30)
        scratch_server.stop()
        for i in range(25):
            assert writer.submit(_feedback(i))  # never raises, never waits for the database
        assert not writer.flush(0.5)
        down = writer.stats()
        assert down["failures"] >= 1 and down["pending"] == 25 and down["dropped"] == 0
        scratch_server.start()
        assert writer.flush(60)
        stats = writer.stats()
        assert (stats["written"], stats["pending"], stats["dropped"]) == (25, 0, 0)
        assert [r[0] for r in _rows(scratch_server.dsn, schema)] == [f"fb-{i}" for i in range(25)]
    finally:
        writer.shutdown(5)


def test_beyond_the_bound_feedback_is_counted_dropped(scratch_server: ScratchServer) -> None:
    schema = "feedback_bound"
    writer = FeedbackWriter(scratch_server.dsn, schema=schema, max_queue=3, batch_size=2,
                            retry_initial_s=0.05, retry_max_s=0.2)
    try:
        assert writer.flush(30)
        scratch_server.stop()
        accepted = sum(writer.submit(_feedback(i)) for i in range(10))
        stats = writer.stats()
        assert accepted == stats["accepted"] and accepted + stats["dropped"] == 10
        assert 3 <= accepted <= 5  # the queue's bound plus at most one batch held by the thread
        scratch_server.start()
        assert writer.flush(60)
        assert writer.stats()["written"] == accepted
        assert len(_rows(scratch_server.dsn, schema)) == accepted
    finally:
        writer.shutdown(5)


def test_shutdown_while_down_counts_what_is_left_as_dropped(scratch_server: ScratchServer) -> None:
    writer = FeedbackWriter(scratch_server.dsn, schema="feedback_shutdown", retry_initial_s=0.05)
    assert writer.flush(30)
    scratch_server.stop()
    for i in range(4):
        writer.submit(_feedback(i))
    assert writer.shutdown(0.5) is False
    stats = writer.stats()
    assert (stats["dropped"], stats["pending"]) == (4, 0)
    assert writer.submit(_feedback(9)) is False


def test_the_front_loads_no_database_code() -> None:
    """An application that imports otel_llm (and reaches record_feedback) pays for no driver."""
    import subprocess
    import sys

    code = ("import sys, otel_llm; otel_llm.record_feedback; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'exporters', 'processor', 'psycopg'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
