"""SLO checks against a generated history with known incidents, in the real PostgreSQL.

Three agents, five calls a minute for the 3 days and 1 hour before ``NOW``:

- ``hard``: every call fails during the last 20 minutes (an outage): only the fast
  page row (1 h & 5 m) fires; an hour earlier nothing does;
- ``slow``: 1.5 % of calls fail all along (a slow leak): only the 3 d & 6 h ticket row
  fires, and the 30-day objective (99 %) is missed;
- ``lat``: 10 % of calls take 2 s during the last 3 hours, the rest 500 ms; against a
  1 s latency objective that fires all four rows of a 7-day SLO and none of a 30-day
  one (the 7-day thresholds are scaled down).

A fourth, ``edge``, has calls two days old whose latencies sit in the histogram bucket
of its threshold: the long-window count is interpolated within the reported bound.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import psycopg
import pytest

from exporters.postgres.histogram import MIN_MS, RATIO, bucket
from exporters.postgres.schema import connect
from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.reports.slo import SLOReport, check_slos, latency_series, parse_slos
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)
HISTORY = timedelta(days=3, hours=1)
PER_MINUTE = 5
THRESHOLD = 1000.0
EDGE_LOW = MIN_MS * RATIO ** (bucket(THRESHOLD) - 1)   # lower edge of the threshold's bucket
EDGE_IN_BUCKET = [EDGE_LOW * RATIO ** ((j + 0.5) / 50) for j in range(50)]


def _calls(agent: str, first: int, outcome: Callable[[int, datetime], tuple[bool, float]]) -> list:
    rows = []
    minutes = int(HISTORY / timedelta(minutes=1))
    for m in range(minutes):
        t = NOW - HISTORY + timedelta(minutes=m)
        for k in range(PER_MINUTE):
            j = m * PER_MINUTE + k
            ok, latency = outcome(j, t)
            rows.append(observation(first + j, agent=agent, route=f"r-{agent}", ok=ok, duration_ms=latency,
                                    started_at=t + timedelta(seconds=12 * k)))
    return rows


def _hard(j: int, t: datetime) -> tuple[bool, float]:
    return t < NOW - timedelta(minutes=20), 500.0


def _slow(j: int, t: datetime) -> tuple[bool, float]:
    return j % 200 >= 3, 500.0


def _lat(j: int, t: datetime) -> tuple[bool, float]:
    return True, 2000.0 if t >= NOW - timedelta(hours=3) and j % 10 == 0 else 500.0


@pytest.fixture(scope="module")
def history(pg_dsn: str, pg_schema: str) -> None:
    rows = _calls("hard", 0, _hard) + _calls("slow", 100_000, _slow) + _calls("lat", 200_000, _lat)
    two_days_ago = NOW - timedelta(days=2)
    edge = [(100.0, 200), (5000.0, 100)]
    i = 300_000
    for latency, count in edge:
        for _ in range(count):
            rows.append(observation(i, agent="edge", duration_ms=latency, started_at=two_days_ago))
            i += 1
    for latency in EDGE_IN_BUCKET:
        rows.append(observation(i, agent="edge", duration_ms=latency, started_at=two_days_ago))
        i += 1
    with connect(pg_dsn, pg_schema) as conn:
        result = BatchWriter(conn, pg_schema).write(rows)
        conn.commit()
    assert result.skipped_count == 0


def _slos(agent: str, window: str, objective: str) -> str:
    return f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: {agent}-{window}}}
spec:
  indicator: {{spec: {{agent: {agent}}}}}
  timeWindow: [{{duration: {window}}}]
  objectives: [{objective}]
"""


SUCCESS = "{target: 0.99}"
LATENCY = f"{{op: lte, value: {THRESHOLD:g}, target: 0.99}}"


def _check(conn: psycopg.Connection, schema: str, text: str, now: datetime = NOW, **kw: object) -> SLOReport:
    return check_slos(conn, parse_slos(text), now=now, schema=schema, **kw)  # type: ignore[arg-type]


def _fired(report: SLOReport) -> dict[str, list[str]]:
    from exporters.postgres.durations import format_duration

    return {r.slo.name: [f"{row.severity} {format_duration(row.long.window)}/{format_duration(row.short.window)}"
                         for o in r.objectives for row in o.burn_rows if row.fires] for r in report.results}


@pytest.mark.usefixtures("history")
def test_an_outage_fires_only_the_fast_page_row(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("hard", "30d", SUCCESS))
    assert _fired(report) == {"hard-30d": ["page 1h/5m"]}
    (result,) = report.results
    objective = result.objectives[0]
    page = objective.burn_rows[0]
    # 100 failures in the last 20 minutes, 5 calls a minute
    assert (page.long.total, page.long.bad, page.short.total, page.short.bad) == (300, 100, 25, 25)
    assert page.long.burn_rate == pytest.approx((100 / 300) / 0.01)
    assert page.short.burn_rate == pytest.approx(100.0)
    # the objective over 30 days still holds: 100 bad of 21 900
    assert objective.events.total == 21_900 and objective.events.good == 21_800
    assert objective.met and objective.budget_remaining == pytest.approx(1 - 100 / 219)
    assert report.breached and result.status == "breach"
    assert (result.total, result.ok) == (21_900, 21_800)
    assert result.latency_p50_ms == pytest.approx(500.0, rel=0.02)


@pytest.mark.usefixtures("history")
def test_nothing_fires_before_the_outage(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("hard", "30d", SUCCESS), now=NOW - timedelta(minutes=30))
    assert _fired(report) == {"hard-30d": []}
    assert not report.breached and report.results[0].status == "ok"


@pytest.mark.usefixtures("history")
def test_rows_need_the_minimum_events_in_both_windows(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("hard", "30d", SUCCESS), min_events=26)  # the 5 m window has 25
    assert _fired(report) == {"hard-30d": []}
    page = report.results[0].objectives[0].burn_rows[0]
    assert page.short.burn_rate == pytest.approx(100.0) and not page.short.enough_events


@pytest.mark.usefixtures("history")
def test_an_objective_needs_the_minimum_events_for_a_verdict(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    # 350 calls, 100 of them slower than the threshold: missed with the default minimum
    report = _check(pg_conn, pg_schema, _slos("edge", "7d", LATENCY))
    assert report.results[0].objectives[0].met is False and report.breached
    few = _check(pg_conn, pg_schema, _slos("edge", "7d", LATENCY), min_events=351)
    objective = few.results[0].objectives[0]
    assert objective.met is None and objective.compliance is not None
    assert objective.status == few.results[0].status == "too few events" and not few.breached


@pytest.mark.usefixtures("history")
def test_a_slow_leak_fires_only_the_slow_ticket_row_and_misses_the_objective(
        pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("slow", "30d", SUCCESS))
    assert _fired(report) == {"slow-30d": ["ticket 3d/6h"]}
    objective = report.results[0].objectives[0]
    assert objective.met is False and objective.compliance == pytest.approx(1 - 3 / 200, abs=1e-4)
    assert objective.burn_rows[3].long.burn_rate == pytest.approx(1.5, rel=0.01)
    assert report.breached


@pytest.mark.usefixtures("history")
def test_seven_day_windows_scale_the_thresholds(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    week = _check(pg_conn, pg_schema, _slos("lat", "7d", LATENCY))
    assert _fired(week) == {"lat-7d": ["page 1h/5m", "page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"]}
    assert [row.threshold for row in week.results[0].objectives[0].burn_rows] == pytest.approx([3.36, 1.4, 0.7, 0.7 / 3])
    month = _check(pg_conn, pg_schema, _slos("lat", "30d", LATENCY))
    assert _fired(month) == {"lat-30d": []} and not month.breached
    # the 1 d row reads the rollups: 90 slow calls of 7 200, exactly (no call near the threshold)
    ticket = month.results[0].objectives[0].burn_rows[2]
    assert (ticket.long.total, ticket.long.bad) == (7200, 90)
    assert month.results[0].objectives[0].events.good_error_bound == 0


@pytest.mark.usefixtures("history")
def test_a_loose_target_is_warned_about(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("hard", "30d", "{target: 0.9}"))
    assert len(report.warnings) == 1 and "page row 1h/5m" in report.warnings[0]
    assert not report.results[0].objectives[0].burn_rows[0].can_fire


@pytest.mark.usefixtures("history")
def test_the_threshold_bucket_of_long_windows_is_interpolated_within_its_bound(
        pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = _check(pg_conn, pg_schema, _slos("edge", "7d", LATENCY))
    events = report.results[0].objectives[0].events
    assert events.source == "rollup" and events.total == 350
    exact_good = 200 + sum(1 for v in EDGE_IN_BUCKET if v <= THRESHOLD)
    share = math.log(THRESHOLD / EDGE_LOW) / math.log(RATIO)
    assert events.good_error_bound == pytest.approx(50 * max(share, 1 - share))
    assert abs(events.good - exact_good) <= events.good_error_bound
    assert abs(events.good - exact_good) <= 1.0   # calls spread evenly in the bucket: nearly exact


@pytest.mark.usefixtures("history")
def test_latency_series_per_agent_per_hour(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    points = latency_series(pg_conn, period=timedelta(hours=4), now=NOW, schema=pg_schema, keys=["lat"])
    assert [p.start for p in points] == [datetime(2026, 11, 20, h, tzinfo=timezone.utc) for h in (8, 9, 10, 11, 12)]
    assert [p.count for p in points] == [300, 300, 300, 300, 150]
    assert points[0].latency_p95_ms == pytest.approx(500.0, rel=0.02)    # before the slow calls
    assert points[-2].latency_p95_ms == pytest.approx(2000.0, rel=0.02)  # 10 % at 2 s
    days = latency_series(pg_conn, period=timedelta(days=2), step="day", now=NOW, schema=pg_schema)
    assert {p.key for p in days} == {"hard", "slow", "lat", "edge"}
    assert all(p.start.hour == 0 for p in days)


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(_slos("hard", "30d", SUCCESS) + "---\n" + _slos("lat", "30d", LATENCY))
    return path


@pytest.mark.usefixtures("history")
def test_cli_exit_code_follows_the_check(pg_dsn: str, pg_schema: str, slo_file: Path,
                                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = ["--dsn", pg_dsn, "--schema", pg_schema]
    assert main(["slo", "check", "--file", str(slo_file), "--now", NOW.isoformat(), *db]) == 1
    out = capsys.readouterr().out
    assert "hard-30d (agent=hard, 30d): BREACH" in out and "FIRES" in out and out.rstrip().endswith("BREACH")
    assert main(["slo", "check", "--file", str(slo_file), "--now", "2026-11-20T12:00:00Z", "--json", *db]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["breached"] is False and [r["status"] for r in data["results"]] == ["ok", "ok"]
    assert data["results"][0]["objectives"][0]["burn_rows"][0]["long"]["window"] == "1h"
    bad = tmp_path / "bad.yaml"
    bad.write_text(_slos("hard", "30d", "{target: 99}"))
    assert main(["slo", "check", "--file", str(bad), *db]) == 2
    assert "spec.objectives[0].target" in capsys.readouterr().err
    # no database: an error, not a finding
    assert main(["slo", "check", "--file", str(slo_file), "--dsn", "postgresql://nobody@127.0.0.1:1/none"]) == 2
