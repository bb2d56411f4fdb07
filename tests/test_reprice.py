"""Repricing stored costs after a price change, against the real PostgreSQL: exactly
once, reported costs kept, local calls untouched, rollups equal to the raw rows."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from genai_prices import Usage, calc_price

from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.reports.costs import cost_report
from otel_llm.reports.costs_reprice import missing_prices, reprice
from processor.pricing import PriceBook
from tests.pg import observation, pg_dsn, pg_schema  # noqa: F401 - fixtures

DAY0 = datetime(2026, 4, 1, tzinfo=timezone.utc)
CHANGE = DAY0 + timedelta(days=2)  # the price file's new gpt-4o-mini price starts here


def _library(model: str, when: datetime, inp: int, out: int) -> Decimal:
    return calc_price(Usage(input_tokens=inp, output_tokens=out), model, provider_id="openai",
                      genai_request_timestamp=when).total_price


@pytest.fixture(scope="module")
def stored(pg_dsn: str, pg_schema: str) -> list:
    """Four days, every 37 minutes: gpt-4o-mini priced by the library, an unknown model,
    a reported cost, an Ollama call, and a call without token counts."""
    from exporters.postgres.schema import connect

    book = PriceBook(env={})
    rows = []
    for i in range(4 * 24 * 60 // 37):
        when = DAY0 + timedelta(minutes=37 * i, seconds=i % 60)
        kind = i % 5
        inp, out = 100 + i, 10 + i % 50
        if kind == 0:
            o = observation(i, started_at=when, request_model="gpt-4o-mini", input_tokens=inp, output_tokens=out)
            cost = book(o)
            rows.append(o.replace(cost_usd=cost, cost_basis="computed", computed_cost_usd=cost))
        elif kind == 1:
            rows.append(observation(i, started_at=when, request_model="acme-large", response_model=None,
                                    route="acme|acme-large", provider="acme", input_tokens=inp, output_tokens=out,
                                    cost_usd=None, cost_basis="unknown"))
        elif kind == 2:
            o = observation(i, started_at=when, request_model="gpt-4o-mini", input_tokens=inp, output_tokens=out,
                            cost_usd=Decimal("0.01"), cost_basis="reported")
            rows.append(o.replace(computed_cost_usd=book(o)))
        elif kind == 3:
            rows.append(observation(i, started_at=when, provider="ollama", request_model="llama3", response_model=None,
                                    route="ollama|llama3", agent="local", input_tokens=inp, output_tokens=out,
                                    cost_usd=Decimal(0), cost_basis="local"))
        else:
            rows.append(observation(i, started_at=when, request_model="acme-large", response_model=None,
                                    provider="acme", route="acme|acme-large", input_tokens=None, output_tokens=None,
                                    cost_usd=None, cost_basis="unknown"))
    with connect(pg_dsn, pg_schema) as conn:
        BatchWriter(conn, pg_schema).write(rows)
    return rows


@pytest.fixture(scope="module")
def prices_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prices") / "prices.yaml"
    path.write_text(textwrap.dedent(f"""
        models:
          - model: acme-large
            provider: acme
            prices: {{input_mtok: 3, output_mtok: 9}}
          - model: gpt-4o-mini
            valid_from: {CHANGE:%Y-%m-%d}
            prices: {{input_mtok: 0.2, output_mtok: 0.5}}
        """))
    return path


def _rollups_agree(conn: psycopg.Connection) -> None:
    """Every rollup's cost sums equal the raw rows' sums under the rollup's key."""
    model_keys = ("route", "agent", "request_model", "provider", "operation")
    for table, unit, keys in (("route_rollup_minute", "minute", model_keys),
                              ("route_rollup_hour", "hour", model_keys),
                              ("route_stats_hour", "hour", ("route",))):
        names = ", ".join(keys)
        raw_keys = ", ".join(f"coalesce({c}, '') AS {c}" for c in keys)
        positions = ", ".join(str(i + 1) for i in range(len(keys) + 1))
        with conn.transaction():
            differing = conn.execute(f"""
                WITH raw AS (
                    SELECT date_trunc('{unit}', started_at, 'UTC') AS ts, {raw_keys},
                           coalesce(sum(cost_usd), 0) AS cost_usd, count(cost_usd) AS n_cost
                    FROM route_observations GROUP BY {positions})
                SELECT count(*) FROM raw FULL JOIN {table} AS r USING (ts, {names})
                WHERE raw.cost_usd IS DISTINCT FROM r.cost_usd OR raw.n_cost IS DISTINCT FROM r.n_cost
                """).fetchone()[0]
        assert differing == 0, table


def _costs(conn: psycopg.Connection) -> dict:
    with conn.transaction():
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT span_id, cost_usd, cost_basis, computed_cost_usd FROM route_observations").fetchall()}


def test_missing_prices_lists_unpriced_models(stored, pg_dsn, pg_schema) -> None:
    from exporters.postgres.schema import connect

    with connect(pg_dsn, pg_schema) as conn:
        missing = missing_prices(conn, since=DAY0, until=DAY0 + timedelta(days=5), schema=pg_schema,
                                 pricer=PriceBook(env={}))
    unknown = [o for o in stored if o.cost_basis == "unknown"]
    assert [(m.provider, m.request_model) for m in missing] == [("acme", "acme-large")]
    (m,) = missing
    assert m.calls == len(unknown)
    assert m.calls_with_tokens == sum(o.input_tokens is not None for o in unknown)
    assert (m.first_seen, m.last_seen) == (min(o.started_at for o in unknown), max(o.started_at for o in unknown))
    assert m.priced_now is False


def test_reprice_after_a_price_file_change_updates_each_cost_exactly_once(
        stored, prices_file, pg_dsn, pg_schema) -> None:
    from exporters.postgres.schema import connect

    book = PriceBook(prices_file, env={})
    with connect(pg_dsn, pg_schema) as conn:
        before = _costs(conn)
        report_before = cost_report(conn, by="model", since=DAY0, until=DAY0 + timedelta(days=5), schema=pg_schema)
        first = reprice(conn, since="2026-04-01", until="2026-04-06", pricer=book, schema=pg_schema)
        after = _costs(conn)
        _rollups_agree(conn)
        second = reprice(conn, since="2026-04-01", until="2026-04-06", pricer=book, schema=pg_schema)
        assert _costs(conn) == after
        _rollups_agree(conn)
        report_after = cost_report(conn, by="model", since=DAY0, until=DAY0 + timedelta(days=5), schema=pg_schema)
        missing = missing_prices(conn, since=DAY0, until=DAY0 + timedelta(days=5), schema=pg_schema, pricer=book)

    expected_changes = 0
    for o in stored:
        cost, basis, computed = after[o.span_id]
        if o.provider == "ollama":
            assert (cost, basis, computed) == (Decimal(0), "local", None)
        elif o.input_tokens is None:
            assert (cost, basis, computed) == (None, "unknown", None)
        elif o.request_model == "acme-large":
            want = (Decimal(3) * o.input_tokens + Decimal(9) * o.output_tokens) / 1_000_000
            assert (cost, basis, computed) == (want, "computed", want)
        else:
            want = (_library("gpt-4o-mini", o.started_at, o.input_tokens, o.output_tokens)
                    if o.started_at < CHANGE else
                    (Decimal("0.2") * o.input_tokens + Decimal("0.5") * o.output_tokens) / 1_000_000)
            if o.cost_basis == "reported":
                assert (cost, basis, computed) == (Decimal("0.01"), "reported", want)
            else:
                assert (cost, basis, computed) == (want, "computed", want)
        expected_changes += before[o.span_id] != after[o.span_id]
    assert first.rows_changed == expected_changes > 0
    assert first.newly_priced == sum(o.request_model == "acme-large" and o.input_tokens is not None for o in stored)
    assert first.cost_delta == sum((after[k][0] or 0) - (before[k][0] or 0) for k in before)
    assert (second.rows_changed, second.cost_delta, second.newly_priced) == (0, 0, 0)
    assert second.rows_examined == first.rows_examined
    # reports read from the rollups see the new prices
    assert report_after.total.cost_usd - report_before.total.cost_usd == first.cost_delta
    assert [m.request_model for m in missing] == ["acme-large"] and missing[0].calls_with_tokens == 0


def test_reprice_and_prices_commands(stored, prices_file, pg_dsn, pg_schema, capsys) -> None:
    db = ["--dsn", pg_dsn, "--schema", pg_schema]
    assert main(["reprice", "--since", "2026-04-01", "--until", "2026-04-06", "--prices-file", str(prices_file),
                 "--json", *db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows_changed"] == 0  # the earlier test already applied these prices
    assert main(["prices", "missing", "--since", "2026-04-01", "--until", "2026-04-06", "--json", *db]) == 1
    listed = json.loads(capsys.readouterr().out)
    assert [(m["provider"], m["request_model"]) for m in listed["models"]] == [("acme", "acme-large")]
    assert main(["prices", "missing", "--since", "2026-04-01", "--until", "2026-04-06", *db]) == 1
    assert "acme-large" in capsys.readouterr().out
    assert main(["reprice", "--since", "not-a-date", *db]) == 2
    assert "invalid time" in capsys.readouterr().err
    assert main(["prices", "show", "gpt-4o-mini", "--provider", "openai", "--at", "2026-04-01"]) == 0
    shown = capsys.readouterr().out.splitlines()
    price = calc_price(Usage(input_tokens=1), "gpt-4o-mini", provider_id="openai", genai_request_timestamp=DAY0)
    assert shown[-1].split()[:2] == ["base", str(price.model_price.input_mtok)]
    assert main(["prices", "show", "no-such-model"]) == 1
