"""Cost reports against the real PostgreSQL: totals equal SQL sums over the raw rows."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.reports.costs import cost_report, daily_trend, parse_dimensions, resolve_interval, rollup_bounds
from otel_llm.reports.costs_basis import basis_mix, cost_accuracy
from otel_llm.reports.costs_savings import UnknownBaseline, savings
from processor.pricing import PriceBook, library_counts
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

#: The end of the generated history: 10 days of traffic before it, starting mid-hour.
END = datetime(2026, 3, 11, 0, 0, tzinfo=timezone.utc)
START = END - timedelta(days=10)
AGENTS = ("support", "writer", None)
MODELS = (("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku"), ("ollama", "llama3"),
          ("gcp.gemini", "gemini-2.5-flash"))


@pytest.fixture(scope="module")
def history(pg_dsn: str, pg_schema: str) -> list:
    """600 calls spread over 10 days: three agents (one unknown), three models, sessions,
    users and a team tag; some costs unknown. Written through the writer (rollups too)."""
    from exporters.postgres.schema import connect

    rng = random.Random(7)
    rows = []
    for i in range(600):
        provider, model = MODELS[i % 4]
        unknown = i % 17 == 0
        reported = not unknown and i % 13 == 0 and provider != "ollama"
        basis = "unknown" if unknown else ("local" if provider == "ollama" else "reported" if reported else "computed")
        rows.append(observation(
            i, started_at=START + timedelta(seconds=rng.randrange(int((END - START).total_seconds()))),
            agent=AGENTS[i % 3 if i % 5 else (i // 5) % 3], provider=provider, request_model=model,
            route=f"{provider}|{model}", session_id=f"s{i % 11}", user_id=f"u{i % 4}",
            tags={"team": "a" if i % 2 else "b"},
            input_tokens=250_000 if i % 50 == 0 else rng.randrange(50, 5000), cached_input_tokens=rng.randrange(0, 40),
            cache_creation_input_tokens=rng.randrange(0, 10), output_tokens=rng.randrange(5, 800),
            reasoning_tokens=rng.randrange(0, 5) if i % 7 else rng.randrange(900, 1200),
            cost_usd=None if unknown else Decimal(0) if basis == "local" else Decimal(rng.randrange(1, 10**6)) / 10**8,
            computed_cost_usd=Decimal(rng.randrange(1, 10**6)) / Decimal(10**8) if reported else None,
            cost_basis=basis))
    with connect(pg_dsn, pg_schema) as conn:
        BatchWriter(conn, pg_schema).write(rows)
    return rows


def _sql_totals(conn: psycopg.Connection, group: str, start: datetime, end: datetime,
                period: str | None = None) -> dict[tuple, tuple]:
    trunc = f"date_trunc('{period}', started_at, 'UTC')" if period else "NULL::timestamptz"
    with conn.transaction():
        rows = conn.execute(
            f"SELECT {trunc}, {group}, count(*), count(cost_usd), coalesce(sum(cost_usd), 0),"
            " coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0)"
            " FROM route_observations WHERE started_at >= %s AND started_at < %s GROUP BY 1, 2",
            (start, end)).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _report_totals(report, dim: str) -> dict[tuple, tuple]:
    return {(r.period, r.group[dim]): (r.calls, r.priced_calls, r.cost_usd, r.input_tokens, r.output_tokens)
            for r in report.rows}


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("period", ["all", "day", "month"])
def test_cost_by_agent_from_rollups_equals_sums_over_raw_rows(pg_conn, pg_schema, period) -> None:
    report = cost_report(pg_conn, by="agent", period=period, since="2026-03-01", until="2026-03-11",
                         schema=pg_schema)
    assert report.source == "rollup"
    expected = _sql_totals(pg_conn, "agent", START, END, None if period == "all" else period)
    assert _report_totals(report, "agent") == expected
    assert report.total.calls == 600


@pytest.mark.usefixtures("history")
def test_cost_per_day_with_edges_inside_hours_matches_raw(pg_conn, pg_schema) -> None:
    # a window starting and ending mid-hour: hourly rollup for the middle, minutes at the edges
    since, until = START + timedelta(hours=5, minutes=17), END - timedelta(hours=3, minutes=41)
    rolled = cost_report(pg_conn, by=["agent", "model"], period="day", since=since, until=until,
                         schema=pg_schema)
    raw = cost_report(pg_conn, by=["agent", "model"], period="day", since=since, until=until,
                      schema=pg_schema, source="raw")
    assert rolled.source == "rollup" and raw.source == "raw"
    strip = lambda rep: {(r.period, tuple(r.group.values())): (r.calls, r.priced_calls, r.cost_usd,
                                                               r.input_tokens, r.cached_input_tokens,
                                                               r.output_tokens, r.reasoning_tokens)
                         for r in rep.rows}
    assert strip(rolled) == strip(raw)
    assert rolled.total.cost_usd == raw.total.cost_usd


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("dim,column", [("session", "session_id"), ("user", "user_id"),
                                        ("tag:team", "tags->>'team'"), ("provider", "provider")])
def test_cost_by_raw_only_dimensions_equals_sql(pg_conn, pg_schema, dim, column) -> None:
    report = cost_report(pg_conn, by=dim, since=START, until=END, schema=pg_schema)
    assert report.source == ("rollup" if dim == "provider" else "raw")
    assert len(report.rows) > 1
    assert _report_totals(report, dim) == _sql_totals(pg_conn, column, START, END)


@pytest.mark.usefixtures("history")
def test_unknown_costs_are_counted_not_summed_as_zero(pg_conn, pg_schema) -> None:
    report = cost_report(pg_conn, by=(), since=START, until=END, schema=pg_schema)
    with pg_conn.transaction():
        unknown = pg_conn.execute("SELECT count(*) FROM route_observations WHERE cost_usd IS NULL").fetchone()[0]
    assert unknown > 0
    assert report.total.unpriced_calls == unknown
    assert report.rows[0].group == {}


def test_interval_and_grouping_inputs() -> None:
    now = datetime(2026, 3, 11, 12, 30, tzinfo=timezone.utc)
    assert resolve_interval(window="30d", now=now) == (now - timedelta(days=30), now)
    assert resolve_interval("2026-03-01", "2026-03-02", now=now) == (
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert resolve_interval("24h", now=now)[0] == now - timedelta(hours=24)
    with pytest.raises(ValueError, match="empty interval"):
        resolve_interval("2026-03-02", "2026-03-01", now=now)
    with pytest.raises(ValueError, match="invalid time"):
        resolve_interval("last tuesday", now=now)
    assert parse_dimensions("agent, model,tag:team") == ("agent", "model", "tag:team")
    with pytest.raises(ValueError, match="unknown grouping"):
        parse_dimensions("colour")
    bounds = rollup_bounds(datetime(2026, 3, 1, 0, 10, 30, tzinfo=timezone.utc),
                           datetime(2026, 3, 1, 0, 50, tzinfo=timezone.utc))
    assert bounds["hour_start"] == bounds["hour_end"] == bounds["end"]
    assert bounds["start"] == datetime(2026, 3, 1, 0, 10, tzinfo=timezone.utc)


def test_basis_mix_counts_and_shares(history, pg_conn, pg_schema) -> None:
    mix = basis_mix(pg_conn, since=START, until=END, schema=pg_schema)
    for basis in ("computed", "reported", "local", "unknown"):
        rows = [o for o in history if o.cost_basis == basis]
        got = mix.get(basis)
        assert (got.calls, got.priced_calls) == (len(rows), sum(o.cost_usd is not None for o in rows)), basis
        assert got.cost_usd == sum((o.cost_usd or 0 for o in rows), Decimal(0))
    assert mix.get("unknown").cost_usd == 0 and mix.get("local").cost_usd == 0
    assert sum(b.share for b in mix.bases) == pytest.approx(1.0)
    assert mix.calls == len(history)


def test_cost_accuracy_per_provider(history, pg_conn, pg_schema) -> None:
    found = {a.provider: a for a in cost_accuracy(pg_conn, since=START, until=END, schema=pg_schema)}
    reported = [o for o in history if o.cost_basis == "reported"]
    assert set(found) == {o.provider for o in reported}
    for provider, acc in found.items():
        mine = [o for o in reported if o.provider == provider]
        rep = sum((o.cost_usd for o in mine), Decimal(0))
        comp = sum((o.computed_cost_usd for o in mine), Decimal(0))
        assert (acc.calls, acc.reported_usd, acc.computed_usd) == (len(mine), rep, comp)
        assert acc.drift == pytest.approx(float((rep - comp) / comp))
        rel = [abs(o.cost_usd - o.computed_cost_usd) / o.computed_cost_usd for o in mine]
        assert acc.max_abs_relative == pytest.approx(float(max(rel)))
        assert acc.mean_abs_relative == pytest.approx(float(sum(rel) / len(rel)))


@pytest.mark.parametrize("baseline_provider,baseline_model", [("gcp.gemini", "gemini-2.5-pro"),
                                                              ("openai", "gpt-4o-mini")])
def test_savings_equal_pricing_every_call_on_the_baseline(history, pg_conn, pg_schema, baseline_provider,
                                                          baseline_model) -> None:
    book = PriceBook(env={})
    report = savings(pg_conn, baseline_model, baseline_provider=baseline_provider, by="agent", since=START,
                     until=END, pricer=book, schema=pg_schema)
    expected: dict = {}
    excluded = 0
    for o in history:
        if o.cost_usd is None:
            excluded += 1
            continue
        counts = library_counts(o.provider, o.input_tokens, o.cached_input_tokens, o.cache_creation_input_tokens,
                                o.output_tokens, o.reasoning_tokens)
        card = book.rate_card(baseline_provider, baseline_model, o.started_at)
        acc = expected.setdefault(o.agent, [0, Decimal(0), Decimal(0)])
        acc[0] += 1
        acc[1] += o.cost_usd
        acc[2] += card.cost(*counts)
    got = {r.group["agent"]: [r.calls, r.actual_cost_usd, r.baseline_cost_usd] for r in report.rows}
    assert got == expected
    assert report.excluded_calls == excluded
    assert report.total.saving_usd == sum(v[1] - v[2] for v in expected.values())


def test_savings_refuse_an_unknown_baseline(pg_conn, pg_schema) -> None:
    with pytest.raises(UnknownBaseline):
        savings(pg_conn, "no-such-model", since=START, until=END, pricer=PriceBook(env={}), schema=pg_schema)


def test_daily_trend_lists_every_day(history, pg_conn, pg_schema) -> None:
    days = daily_trend(pg_conn, since=START - timedelta(days=1), until=END, schema=pg_schema)
    assert len(days) == 11 and days[0].calls == 0 and days[0].cost_usd == 0
    assert sum(d.cost_usd for d in days) == sum((o.cost_usd or 0 for o in history), Decimal(0))
    assert days[2].change == pytest.approx(float((days[2].cost_usd - days[1].cost_usd) / days[1].cost_usd))


def test_costs_command(history, pg_dsn, pg_schema, capsys) -> None:
    db = ["--dsn", pg_dsn, "--schema", pg_schema, "--since", "2026-03-01", "--until", "2026-03-11"]
    assert main(["costs", "--by", "agent,model", "--period", "day", "--json", *db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"]["calls"] == len(history)
    assert Decimal(out["total"]["cost_usd"]) == sum((o.cost_usd or 0 for o in history), Decimal(0))
    assert {"period", "agent", "model", "cost_usd"} <= set(out["rows"][0])
    for view in ("report", "tokens", "basis", "accuracy", "trend"):
        assert main(["costs", view, "--by", "user", *db]) == 0, view
        text = capsys.readouterr().out
        assert text.strip() and "Traceback" not in text
    assert main(["costs", "savings", "--baseline", "gpt-4o-mini", "--baseline-provider", "openai", *db]) == 0
    assert "ON gpt-4o-mini USD" in capsys.readouterr().out
    assert main(["costs", "savings", *db]) == 2
    assert "--baseline" in capsys.readouterr().err
    assert main(["costs", "--by", "colour", *db]) == 2


@pytest.mark.usefixtures("history")
def test_days_are_utc_days_whatever_the_connections_time_zone(pg_conn, pg_schema) -> None:
    pg_conn.execute("SET TIME ZONE 'Asia/Tokyo'")
    pg_conn.commit()
    for source in ("rollup", "raw"):
        report = cost_report(pg_conn, by="agent", period="day", since=START, until=END, schema=pg_schema,
                             source=source)
        assert {r.period.astimezone(timezone.utc).time() for r in report.rows} == {datetime.min.time()}
        assert _report_totals(report, "agent") == {
            (k[0].astimezone(timezone.utc) if k[0] else None, k[1]): v
            for k, v in _sql_totals(pg_conn, "agent", START, END, "day").items()}
    assert pg_conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"  # left as it was
