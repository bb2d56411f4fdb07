"""Route stats at scale: 1 M and 10 M observations, 15 min and 24 h windows.

Run by hand (not part of the tests)::

    .venv/bin/python benchmarks/route_stats.py [--dsn DSN] [--rows 1000000 10000000] [--runs 9]

For each size, a fresh schema is filled with observations spread over 24 hours (16
routes x 4 agents, log-normal latencies, half of the routes streaming with a TTFT, 3 %
failures, 5 % fallbacks). Rows are generated inside PostgreSQL and written batch by
batch (512 rows, in time order) with the writer's insert-if-absent statement
(``sql/write_chunk.sql``, which also updates the rollups), so the rollups are in the
state live traffic leaves them in, not freshly compacted.

Then, with "now" at the end of the data and the 24 h window starting mid-hour (so the
rollup query reads 30 edge minutes from the per-minute rollup, the rest hourly):

- route stats for the last 15 min (raw rows) and the last 24 h (rollups): median of
  ``--runs`` runs, after one warm-up;
- route stats for the same 24 h from raw rows (exact percentiles; fewer runs);
- the rollup's largest relative percentile error against exact, over every route and
  p50/p95/p99 of latency and TTFT.

The DSN defaults to ``OTEL_LLM_TEST_DSN``, else ``OTEL_LLM_DSN``, else the embedded
server. Schemas are dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from exporters.postgres.embedded import resolve_dsn  # noqa: E402
from exporters.postgres.migrate import migrate  # noqa: E402
from exporters.postgres.route_stats import RouteStatsReport, route_stats  # noqa: E402
from exporters.postgres.schema import connect, load_sql  # noqa: E402
from exporters.postgres.writer import BatchWriter  # noqa: E402

BATCH = 512
ROUTES = 16
AGENTS = 4

#: Observations for row numbers [lo, hi], started every step_ms from t0. Route r has a
#: log-normal latency (median e^(5.5 + 0.25 * (r % 8)) ms, sigma 0.6); even routes stream.
GENERATE = """
INSERT INTO pg_temp.otel_llm_staging
    (trace_id, span_id, started_at, duration_ms, ttft_ms, service_name, agent, operation,
     provider, request_model, response_model, route, attempt, fallback, stream, ok, error_type,
     input_tokens, output_tokens, cost_usd, cost_basis)
SELECT md5(%(tag)s || 't' || g), substr(md5(%(tag)s || 's' || g), 1, 16),
       %(t0)s::timestamptz + (g * %(step_ms)s::float8) * interval '1 millisecond',
       exp(5.5 + 0.25 * (r %% 8) + 0.6 * n1),
       CASE WHEN r %% 2 = 0 THEN exp(4.0 + 0.25 * (r %% 8) + 0.5 * n2) END,
       'bench', 'agent-' || a, 'chat',
       (ARRAY['openai', 'anthropic', 'ollama'])[r %% 3 + 1], 'model-' || r, 'model-' || r,
       (ARRAY['openai', 'anthropic', 'ollama'])[r %% 3 + 1] || '|model-' || r,
       CASE WHEN fb THEN 1 ELSE 0 END, fb, r %% 2 = 0, ok, CASE WHEN NOT ok THEN 'timeout' END,
       inp, outp, round(inp * 0.0000025 + outp * 0.00001, 8), 'computed'
FROM (
    SELECT g, g %% {routes} AS r, (g / {routes}) %% {agents} AS a,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS n1,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS n2,
           random() > 0.03 AS ok, random() < 0.05 AS fb,
           100 + (random() * 2000)::int AS inp, 20 + (random() * 500)::int AS outp
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
) AS x
""".format(routes=ROUTES, agents=AGENTS)


def fill(conn: psycopg.Connection, schema: str, rows: int, t0: datetime, span: timedelta) -> float:
    """Write ``rows`` generated observations through the write path; returns rows/s."""
    writer = BatchWriter(conn, schema)
    writer.prepare()
    day = t0.date()
    writer.ensure_days({day + timedelta(days=d) for d in range(-1, (span.days or 1) + 2)})
    step_ms = span.total_seconds() * 1000 / rows
    write = load_sql("write_chunk")
    conn.execute("SELECT setseed(0.42)")
    conn.commit()
    started = time.perf_counter()
    for lo in range(0, rows, BATCH):
        hi = min(lo + BATCH, rows) - 1
        with conn.transaction():
            conn.execute(GENERATE, {"tag": schema, "t0": t0, "step_ms": step_ms, "lo": lo, "hi": hi})
            conn.execute(write)
        if lo and lo % (BATCH * 2000) == 0:
            done = lo + BATCH
            rate = done / (time.perf_counter() - started)
            print(f"    {done:>10,} rows  {rate:,.0f} rows/s", flush=True)
    elapsed = time.perf_counter() - started
    with conn.transaction():
        conn.execute("ANALYZE route_observations")
        conn.execute("ANALYZE route_rollup_minute")
        conn.execute("ANALYZE route_rollup_hour")
    return rows / elapsed


def timed(conn: psycopg.Connection, schema: str, window: timedelta, now: datetime, source: str,
          runs: int) -> tuple[list[float], RouteStatsReport]:
    """Times of ``runs`` route-stats calls (after one warm-up) and the last report."""
    report = route_stats(conn, window, schema=schema, now=now, source=source)  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        report = route_stats(conn, window, schema=schema, now=now, source=source)
        times.append((time.perf_counter() - t) * 1000)
    return times, report


def max_error(exact: RouteStatsReport, approx: RouteStatsReport) -> tuple[float, str]:
    """Largest relative percentile error of ``approx`` against ``exact`` and where it is."""
    worst, where = 0.0, ""
    truth = {s.route: s for s in exact.routes}
    for s in approx.routes:
        e = truth[s.route]
        assert (s.count, s.ok_count, s.input_tokens) == (e.count, e.ok_count, e.input_tokens), s.route
        for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                     "ttft_p50_ms", "ttft_p95_ms", "ttft_p99_ms"):
            want, got = getattr(e, name), getattr(s, name)
            if want is None:
                assert got is None
                continue
            err = abs(got - want) / want
            if err > worst:
                worst, where = err, f"{s.route} {name}"
    return worst, where


def table_sizes(conn: psycopg.Connection) -> dict[str, str]:
    with conn.transaction():
        rows = conn.execute(
            "SELECT 'route_observations', pg_size_pretty(sum(pg_total_relation_size(inhrelid)))"
            " FROM pg_inherits WHERE inhparent = 'route_observations'::regclass"
            " UNION ALL SELECT 'route_rollup_minute', pg_size_pretty(pg_total_relation_size('route_rollup_minute'))"
            " UNION ALL SELECT 'route_rollup_hour', pg_size_pretty(pg_total_relation_size('route_rollup_hour'))"
            " UNION ALL SELECT 'rollup rows (minute/hour)', (SELECT count(*) FROM route_rollup_minute)::text"
            " || ' / ' || (SELECT count(*) FROM route_rollup_hour)::text").fetchall()
    return dict(rows)


def run(dsn: str, rows: int, runs: int, keep: bool) -> dict[str, object]:
    schema = f"bench_route_stats_{rows}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    span = timedelta(hours=24)
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    t0 = hour - span - timedelta(minutes=30)  # the 24 h window starts mid-hour
    now = t0 + span
    conn = connect(dsn, schema, statement_timeout_ms=None)
    try:
        migrate(conn, schema)
        print(f"  filling {rows:,} rows over 24 h through the write path ...", flush=True)
        ingest = fill(conn, schema, rows, t0, span)
        sizes = table_sizes(conn)
        fast, _ = timed(conn, schema, timedelta(minutes=15), now, "raw", runs)
        day, approx = timed(conn, schema, timedelta(hours=24), now, "rollup", runs)
        day_raw, exact = timed(conn, schema, timedelta(hours=24), now, "raw", max(1, runs // 3))
        error, where = max_error(exact, approx)
    finally:
        conn.close()
        if not keep:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return {
        "rows": rows, "ingest_rows_per_s": ingest, "sizes": sizes,
        "15m_raw_ms": fast, "24h_rollup_ms": day, "24h_raw_ms": day_raw,
        "max_error": error, "max_error_at": where, "routes": len(approx.routes),
    }


def describe(result: dict[str, object]) -> str:
    def med(key: str) -> str:
        values = result[key]
        assert isinstance(values, list)
        return f"{statistics.median(values):.1f} ms (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"

    lines = [
        f"rows: {result['rows']:,} over 24 h, {result['routes']} routes x {AGENTS} agents",
        f"  insert-if-absent write (server-side generated rows, 512/batch, rollups maintained): "
        f"{result['ingest_rows_per_s']:,.0f} rows/s",
        f"  route stats 15 min (raw rows):      {med('15m_raw_ms')}",
        f"  route stats 24 h (rollups):         {med('24h_rollup_ms')}",
        f"  route stats 24 h (raw rows, exact): {med('24h_raw_ms')}",
        f"  rollup percentile error vs exact:   max {100 * float(result['max_error']):.2f} % ({result['max_error_at']})",
        "  sizes: " + ", ".join(f"{k} {v}" for k, v in dict(result["sizes"]).items()),  # type: ignore[arg-type]
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("OTEL_LLM_TEST_DSN") or None)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schemas")
    args = parser.parse_args()
    dsn = args.dsn or resolve_dsn()
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    print(f"PostgreSQL {version}; Python {platform.python_version()}; {os.cpu_count()} CPUs; {platform.machine()}")
    for rows in args.rows:
        print(describe(run(dsn, rows, args.runs, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
