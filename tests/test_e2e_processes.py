"""Two application processes writing observations into one schema at the same time.

Both start against a schema that does not exist yet, so their migrations race too;
every observation must land exactly once and the rollups must count each once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from exporters.postgres.schema import connect
from tests.pg import count_rows, fresh_schema, pg_dsn  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]

APP = textwrap.dedent(
    """
    import sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from exporters.postgres.exporter import PostgresExporter
    from otel_llm import llm_span, scope
    from processor.span_processor import RouteObservationProcessor

    dsn, schema, spool, name, n = sys.argv[1:6]
    provider = TracerProvider()
    processor = RouteObservationProcessor(PostgresExporter(dsn, schema=schema, spool_dir=spool), batch_size=50)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    with scope(agent=name):
        for i in range(int(n)):
            with llm_span(provider="openai", model="gpt-4o-mini", route=name) as call:
                call.set_usage(input_tokens=i, output_tokens=1)
    provider.shutdown()
    print(processor.stats().as_dict())
    """
)


def test_two_processes_and_their_racing_migrations_store_every_row_once(pg_dsn, fresh_schema, tmp_path):
    n = 400
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APP, pg_dsn, fresh_schema, str(tmp_path / name), name, str(n)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name in ("app-a", "app-b")
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "'dropped': 0" in out and "'exported': 400" in out, out
    with connect(pg_dsn, fresh_schema) as conn:
        assert count_rows(conn) == 2 * n
        per_route = dict(conn.execute(
            "SELECT route, sum(n)::int FROM route_rollup_minute GROUP BY route ORDER BY route").fetchall())
    assert per_route == {"app-a": n, "app-b": n}
