"""Schema migrations: complete, idempotent, and safe when many processes start at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from exporters.postgres.migrate import available_migrations, migrate
from exporters.postgres.schema import connect
from processor.observation import COLUMNS
from tests.pg import fresh_schema, pg_dsn  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]


def _versions(dsn: str, schema: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(f"SELECT version FROM {schema}.schema_migrations ORDER BY version")]


def test_migrate_creates_every_table_and_records_every_version(pg_dsn: str, fresh_schema: str) -> None:
    with connect(pg_dsn, fresh_schema) as conn:
        applied = migrate(conn, fresh_schema)
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (fresh_schema,))}
        partitioned = conn.execute(
            "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'route_observations'",
            (fresh_schema,)).fetchone()[0]
    assert applied == [m.version for m in available_migrations()]
    assert {"schema_migrations", "route_rollup_minute", "route_rollup_hour"} <= tables
    assert partitioned == 1
    assert _versions(pg_dsn, fresh_schema) == applied


def test_table_columns_are_the_observation_fields_in_order(pg_dsn: str, fresh_schema: str) -> None:
    with connect(pg_dsn, fresh_schema) as conn:
        migrate(conn, fresh_schema)
        columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'route_observations'::regclass"
            " AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
    assert tuple(columns) == COLUMNS


def test_second_migrate_applies_nothing(pg_dsn: str, fresh_schema: str) -> None:
    with connect(pg_dsn, fresh_schema) as conn:
        first = migrate(conn, fresh_schema)
        second = migrate(conn, fresh_schema)
    assert first and second == []
    assert _versions(pg_dsn, fresh_schema) == first


def test_threads_racing_to_migrate_all_succeed_and_apply_once(pg_dsn: str, fresh_schema: str) -> None:
    errors: list[BaseException] = []
    applied: list[list[int]] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        try:
            with connect(pg_dsn, fresh_schema) as conn:
                barrier.wait()
                applied.append(migrate(conn, fresh_schema))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    every = [m.version for m in available_migrations()]
    assert sorted(applied, key=len) == [[]] * 5 + [every]
    assert _versions(pg_dsn, fresh_schema) == every


def test_processes_racing_on_db_migrate_all_succeed(pg_dsn: str, fresh_schema: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "otel_llm.cli", "db", "migrate", "--dsn", pg_dsn, "--schema", fresh_schema]
    procs = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0, 0], results
    outputs = sorted(r[0] for r in results)
    assert sum("applied" in o for o in outputs) == 1
    assert sum("up to date" in o for o in outputs) == 3
    assert _versions(pg_dsn, fresh_schema) == [m.version for m in available_migrations()]


def test_invalid_schema_name_is_refused_before_touching_the_database(pg_dsn: str) -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        with connect(pg_dsn, "Robert'); DROP TABLE students;--"):
            pass
