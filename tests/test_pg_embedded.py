"""The embedded default: with no DSN, otel-llm runs a PostgreSQL of its own, and says where."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from exporters.base import ExportResult
from exporters.postgres.embedded import data_dir, pgdata_dir, redact_dsn, resolve_dsn, stop_embedded
from exporters.postgres.exporter import PostgresExporter
from tests.pg import fresh_schema, observation, pg_dsn  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_llm.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _env_without_dsn(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OTEL_LLM_DSN"}
    env.update(OTEL_LLM_DATA_DIR=str(data), PYTHONPATH=str(REPO))
    return env


def test_db_url_starts_the_embedded_server_and_db_stop_stops_it(tmp_path: Path) -> None:
    env = _env_without_dsn(tmp_path / "data")
    try:
        first = _cli("db", "url", env=env)
        assert first.returncode == 0, first.stderr
        dsn = first.stdout.strip()
        assert "using the embedded PostgreSQL" in first.stderr and "(created now)" in first.stderr
        with psycopg.connect(dsn, connect_timeout=5) as conn:  # still running after the command exited
            assert conn.execute("SELECT 1").fetchone() == (1,)
        again = _cli("db", "url", env=env)  # reused: same server, same data
        assert again.returncode == 0 and again.stdout.strip() == dsn
        assert "(created now)" not in again.stderr
        stopped = _cli("db", "stop", env=env)
        assert stopped.returncode == 0 and "stopped the embedded PostgreSQL" in stopped.stdout
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=5)
        assert "is not running" in _cli("db", "stop", env=env).stdout
    finally:
        stop_embedded(tmp_path / "data" / "pgdata")


def test_exporter_without_dsn_writes_to_the_embedded_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_LLM_DSN", raising=False)
    monkeypatch.setenv("OTEL_LLM_DATA_DIR", str(tmp_path / "data"))
    try:
        exporter = PostgresExporter.from_env()
        try:
            assert exporter.export([observation(i) for i in range(10)]) is ExportResult.ACCEPTED
            assert exporter.stats()["exported"] == 10
        finally:
            exporter.shutdown()
        assert exporter.spool.directory == tmp_path / "data" / "spool" / "otel_llm"
        with psycopg.connect(resolve_dsn()) as conn:
            assert conn.execute("SELECT count(*) FROM otel_llm.route_observations").fetchone() == (10,)
    finally:
        stop_embedded(tmp_path / "data" / "pgdata")


def test_a_configured_dsn_is_used_as_is_and_nothing_is_started(tmp_path: Path) -> None:
    env = {"OTEL_LLM_DSN": "postgresql://app@db.internal:5432/obs", "OTEL_LLM_DATA_DIR": str(tmp_path)}
    assert resolve_dsn(env) == "postgresql://app@db.internal:5432/obs"
    assert not (tmp_path / "pgdata").exists()


def test_data_directory_follows_the_platform_and_the_override(tmp_path: Path) -> None:
    if sys.platform.startswith("linux"):
        assert data_dir({"HOME": "/home/u"}) == Path("/home/u/.local/share/otel-llm")
        assert data_dir({"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"}) == Path("/xdg/otel-llm")
    assert pgdata_dir({"OTEL_LLM_DATA_DIR": str(tmp_path)}) == tmp_path / "pgdata"


def test_passwords_never_appear_in_logged_dsns() -> None:
    shown = redact_dsn("postgresql://app:s3cret@db:5432/obs")
    assert "s3cret" not in shown and "db" in shown


def test_from_env_with_an_explicit_dsn_starts_nothing(tmp_path: Path, pg_dsn: str, fresh_schema: str) -> None:
    env = {"OTEL_LLM_DATA_DIR": str(tmp_path), "OTEL_LLM_SPOOL_MAX_BYTES": "12345", "OTEL_LLM_RETENTION_DAYS": "9"}
    exporter = PostgresExporter.from_env(env, dsn=pg_dsn, schema=fresh_schema, background=False)
    try:
        assert exporter.dsn == pg_dsn and exporter.schema == fresh_schema
        assert exporter.spool.max_bytes == 12345 and exporter.retention is not None
        assert exporter.retention.days == 9
        assert exporter.spool.directory == tmp_path / "spool" / fresh_schema
    finally:
        exporter.shutdown()
    assert not (tmp_path / "pgdata").exists()
