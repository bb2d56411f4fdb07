"""Reports at scale: the monthly cost report and the 24 h route stats on 10 M
observations over 30 days; and what pricing costs per observation (run by hand).

    .venv/bin/python benchmarks/reports.py [--dsn DSN] [--rows 10000000] [--runs 9] [--keep]
    .venv/bin/python benchmarks/reports.py --pricing-only

Data: ``--rows`` observations spread evenly over 30 days, generated inside PostgreSQL
by the route stats benchmark's generator (16 routes x 4 agents, log-normal latencies,
token counts, costs) and inserted in large chunks; the per-minute, hourly and per-route
hourly rollups are then built from the raw rows a day at a time with the writer's
arithmetic (:data:`ROLLUP_FROM_RAW`), so 10 M rows load in minutes. (The writer's own
statement, batch by batch, would take an hour; the rollups come out compacted, one
histogram entry per bucket, where live traffic leaves them partly concatenated.)

Timed (median of ``--runs`` after one warm-up; the 30 days start mid-hour, so the cost
report reads edge minutes from the per-minute rollup and the rest hourly):

- the monthly cost report by agent and model (``cost_report(by="agent,model")`` over
  the 30 days), and per UTC day;
- the 24 h route stats (``exporters.postgres.route_stats``, from the rollups);
- baselines of the same run: the same cost report from raw rows, and the 24 h route
  stats from raw rows (exact percentiles), fewer runs.

Pricing: per observation, what :class:`processor.pricing.PriceBook` costs on
derivation's thread (a mix of models, first lookups included, amortised), against the
price library's own ``calc_price`` per call and derivation alone per span.

Goal: each report within 100 ms at 10 M rows; pricing well under 3 us per observation.
The DSN defaults to ``OTEL_LLM_TEST_DSN``, else ``OTEL_LLM_DSN``, else the embedded
server. The schema is dropped afterwards unless ``--keep``.
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
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

import route_stats as route_stats_bench  # noqa: E402 - the benchmark next door: its generator
from exporters.postgres.embedded import resolve_dsn  # noqa: E402
from exporters.postgres.migrate import migrate  # noqa: E402
from exporters.postgres.route_stats import route_stats  # noqa: E402
from exporters.postgres.schema import connect  # noqa: E402
from exporters.postgres.writer import BatchWriter  # noqa: E402
from otel_llm.reports.costs import cost_report  # noqa: E402

DAYS = 30
#: Rows generated and inserted per statement (about a day of traffic at 10 M rows / 30 days).
CHUNK = 350_000

#: A rollup table filled from one day of raw rows, with the writer's arithmetic
#: (``sql/write_chunk.sql``): keys with '' for NULL, token sums skipping NULLs, known
#: costs summed and counted, latency/TTFT histograms of successful calls as bucket and
#: count arrays. ``{keys}`` are the table's key columns after ``ts``; ``{unit}`` its width.
ROLLUP_FROM_RAW = """
INSERT INTO {table}
WITH keyed AS (
    SELECT date_trunc({unit}, started_at) AS ts, {key_values},
           ok, coalesce(fallback, false) AS fallback, duration_ms, cost_usd,
           input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
           CASE WHEN ok THEN hist_bucket(duration_ms) END AS lat_b,
           CASE WHEN ok THEN hist_bucket(ttft_ms) END AS ttft_b
    FROM route_observations
    WHERE started_at >= %(start)s AND started_at < %(end)s
), sums AS (
    SELECT ts, {keys}, count(*) AS n, count(*) FILTER (WHERE ok) AS n_ok,
           count(*) FILTER (WHERE fallback) AS n_fallback,
           coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens,
           coalesce(sum(cached_input_tokens), 0) AS cached_input_tokens,
           coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
           coalesce(sum(cost_usd), 0) AS cost_usd, count(cost_usd) AS n_cost,
           coalesce(sum(duration_ms) FILTER (WHERE ok), 0) AS duration_ms_ok_sum
    FROM keyed GROUP BY ts, {keys}
), bins AS (
    SELECT 'lat' AS kind, ts, {keys}, lat_b AS b, count(*) AS c FROM keyed WHERE lat_b IS NOT NULL
    GROUP BY ts, {keys}, lat_b
    UNION ALL
    SELECT 'ttft', ts, {keys}, ttft_b, count(*) FROM keyed WHERE ttft_b IS NOT NULL
    GROUP BY ts, {keys}, ttft_b
), hists AS (
    SELECT ts, {keys},
           array_agg(b) FILTER (WHERE kind = 'lat') AS lat_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'lat') AS lat_cnt,
           array_agg(b) FILTER (WHERE kind = 'ttft') AS ttft_idx,
           array_agg(c::integer) FILTER (WHERE kind = 'ttft') AS ttft_cnt
    FROM bins GROUP BY ts, {keys}
)
SELECT s.ts, {s_keys}, s.n, s.n_ok, s.n_fallback, s.input_tokens, s.output_tokens, s.cached_input_tokens,
       s.reasoning_tokens, s.cost_usd, s.n_cost, s.duration_ms_ok_sum,
       coalesce(h.lat_idx, '{{}}'), coalesce(h.lat_cnt, '{{}}'), coalesce(h.ttft_idx, '{{}}'),
       coalesce(h.ttft_cnt, '{{}}')
FROM sums AS s LEFT JOIN hists AS h USING (ts, {keys})
"""

_MODEL_KEYS = ("route", "agent", "request_model", "provider", "operation")
ROLLUPS = (("route_rollup_minute", "minute", _MODEL_KEYS), ("route_rollup_hour", "hour", _MODEL_KEYS),
           ("route_stats_hour", "hour", ("route",)))


def rollup_statement(table: str, unit: str, keys: tuple[str, ...]) -> str:
    """:data:`ROLLUP_FROM_RAW` for one rollup table."""
    return ROLLUP_FROM_RAW.format(table=table, unit=f"'{unit}'", keys=", ".join(keys),
                                  key_values=", ".join(f"coalesce({k}, '') AS {k}" for k in keys),
                                  s_keys=", ".join(f"s.{k}" for k in keys))


def fill(conn: psycopg.Connection, schema: str, rows: int, t0: datetime, span: timedelta) -> float:
    """Generate ``rows`` observations over ``span`` from ``t0`` (the route stats benchmark's
    generator), insert them, then build the rollups day by day; returns seconds taken."""
    writer = BatchWriter(conn, schema)
    writer.prepare()  # the staging table the generator fills
    day = t0.date()
    writer.ensure_days({day + timedelta(days=d) for d in range(-1, span.days + 2)})
    step_ms = span.total_seconds() * 1000 / rows
    conn.execute("SELECT setseed(0.42)")
    conn.commit()
    started = time.perf_counter()
    for lo in range(0, rows, CHUNK):
        hi = min(lo + CHUNK, rows) - 1
        with conn.transaction():
            conn.execute(route_stats_bench.GENERATE,
                         {"tag": schema, "t0": t0, "step_ms": step_ms, "lo": lo, "hi": hi})
            conn.execute("INSERT INTO route_observations SELECT * FROM pg_temp.otel_llm_staging")
            conn.execute("DELETE FROM pg_temp.otel_llm_staging")
        done = hi + 1
        print(f"    {done:>11,} rows  {done / (time.perf_counter() - started):,.0f} rows/s", flush=True)
    statements = [rollup_statement(*r) for r in ROLLUPS]
    first = datetime.combine(t0.date(), datetime.min.time(), tzinfo=timezone.utc)
    for d in range(span.days + 2):
        with conn.transaction():
            for statement in statements:
                conn.execute(statement, {"start": first + timedelta(days=d), "end": first + timedelta(days=d + 1)})
    print(f"    rollups built  {time.perf_counter() - started:,.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    conn.autocommit = True
    try:
        for table in ("route_observations", "route_rollup_minute", "route_rollup_hour", "route_stats_hour"):
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    finally:
        conn.autocommit = False
    return elapsed


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Milliseconds of ``runs`` calls of ``fn`` after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, result


def run(dsn: str, rows: int, runs: int, keep: bool) -> dict[str, Any]:
    schema = f"bench_reports_{rows}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    span = timedelta(days=DAYS)
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    t0 = hour - span - timedelta(minutes=30)  # the month starts mid-hour
    end = t0 + span
    conn = connect(dsn, schema, statement_timeout_ms=None)
    out: dict[str, Any] = {"rows": rows}
    try:
        migrate(conn, schema)
        print(f"  filling {rows:,} rows over {DAYS} days ...", flush=True)
        out["fill_s"] = fill(conn, schema, rows, t0, span)

        def month(period: str = "all", source: str = "auto") -> Any:
            return cost_report(conn, by="agent,model", period=period, since=t0, until=end, schema=schema,
                               source=source)  # type: ignore[arg-type]

        out["month_ms"], report = timed(month, runs)
        out["month_daily_ms"], daily = timed(lambda: month("day"), runs)
        out["month_raw_ms"], exact = timed(lambda: month(source="raw"), max(1, runs // 3))
        out["day_ms"], stats = timed(lambda: route_stats(conn, timedelta(hours=24), schema=schema, now=end,
                                                         source="rollup"), runs)
        out["day_raw_ms"], _ = timed(lambda: route_stats(conn, timedelta(hours=24), schema=schema, now=end,
                                                         source="raw"), max(1, runs // 3))
        # the rollup answer covers whole minutes, the raw one the exact interval: same calls here
        # (the data's first and last calls sit on minute boundaries), same money
        assert (report.total.calls, report.total.cost_usd) == (exact.total.calls, exact.total.cost_usd), \
            (report.total, exact.total)
        assert report.total.calls == rows, report.total.calls
        out["groups"] = len(report.rows)
        out["daily_rows"] = len(daily.rows)
        out["routes"] = len(stats.routes)
    finally:
        conn.close()
        if not keep:
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return out


def pricing(n: int = 20_000) -> dict[str, float]:
    """Microseconds per observation: the pricer (fresh, so first lookups count), the price
    library's calc_price, derivation alone (best of three passes each)."""
    from genai_prices import Usage, calc_price

    from ingest import make_spans
    from processor.derive import derive
    from processor.pricing import PriceBook

    spans = make_spans(n)
    observations = [o for o in (derive(s) for s in spans) if o is not None]

    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    def price_all() -> None:
        book = PriceBook(env={})  # a fresh cache each pass: lookups and compiling included
        for o in observations:
            book(o)

    def library_all() -> None:
        for o in observations:
            try:
                calc_price(Usage(input_tokens=o.input_tokens, cache_read_tokens=o.cached_input_tokens,
                                 output_tokens=o.output_tokens),
                           o.response_model or o.request_model, provider_id=o.provider,
                           genai_request_timestamp=o.started_at)
            except LookupError:
                pass

    def derive_all() -> None:
        for s in spans:
            derive(s)

    priced = sum(PriceBook(env={})(o) is not None for o in observations)
    per = len(observations)
    return {"observations": per, "priced": priced,
            "pricer_us": best(price_all) / per * 1e6,
            "library_us": best(library_all) / per * 1e6,
            "derive_us": best(derive_all) / len(spans) * 1e6}


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def describe(r: dict[str, Any]) -> str:
    return "\n".join([
        f"rows: {r['rows']:,} over {DAYS} days, generated with their rollups in {r['fill_s']:.0f} s",
        f"  cost report, 30 days by agent and model (rollups): {_med(r['month_ms'])}  [{r['groups']} groups]",
        f"  same, per UTC day (rollups):                        {_med(r['month_daily_ms'])}  [{r['daily_rows']} rows]",
        f"  same, whole period from raw rows (baseline):       {_med(r['month_raw_ms'])}",
        f"  route stats 24 h (rollups):                        {_med(r['day_ms'])}  [{r['routes']} routes]",
        f"  route stats 24 h from raw rows (baseline):         {_med(r['day_raw_ms'])}",
        f"  ratios: cost report {statistics.median(r['month_raw_ms']) / statistics.median(r['month_ms']):.0f}x "
        f"faster than raw rows; route stats {statistics.median(r['day_raw_ms']) / statistics.median(r['day_ms']):.0f}x",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("OTEL_LLM_TEST_DSN") or None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark schema")
    parser.add_argument("--pricing-only", action="store_true", help="only the pricing figures")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}; {os.cpu_count()} CPUs; {platform.machine()}")
    p = pricing()
    print(f"pricing, {p['observations']:,} observations ({p['priced']:,} priced, the rest local or unknown):\n"
          f"  PriceBook (fresh cache, amortised): {p['pricer_us']:.2f} us/observation\n"
          f"  genai_prices.calc_price per call:   {p['library_us']:.2f} us/observation "
          f"({p['library_us'] / p['pricer_us']:.0f}x the PriceBook)\n"
          f"  derive alone (for scale):           {p['derive_us']:.2f} us/span "
          f"(pricing adds {100 * p['pricer_us'] / p['derive_us']:.0f} %)", flush=True)
    if args.pricing_only:
        return 0
    dsn = args.dsn or resolve_dsn()
    with psycopg.connect(dsn) as conn:
        print(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}")
    print(describe(run(dsn, args.rows, args.runs, args.keep)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
