"""The rollups: equal to the raw rows they summarise, and percentiles within 2 % of exact."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import psycopg
import pytest

from exporters.postgres import histogram
from exporters.postgres.route_stats import route_stats
from exporters.postgres.writer import BatchWriter
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

KEYS = "route, agent, request_model, provider, operation"

RAW_PER_MINUTE = f"""
SELECT date_trunc(%(level)s, started_at) AS ts,
       coalesce(route, '') AS route, coalesce(agent, '') AS agent,
       coalesce(request_model, '') AS request_model, coalesce(provider, '') AS provider,
       coalesce(operation, '') AS operation,
       count(*), count(*) FILTER (WHERE ok), count(*) FILTER (WHERE fallback),
       coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cached_input_tokens), 0), coalesce(sum(reasoning_tokens), 0),
       coalesce(sum(cost_usd), 0), count(cost_usd)
FROM route_observations GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
"""
ROLLUP = f"""
SELECT ts, {KEYS}, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens,
       reasoning_tokens, cost_usd, n_cost
FROM {{table}} ORDER BY ts, {KEYS}
"""
RAW_BINS = f"""
SELECT date_trunc(%(level)s, started_at), coalesce(route, ''), coalesce(agent, ''),
       coalesce(request_model, ''), coalesce(provider, ''), coalesce(operation, ''),
       hist_bucket({{column}}) AS b, count(*)
FROM route_observations WHERE ok AND {{column}} IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
"""
RAW_PER_ROUTE_HOUR = """
SELECT date_trunc('hour', started_at), coalesce(route, ''),
       count(*), count(*) FILTER (WHERE ok), count(*) FILTER (WHERE fallback),
       coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
       coalesce(sum(cached_input_tokens), 0), coalesce(sum(reasoning_tokens), 0),
       coalesce(sum(cost_usd), 0), count(cost_usd)
FROM route_observations GROUP BY 1, 2 ORDER BY 1, 2
"""
ROUTE_HOUR = """
SELECT ts, route, n, n_ok, n_fallback, input_tokens, output_tokens, cached_input_tokens,
       reasoning_tokens, cost_usd, n_cost
FROM route_stats_hour ORDER BY ts, route
"""
RAW_ROUTE_BINS = """
SELECT date_trunc('hour', started_at), coalesce(route, ''), hist_bucket({column}) AS b, count(*)
FROM route_observations WHERE ok AND {column} IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ROUTE_BINS = """
SELECT ts, route, u.b, sum(u.c)
FROM route_stats_hour, unnest({prefix}_idx, {prefix}_cnt) AS u(b, c)
GROUP BY ts, route, u.b ORDER BY ts, route, u.b
"""
ROLLUP_BINS = f"""
SELECT ts, {KEYS}, u.b, sum(u.c)
FROM {{table}}, unnest({{prefix}}_idx, {{prefix}}_cnt) AS u(b, c)
GROUP BY ts, {KEYS}, u.b ORDER BY ts, {KEYS}, u.b
"""


@pytest.fixture
def writer(pg_conn: psycopg.Connection, pg_schema: str) -> BatchWriter:
    with pg_conn.transaction():
        pg_conn.execute("TRUNCATE route_observations, route_rollup_minute, route_rollup_hour, route_stats_hour")
    return BatchWriter(pg_conn, pg_schema)


def _varied(n: int, seed: int, start: datetime) -> list:
    """Observations over ~3 hours with every rollup dimension varying, NULLs included."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(observation(
            seed * 1_000_000 + i,
            started_at=start + timedelta(seconds=rng.uniform(0, 3 * 3600)),
            duration_ms=rng.lognormvariate(6, 0.8),
            ttft_ms=rng.choice([None, rng.lognormvariate(4.5, 0.6)]),
            route=rng.choice(["a|m1", "b|m2", "c|m3", None]),
            agent=rng.choice(["support", "billing", None]),
            request_model=rng.choice(["m1", "m2", None]),
            provider=rng.choice(["openai", "ollama", None]),
            operation=rng.choice(["chat", "embeddings"]),
            ok=rng.random() > 0.1,
            fallback=rng.choice([True, False, None]),
            input_tokens=rng.choice([None, rng.randint(1, 5000)]),
            output_tokens=rng.choice([None, rng.randint(1, 800)]),
            cached_input_tokens=rng.choice([None, rng.randint(0, 100)]),
            reasoning_tokens=rng.choice([None, rng.randint(0, 50)]),
            cost_usd=rng.choice([None, Decimal(rng.randint(1, 10_000)) / Decimal(1_000_000)]),
        ))
    return out


def _fetch(conn: psycopg.Connection, query: str, **params: object) -> list[tuple]:
    with conn.transaction():
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def test_rollups_equal_the_raw_aggregates(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    start = datetime(2034, 2, 2, 22, 30, tzinfo=timezone.utc)  # spans midnight: two partitions
    data = _varied(3000, seed=1, start=start)
    rng = random.Random(2)
    for i in range(0, len(data), 250):
        writer.write(data[i:i + 250])
    for _ in range(4):  # resent batches (as after a crash) must not count again
        k = rng.randrange(0, len(data) - 300)
        writer.write(data[k:k + 300])
    for level, table in (("minute", "route_rollup_minute"), ("hour", "route_rollup_hour")):
        raw = _fetch(pg_conn, RAW_PER_MINUTE, level=level)
        rollup = _fetch(pg_conn, ROLLUP.format(table=table))
        assert sum(r[6] for r in raw) == 3000
        assert rollup == raw, level
        for column, prefix in (("duration_ms", "lat"), ("ttft_ms", "ttft")):
            raw_bins = _fetch(pg_conn, RAW_BINS.format(column=column), level=level)
            rollup_bins = _fetch(pg_conn, ROLLUP_BINS.format(table=table, prefix=prefix))
            assert rollup_bins == raw_bins, (level, column)
    assert _fetch(pg_conn, ROUTE_HOUR) == _fetch(pg_conn, RAW_PER_ROUTE_HOUR)
    for column, prefix in (("duration_ms", "lat"), ("ttft_ms", "ttft")):
        assert _fetch(pg_conn, ROUTE_BINS.format(prefix=prefix)) == _fetch(pg_conn, RAW_ROUTE_BINS.format(column=column))


def test_many_small_batches_in_one_minute_stay_exact_and_compact(writer: BatchWriter,
                                                                 pg_conn: psycopg.Connection) -> None:
    # Every batch adds entries to the same rollup rows; past a threshold they are compacted.
    minute = datetime(2034, 3, 3, 3, 3, tzinfo=timezone.utc)
    rng = random.Random(3)
    batches = [[observation(b * 100 + i, started_at=minute + timedelta(seconds=rng.uniform(0, 59)),
                            duration_ms=rng.lognormvariate(6, 1.2)) for i in range(15)] for b in range(120)]
    for batch in batches:
        writer.write(batch)
    for table, level in (("route_rollup_minute", "minute"), ("route_rollup_hour", "hour")):
        raw_bins = _fetch(pg_conn, RAW_BINS.format(column="duration_ms"), level=level)
        assert _fetch(pg_conn, ROLLUP_BINS.format(table=table, prefix="lat")) == raw_bins
    assert _fetch(pg_conn, ROUTE_BINS.format(prefix="lat")) == _fetch(pg_conn, RAW_ROUTE_BINS.format(column="duration_ms"))
    for table in ("route_rollup_minute", "route_rollup_hour", "route_stats_hour"):
        longest = _fetch(pg_conn, f"SELECT max(cardinality(lat_idx)) FROM {table}")[0][0]
        assert longest <= 2 * 128


def test_python_buckets_match_the_sql_buckets(pg_conn: psycopg.Connection) -> None:
    rng = random.Random(4)
    values = [0.0, 0.001, 0.00999, 0.01, 0.0104, 1.0, 1.04, 123.456, 6e5, 3.6e6]
    values += [rng.lognormvariate(5, 3) for _ in range(2000)]
    with pg_conn.transaction():
        rows = pg_conn.execute(
            "SELECT v, hist_bucket(v), hist_value(hist_bucket(v)) FROM unnest(%s::float8[]) AS v", (values,)
        ).fetchall()
    for v, b, rep in rows:
        assert histogram.bucket(v) == b
        assert rep == pytest.approx(histogram.bucket_value(b), rel=1e-12)
        if v >= histogram.MIN_MS:
            assert abs(rep - v) / v <= histogram.MAX_RELATIVE_ERROR + 1e-12


def test_rollup_percentiles_within_two_percent_of_exact(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                        pg_schema: str) -> None:
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(5)
    routes = {"fast": (4.0, 0.4), "slow": (7.5, 0.9), "wide": (6.0, 2.0)}
    data = []
    for r, (mu, sigma) in routes.items():
        latencies = rng.lognormal(mu, sigma, 6000)
        ttfts = rng.lognormal(mu - 1, sigma, 6000)
        for i, (lat, ttft) in enumerate(zip(latencies, ttfts)):
            data.append(observation(len(data), route=r, started_at=now - timedelta(seconds=float(rng.uniform(1, 7000))),
                                    duration_ms=float(lat), ttft_ms=float(ttft), ok=bool(i % 17)))
    random.Random(6).shuffle(data)
    for i in range(0, len(data), 500):
        writer.write(data[i:i + 500])
    window = timedelta(hours=7)
    exact = {s.route: s for s in route_stats(pg_conn, window, schema=pg_schema, now=now, source="raw").routes}
    approx = route_stats(pg_conn, window, schema=pg_schema, now=now, source="rollup")
    assert approx.source == "rollup"
    assert {s.route for s in approx.routes} == set(routes)
    for s in approx.routes:
        e = exact[s.route]
        assert (s.count, s.ok_count, s.input_tokens, s.cost_usd) == (e.count, e.ok_count, e.input_tokens, e.cost_usd)
        for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms"):
            got, want = getattr(s, name), getattr(e, name)
            assert abs(got - want) / want <= 0.02, (s.route, name, got, want)
        ok_lat = [o.duration_ms for o in data if o.route == s.route and o.ok]
        assert e.latency_p99_ms == histogram.exact_percentile(ok_lat, 0.99)
