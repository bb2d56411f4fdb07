"""``otel-llm demo``: the main job, against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from exporters.postgres.schema import connect
from tests.pg import count_rows, fresh_schema, pg_dsn  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_its_observations_and_prints_route_stats(pg_dsn, fresh_schema, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_LLM_DATA_DIR"] = str(tmp_path)  # spool here, never in the user's folder
    proc = subprocess.run(
        [sys.executable, "-m", "otel_llm.cli", "demo", "--fast", "--calls", "40", "--json",
         "--dsn", pg_dsn, "--schema", fresh_schema],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SIMULATED" in proc.stderr
    report = json.loads(proc.stdout)
    routes = {r["route"]: r for r in report["routes"]}
    # every kind of step shows up: tools, a stream with TTFT, local calls, a fallback chain
    assert {"support-tools", "draft-stream", "triage-local", "answer-primary"} <= set(routes)
    assert routes["draft-stream"]["ttft_p50_ms"] is not None
    with connect(pg_dsn, fresh_schema) as conn:
        stored = count_rows(conn)
    assert stored == sum(r["count"] for r in report["routes"])
    assert "dropped 0" in proc.stderr
