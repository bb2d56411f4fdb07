"""Anomalies on generated series in the real PostgreSQL: injected spikes and drops are
found, with their explanation; stable series produce none.

Seven days and two hours of history before ``NOW``, one call a minute per agent (each
agent on a route of its own), log-normal latency around 800 ms (sigma 0.3) and 2 %
failures, from a seeded generator. In the last hour ``spiky`` is three times slower,
``failing`` succeeds only 70 % of the time, ``quiet`` (one call every 5 minutes, below
the minimum sample) is also slow, and ``steady`` does not change.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from exporters.postgres.schema import connect
from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from exporters.postgres.histogram import MIN_MS, RATIO, bucket
from otel_llm.reports.anomalies import (
    MAD_SCALE,
    binomial_upper_tail,
    find_anomalies,
    interpolated_percentiles,
    robust_z,
    tail_minimum,
    two_proportion_z,
)
from tests.pg import fresh_schema, observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)
INCIDENT = NOW - timedelta(hours=1)
MEDIAN_MS = 800.0


@pytest.fixture(scope="module")
def series(pg_dsn: str, pg_schema: str) -> None:
    rng = np.random.default_rng(20261120)
    rows = []
    i = 0
    start = NOW - timedelta(days=7, hours=2)
    for m in range(int((NOW - start) / timedelta(minutes=1))):
        t = start + timedelta(minutes=m)
        incident = t >= INCIDENT
        for agent in ("steady", "spiky", "failing", "quiet"):
            if agent == "quiet" and m % 5:
                continue
            latency = float(rng.lognormal(math.log(MEDIAN_MS), 0.3))
            ok = bool(rng.random() >= 0.02)
            if incident and agent in ("spiky", "quiet"):
                latency *= 3
            if incident and agent == "failing":
                ok = bool(rng.random() >= 0.30)
            rows.append(observation(i, agent=agent, route=f"r-{agent}", started_at=t, ok=ok, duration_ms=latency))
            i += 1
    with connect(pg_dsn, pg_schema) as conn:
        assert BatchWriter(conn, pg_schema).write(rows).skipped_count == 0
        conn.commit()


def test_robust_z_uses_median_and_scaled_mad() -> None:
    z, median, mad = robust_z(10.0, [1.0, 2.0, 3.0, 4.0, 100.0])
    assert (median, mad) == (3.0, 1.0)
    assert z == pytest.approx(7.0 / MAD_SCALE)
    assert robust_z(3.1, [3.0] * 5, min_spread=0.5)[0] == pytest.approx(0.2)


def test_spread_is_not_shrunk_by_clustered_values() -> None:
    clustered = [0.0] * 52 + [1.0] * 48   # MAD 0, IQR 1
    z, median, mad = robust_z(3.0, clustered)
    assert (median, mad) == (0.0, 0.0) and z == pytest.approx(3.0 * 1.349 / 1.0)


def test_binomial_tail_is_exact() -> None:
    expected = 1 - sum(math.comb(60, k) * 0.02 ** k * 0.98 ** (60 - k) for k in range(5))
    assert binomial_upper_tail(5, 60, 0.02) == pytest.approx(expected, rel=1e-9)
    assert binomial_upper_tail(2, 10, 0.5) == pytest.approx(sum(math.comb(10, k) for k in range(2, 11)) / 1024)
    assert binomial_upper_tail(0, 10, 0.3) == 1.0


def test_percentiles_are_interpolated_within_buckets_and_need_calls_beyond_them() -> None:
    index = bucket(1000.0)
    low = MIN_MS * RATIO ** (index - 1)
    assert interpolated_percentiles([index], [10], [0.5]) == [pytest.approx(low * RATIO ** 0.5)]
    # entries in any order, a bucket repeated: added up first
    assert interpolated_percentiles([index + 1, index, index + 1], [1, 2, 1], [0.5, 1.0]) == [
        pytest.approx(low * RATIO), pytest.approx(low * RATIO ** 2)]
    assert interpolated_percentiles([], [], [0.5]) == [None]
    assert (tail_minimum(0.5), tail_minimum(0.95)) == (10, 100)


def test_two_proportion_z() -> None:
    pooled = (60 + 950) / 1100
    expected = (0.6 - 0.95) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 1000))
    assert two_proportion_z(60, 100, 950, 1000) == pytest.approx(expected)
    assert two_proportion_z(10, 10, 100, 100) == 0.0


def _found(anomalies: list) -> set[tuple[str, str, str, str]]:
    return {(a.kind, a.dimension, a.key, a.metric) for a in anomalies}


@pytest.mark.usefixtures("series")
def test_injected_spikes_and_drops_are_found_per_agent_and_route(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    found = find_anomalies(pg_conn, window=timedelta(hours=1), baseline=timedelta(days=7), now=NOW, schema=pg_schema)
    # nothing for steady, nor for quiet (12 calls); no p95 with 60 calls an hour (needs 100)
    assert _found(found) == {
        ("latency_spike", "agent", "spiky", "latency_p50_ms"), ("latency_spike", "route", "r-spiky", "latency_p50_ms"),
        ("success_rate_drop", "agent", "failing", "success_rate"),
        ("success_rate_drop", "route", "r-failing", "success_rate")}
    spike = next(a for a in found if a.key == "spiky" and a.metric == "latency_p50_ms")
    assert 55 <= spike.n <= 60  # the hour's successful calls (2 % fail)
    assert spike.value / spike.baseline_median == pytest.approx(3.0, rel=0.2)
    assert spike.baseline_median == pytest.approx(MEDIAN_MS, rel=0.05)
    assert spike.baseline_points == 168 and spike.z >= 3.5 and spike.mad >= 0
    assert (spike.start, spike.end) == (INCIDENT, NOW)
    assert "p50 latency" in spike.explanation and "168 baseline slots" in spike.explanation
    drop = next(a for a in found if a.key == "failing")
    assert drop.n == 60 and drop.value < 0.85 and drop.baseline_rate == pytest.approx(0.98, abs=0.01)
    assert drop.z <= -3.5 and drop.baseline_n >= 168 * 60 and drop.p_value < 1e-6
    assert abs(found[0].z) >= abs(found[-1].z)   # strongest first


@pytest.mark.usefixtures("series")
@pytest.mark.parametrize("hours_before", [1, 2, 5, 13, 30])
def test_stable_series_produce_none(pg_conn: psycopg.Connection, pg_schema: str, hours_before: int) -> None:
    found = find_anomalies(pg_conn, window=timedelta(hours=1), baseline=timedelta(days=6),
                           now=NOW - timedelta(hours=hours_before), schema=pg_schema)
    assert found == []


@pytest.mark.usefixtures("series")
def test_a_longer_window_is_judged_against_slots_of_its_length(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    found = find_anomalies(pg_conn, window=timedelta(hours=3), baseline=timedelta(days=6), now=NOW, schema=pg_schema)
    # a third of the window is slow: the tail shows it, now that the window has 180 calls
    keys = {a.key for a in found}
    assert {"spiky", "r-spiky", "failing", "r-failing"} <= keys and not keys & {"steady", "r-steady"}
    spike = next(a for a in found if a.key == "spiky" and a.metric == "latency_p95_ms")
    assert spike.baseline_points == 48                 # 6 days of 3-hour slots
    assert spike.n >= 170                              # the 3-hour window's successful calls
    quiet_before = find_anomalies(pg_conn, window=timedelta(hours=3), baseline=timedelta(days=6),
                                  now=INCIDENT, schema=pg_schema)
    assert quiet_before == []


@pytest.mark.usefixtures("series")
def test_cli(pg_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--dsn", pg_dsn, "--schema", pg_schema]
    assert main(["anomalies", "--window", "1h", "--baseline", "7d", "--now", NOW.isoformat(), "--json", *db]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {(a["kind"], a["key"]) for a in data} >= {("latency_spike", "spiky"), ("success_rate_drop", "failing")}
    assert all({"value", "baseline_median", "mad", "z", "n", "explanation"} <= set(a) for a in data)
    assert main(["anomalies", "--now", INCIDENT.isoformat(), *db]) == 0
    assert "no anomalies" in capsys.readouterr().out
    assert main(["anomalies", "--window", "soon", *db]) == 2


def test_degrading_confidence_is_reported(pg_dsn: str, fresh_schema: str) -> None:
    from exporters.postgres.feedback import FeedbackWriter
    from exporters.postgres.migrate import migrate
    from otel_llm.feedback import build_feedback

    with connect(pg_dsn, fresh_schema) as conn:
        migrate(conn, fresh_schema)
    writer = FeedbackWriter(pg_dsn, schema=fresh_schema)
    for i in range(40):
        recent = i % 2 == 0
        at = NOW - timedelta(days=2 if recent else 9, minutes=i)
        # judged: all good the week before, 8 of 20 successes in the last week; steady: always good
        outcome = "error" if recent and i < 24 else "success"
        writer.submit(build_feedback(outcome, trace_id=5000 + i, span_id=6000 + i, agent="judged",
                                     model="m", time=at, feedback_id=f"j-{i}"))
        writer.submit(build_feedback("success", trace_id=7000 + i, span_id=8000 + i, agent="steady",
                                     model="m", time=at, feedback_id=f"s-{i}"))
    assert writer.shutdown(30)
    with connect(pg_dsn, fresh_schema) as conn:
        found = find_anomalies(conn, now=NOW, schema=fresh_schema)
        few = find_anomalies(conn, now=NOW, schema=fresh_schema, min_feedback=21)
    (drop,) = found
    assert (drop.kind, drop.key, drop.model, drop.metric) == ("confidence_drop", "judged", "m", "confidence")
    assert drop.baseline_median == pytest.approx(1.0) and drop.value == pytest.approx(8 / 20)
    assert (drop.n, drop.baseline_n) == (20, 20) and drop.z < 0
    assert "confidence score 0.40" in drop.explanation
    assert few == []   # fewer than 21 pieces of feedback a week: not judged
