"""Route stats: the numbers a user reads, from raw rows and from the rollups, API and CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from exporters.postgres.durations import format_duration, parse_duration
from exporters.postgres.route_stats import route_stats
from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def loaded(pg_dsn: str, pg_schema: str) -> None:
    """Route 'a': 10 attempts in the last 10 minutes; 'b': 4; no route: 1; 'old': 2 days ago."""
    from exporters.postgres.schema import connect

    rows = []
    for i in range(10):
        rows.append(observation(i, route="a", started_at=NOW - timedelta(minutes=i + 1),
                                duration_ms=float(10 * (i + 1)),       # 10, 20, ... 100
                                ok=i not in (3, 7),                    # 2 failures: 40 and 80 ms
                                fallback=i in (0, 1, 2),
                                ttft_ms=float(i + 1) if i < 5 else None,
                                input_tokens=100, output_tokens=10, cost_usd=Decimal("0.01")))
    for i in range(4):
        rows.append(observation(100 + i, route="b", started_at=NOW - timedelta(minutes=3),
                                duration_ms=500.0, input_tokens=None, output_tokens=None, cost_usd=None))
    rows.append(observation(200, route=None, started_at=NOW - timedelta(minutes=2)))
    rows += [observation(300 + i, route="old", started_at=NOW - timedelta(days=2)) for i in range(2)]
    with connect(pg_dsn, pg_schema) as conn:
        BatchWriter(conn, pg_schema).write(rows)


@pytest.mark.usefixtures("loaded")
def test_raw_stats_per_route(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = route_stats(pg_conn, timedelta(minutes=15), schema=pg_schema, now=NOW)
    assert report.source == "raw"
    by_route = {s.route: s for s in report.routes}
    assert set(by_route) == {"a", "b", None}
    a = by_route["a"]
    assert (a.count, a.ok_count, a.fallback_count) == (10, 8, 3)
    assert a.success_rate == pytest.approx(0.8) and a.fallback_rate == pytest.approx(0.3)
    # successful latencies: 10 20 30 50 60 70 90 100 -> nearest rank
    assert (a.latency_p50_ms, a.latency_p95_ms, a.latency_p99_ms) == (50.0, 100.0, 100.0)
    assert (a.ttft_p50_ms, a.ttft_p99_ms) == (2.0, 5.0)  # successful ones with a TTFT: 1 2 3 5
    assert (a.input_tokens, a.output_tokens, a.cost_usd) == (1000, 100, Decimal("0.10"))
    b = by_route["b"]
    assert (b.count, b.input_tokens, b.cost_usd, b.ttft_p50_ms) == (4, 0, None, None)
    assert report.routes[0].route == "a"  # busiest first


@pytest.mark.usefixtures("loaded")
def test_window_excludes_older_rows(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    report = route_stats(pg_conn, timedelta(minutes=5), schema=pg_schema, now=NOW)
    a = {s.route: s for s in report.routes}["a"]
    assert a.count == 5  # started 1 to 5 minutes ago: the window [now - 5m, now) includes its start


@pytest.mark.usefixtures("loaded")
def test_long_windows_read_the_rollups_with_the_same_counts(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    raw = route_stats(pg_conn, timedelta(hours=24), schema=pg_schema, now=NOW, source="raw")
    rolled = route_stats(pg_conn, timedelta(hours=24), schema=pg_schema, now=NOW)
    assert rolled.source == "rollup"
    summary = [(s.route, s.count, s.ok_count, s.fallback_count, s.input_tokens, s.output_tokens, s.cost_usd)
               for s in rolled.routes]
    assert summary == [(s.route, s.count, s.ok_count, s.fallback_count, s.input_tokens, s.output_tokens, s.cost_usd)
                       for s in raw.routes]
    week = {s.route for s in route_stats(pg_conn, timedelta(days=7), schema=pg_schema, now=NOW).routes}
    assert "old" in week


@pytest.mark.usefixtures("loaded")
def test_routes_command_prints_json_and_table(pg_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["routes", "--window", "15m", "--json", "--dsn", pg_dsn, "--schema", pg_schema]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "raw"
    a = next(r for r in data["routes"] if r["route"] == "a")
    assert (a["count"], a["latency_p50_ms"], a["cost_usd"]) == (10, 50.0, "0.10")
    assert main(["routes", "--window", "24h", "--dsn", pg_dsn, "--schema", pg_schema]) == 0
    table = capsys.readouterr().out
    assert "from rollups" in table and "(none)" in table
    assert any(line.startswith("a ") and " 10 " in line for line in table.splitlines())


def test_routes_command_on_an_empty_schema_says_so(pg_dsn: str, capsys: pytest.CaptureFixture) -> None:
    from tests.pg import drop_schema, unique_schema

    schema = unique_schema("empty_routes")
    try:
        assert main(["routes", "--window", "1h", "--dsn", pg_dsn, "--schema", schema]) == 0
    finally:
        drop_schema(pg_dsn, schema)
    assert "no observations in this window" in capsys.readouterr().out


def test_routes_command_rejects_a_bad_window(pg_dsn: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["routes", "--window", "soon", "--dsn", pg_dsn]) == 2
    assert "invalid duration 'soon'" in capsys.readouterr().err


def test_db_prune_command_reports_what_it_dropped(pg_dsn: str, capsys: pytest.CaptureFixture) -> None:
    from exporters.postgres.schema import connect
    from tests.pg import drop_schema, unique_schema

    schema = unique_schema("prune_cmd")
    try:
        with connect(pg_dsn, schema) as conn:
            from exporters.postgres.migrate import migrate

            migrate(conn, schema)
            BatchWriter(conn, schema).write([observation(1, started_at=NOW - timedelta(days=45)),
                                             observation(2, started_at=NOW)])
        assert main(["db", "prune", "--older-than", "30d", "--dsn", pg_dsn, "--schema", schema]) == 0
        out = capsys.readouterr().out
        with connect(pg_dsn, schema) as conn:
            remaining = conn.execute("SELECT count(*) FROM route_observations").fetchone()[0]
    finally:
        drop_schema(pg_dsn, schema)
    assert "1 partitions dropped" in out and remaining == 1


@pytest.mark.parametrize("text, expected", [
    ("15m", timedelta(minutes=15)), ("24h", timedelta(hours=24)), ("30d", timedelta(days=30)),
    ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), (" 1.5H ", timedelta(minutes=90)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "m", "-5m", "0h", "5y", "15 minutes"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_format_duration_round_trips_and_is_short() -> None:
    for text in ("15m", "24h", "30d", "2w", "90s", "36h"):
        assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)
    assert (format_duration(timedelta(hours=24)), format_duration(timedelta(hours=36))) == ("1d", "36h")
