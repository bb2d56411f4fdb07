"""Ingest throughput: span end to committed row, against a raw COPY (run by hand).

Measured in one run, on the same PostgreSQL, into the same table of a fresh schema:

* ``raw COPY``: the observations (derived beforehand, outside the timing) copied
  straight into ``route_observations`` with one COPY per batch — the database's own
  ceiling for these rows, with no idempotence, no rollups and no derivation;
* ``end to end``: the same spans handed to ``RouteObservationProcessor.on_end`` as the
  SDK would, derived on the worker (the next batch while the previous one is being
  written), written by ``PostgresExporter`` (COPY of new rows plus rollup deltas, or
  staging and insert-if-absent for a resent batch; per-minute and hourly rollups) until
  ``force_flush`` returns — the figure a user gets;
* ``on_end``: what the application thread pays per span, timed call by call during
  the end-to-end run (median and p99);
* ``derive``: the pure derivation alone, per span (best of three passes over the spans).

Observations are priced as ``otel_llm.configure()`` prices them (the price library, by
default); ``--no-pricing`` measures derivation without a pricer.

Goal: end to end >= 80 % of the raw COPY figure.

    python benchmarks/ingest.py [--spans 50000] [--batch 512] [--repeats 3] [--no-pricing] [--dsn DSN]

The DSN defaults to ``OTEL_LLM_TEST_DSN``, else ``OTEL_LLM_DSN``, else the embedded server.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from exporters.postgres.embedded import resolve_dsn  # noqa: E402
from exporters.postgres.exporter import PostgresExporter  # noqa: E402
from exporters.postgres.migrate import migrate  # noqa: E402
from exporters.postgres.partitions import ensure_partitions, utc_day  # noqa: E402
from exporters.postgres.schema import connect  # noqa: E402
from otel_llm.call import LLMCall  # noqa: E402
from processor.derive import Pricer, derive  # noqa: E402
from processor.observation import COLUMNS, RouteObservation  # noqa: E402
from processor.pricing import default_pricer  # noqa: E402
from processor.span_processor import RouteObservationProcessor  # noqa: E402

AGENTS = ("support", "research", "triage", "billing")
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "llama3.2")


def make_spans(n: int) -> list[ReadableSpan]:
    """``n`` finished provider-call spans written by otel-llm's own LLMCall."""
    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    for i in range(n):
        model = MODELS[i % len(MODELS)]
        call = LLMCall(provider="ollama" if model == "llama3.2" else "openai", model=model,
                       agent=AGENTS[i % len(AGENTS)], route=f"route-{i % 8}",
                       server_address="api.example.test", server_port=443, attempt=i % 2)
        call.set_response(model=model, id=f"resp-{i}", finish_reasons=["stop"])
        call.set_usage(input_tokens=100 + i % 900, output_tokens=10 + i % 300, cache_read_input_tokens=i % 50)
        if i % 17 == 0:
            call.fail("RateLimitError")
        call.end()
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


def _copy_value(name: str, value: Any) -> Any:
    if name in ("tags", "attributes"):
        return Jsonb(value)
    return value


def raw_copy(dsn: str, schema: str, rows: Sequence[RouteObservation], batch: int) -> float:
    """Seconds to COPY ``rows`` straight into route_observations, ``batch`` rows a COPY."""
    with connect(dsn, schema) as conn:
        conn.execute("TRUNCATE route_observations")
        conn.commit()
        statement = sql.SQL("COPY route_observations ({}) FROM STDIN").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for obs in rows[i:i + batch]:
                    copy.write_row([_copy_value(c, getattr(obs, c)) for c in COLUMNS])
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE route_observations")
        conn.commit()
    return elapsed


def end_to_end(dsn: str, schema: str, spans: Sequence[ReadableSpan], batch: int,
               pricer: Pricer | None = None) -> tuple[float, list[int], dict]:
    """Seconds from the first on_end to a completed flush, per-call on_end ns, stats."""
    with connect(dsn, schema) as conn:
        for table in ("route_observations", "route_rollup_minute", "route_rollup_hour"):
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        conn.commit()
    exporter = PostgresExporter(dsn, schema=schema, spool_dir=tempfile.mkdtemp(prefix="otel-llm-bench-spool-"))
    processor = RouteObservationProcessor(exporter, max_queue=len(spans) + 1, batch_size=batch, pricer=pricer)
    exporter.run_maintenance()  # connect, migrate and make partitions before the clock starts
    costs = [0] * len(spans)
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for i, span in enumerate(spans):
        t0 = clock()
        processor.on_end(span)
        costs[i] = clock() - t0
    flushed = processor.force_flush(600_000)
    elapsed = time.perf_counter() - started
    stats = processor.stats().as_dict()
    processor.shutdown()
    if not flushed:
        raise RuntimeError(f"flush did not complete: {stats}")
    with connect(dsn, schema) as conn:
        stored = conn.execute("SELECT count(*) FROM route_observations").fetchone()[0]
    if stored != len(spans):
        raise RuntimeError(f"{stored} rows stored for {len(spans)} spans: {stats}")
    return elapsed, costs, stats


def derive_cost(spans: Sequence[ReadableSpan], pricer: Pricer | None = None) -> float:
    """Microseconds per span of ``derive`` alone, best of three passes."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for span in spans:
            derive(span, pricer=pricer)
        best = min(best, time.perf_counter() - started)
    return best / len(spans) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pricing", action="store_true", help="derive without a pricer")
    parser.add_argument("--dsn")
    args = parser.parse_args()
    dsn = args.dsn or os.environ.get("OTEL_LLM_TEST_DSN") or resolve_dsn()
    schema = f"bench_ingest_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate_conn = connect(dsn, schema)
        migrate(migrate_conn, schema)
        migrate_conn.close()
    try:
        pricer = None if args.no_pricing else default_pricer()
        spans = make_spans(args.spans)
        rows = [obs for obs in (derive(span, pricer=pricer) for span in spans) if obs is not None]
        assert len(rows) == len(spans)
        with connect(dsn, schema) as conn:  # the raw COPY has no partition-making step of its own
            ensure_partitions(conn, schema, {utc_day(obs.started_at) for obs in rows})
            conn.commit()
        raw_s, e2e_s, costs = [], [], []
        for _ in range(args.repeats):
            raw_s.append(raw_copy(dsn, schema, rows, args.batch))
            elapsed, on_end_ns, stats = end_to_end(dsn, schema, spans, args.batch, pricer)
            e2e_s.append(elapsed)
            costs.extend(on_end_ns)
        derive_us = derive_cost(spans, pricer)
        raw_rate = len(rows) / statistics.median(raw_s)
        e2e_rate = len(spans) / statistics.median(e2e_s)
        costs.sort()
        print(f"python {platform.python_version()}, {os.cpu_count()} cores; {len(spans)} spans, "
              f"batch {args.batch}, {args.repeats} repeats (medians), pricing {'off' if pricer is None else 'on'}")
        print(f"raw COPY into route_observations : {raw_rate:>10,.0f} rows/s")
        print(f"end to end (on_end -> committed) : {e2e_rate:>10,.0f} observations/s "
              f"= {100 * e2e_rate / raw_rate:.0f} % of raw COPY")
        print(f"on_end on the application thread: median {statistics.median(costs) / 1000:.2f} us, "
              f"p99 {costs[int(len(costs) * 0.99)] / 1000:.2f} us")
        print(f"derive alone                     : {derive_us:10.2f} us/span")
        print(f"last run: {stats}")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    main()
