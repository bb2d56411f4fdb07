"""The PostgreSQL exporter: stores batches, survives a real outage, bounds its spool."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from exporters.base import ExportResult, ObservationExporter
from exporters.jsonl import dumps
from exporters.postgres.exporter import PostgresExporter, PreparedBatch
from exporters.postgres.partitions import existing_partitions, partition_name
from exporters.postgres.schema import connect
from exporters.postgres.spool import Spool
from tests.pg import (  # noqa: F401 - fixtures
    ScratchServer,
    count_rows,
    fresh_schema,
    observation,
    pg_dsn,
    scratch_server,
)


def _stored(dsn: str, schema: str) -> tuple[int, int, int]:
    """(rows, distinct identities, observations counted by the minute rollup)."""
    with connect(dsn, schema) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM route_observations").fetchone()
        rolled = conn.execute("SELECT coalesce(sum(n), 0) FROM route_rollup_minute").fetchone()[0]
    return rows, distinct, int(rolled)


def test_exporter_follows_the_protocol_and_stores_batches(pg_dsn: str, fresh_schema: str, tmp_path: Path) -> None:
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool")
    try:
        assert isinstance(exporter, ObservationExporter)
        batch = [observation(i) for i in range(300)]
        assert exporter.export(batch) is ExportResult.ACCEPTED
        assert exporter.export(batch) is ExportResult.ACCEPTED  # a resent batch
        assert exporter.force_flush(5) is True
        stats = exporter.stats()
    finally:
        exporter.shutdown()
    assert _stored(pg_dsn, fresh_schema) == (300, 300, 300)
    assert stats["exported"] == 600 and stats["duplicates"] == 300
    assert stats["spilled"] == stats["dropped"] == stats["skipped_malformed"] == 0
    assert exporter.export(batch) is ExportResult.FAILED  # after shutdown


def test_batches_prepared_ahead_are_stored_once_and_a_stale_plan_is_not_trusted(
        pg_dsn: str, fresh_schema: str, tmp_path: Path) -> None:
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool")
    first = [observation(i) for i in range(100)]
    try:
        assert exporter.prepare(first) is first  # no connection yet: nothing done ahead
        assert exporter.export(first) is ExportResult.ACCEPTED
        second = exporter.prepare([observation(i) for i in range(100, 300)])
        assert isinstance(second, PreparedBatch) and second.plan is not None
        assert list(second) == [observation(i) for i in range(100, 300)]
        assert exporter.export(second) is ExportResult.ACCEPTED
        assert exporter.export(second) is ExportResult.ACCEPTED  # resent: counted once
        # A plan made for one connection's writer, exported after a reconnect.
        third = exporter.prepare([observation(i) for i in range(300, 350)] + first[:10])
        exporter._close_connection()
        assert exporter.export(third) is ExportResult.ACCEPTED
        stats = exporter.stats()
    finally:
        exporter.shutdown()
    assert _stored(pg_dsn, fresh_schema) == (350, 350, 350)
    assert stats["exported"] == 100 + 200 + 200 + 60 and stats["duplicates"] == 200 + 10


def test_exporter_creates_todays_and_coming_partitions(pg_dsn: str, fresh_schema: str, tmp_path: Path) -> None:
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool")
    try:
        exporter.export([observation(1)])
    finally:
        exporter.shutdown()
    today = datetime.now(timezone.utc).date()
    with connect(pg_dsn, fresh_schema) as conn:
        days = existing_partitions(conn, fresh_schema)
    assert {today, today + timedelta(days=1), today + timedelta(days=2)} <= set(days)


def test_malformed_observations_are_counted_and_the_rest_exported(pg_dsn: str, fresh_schema: str,
                                                                  tmp_path: Path) -> None:
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool")
    try:
        batch = [observation(i) for i in range(20)] + [observation(99, duration_ms=-5.0), None]
        assert exporter.export(batch) is ExportResult.ACCEPTED  # type: ignore[arg-type]
        stats = exporter.stats()
    finally:
        exporter.shutdown()
    assert stats["exported"] == 20 and stats["skipped_malformed"] == 2
    assert _stored(pg_dsn, fresh_schema)[0] == 20


def test_outage_spills_then_every_observation_arrives_exactly_once(scratch_server: ScratchServer, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    schema = "otel_llm"
    exporter = PostgresExporter(scratch_server.dsn, schema=schema, spool_dir=tmp_path / "spool",
                                retry_initial_s=0.2, retry_max_s=0.5, replay_interval_s=0.2)
    batches = [[observation(b * 1000 + i) for i in range(200)] for b in range(12)]
    caplog.set_level(logging.WARNING, logger="otel_llm.postgres")
    try:
        for batch in batches[:4]:
            assert exporter.export(batch) is ExportResult.ACCEPTED
        scratch_server.stop()  # really stopped: the server process is gone
        for batch in batches[4:9]:
            assert exporter.export(batch) is ExportResult.ACCEPTED  # never raises, never refuses
        assert exporter.export(batches[2]) is ExportResult.ACCEPTED  # a resend during the outage
        down = exporter.stats()
        assert exporter.database_down
        assert down["spilled"] == 6 * 200 and len(Spool(tmp_path / "spool", 1 << 30)) == 6
        assert exporter.force_flush(2) is False  # still down: not everything reached the database
        scratch_server.start()
        for batch in batches[9:]:
            assert exporter.export(batch) is ExportResult.ACCEPTED
        assert exporter.force_flush(30) is True
        stats = exporter.stats()
    finally:
        exporter.shutdown()
    assert _stored(scratch_server.dsn, schema) == (12 * 200, 12 * 200, 12 * 200)
    # Batches exported just as the server came back may have been spilled too: all replayed.
    assert stats["spilled"] >= 6 * 200 and stats["replayed"] == stats["spilled"]
    assert stats["duplicates"] == 200
    assert stats["dropped"] == 0 and stats["spool_files"] == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("is not usable" in m and "spilling batches" in m for m in messages)
    assert any("reachable again" in m for m in messages)
    assert any("replayed" in m and "spilled batches" in m for m in messages)


def test_spool_left_by_a_previous_process_is_replayed_by_the_next(pg_dsn: str, fresh_schema: str,
                                                                  tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 30)
    spool.put([observation(i) for i in range(50)])
    spool.put([observation(i) for i in range(25, 80)])
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool", replay_interval_s=0.1)
    try:
        assert exporter.force_flush(30) is True
        stats = exporter.stats()
    finally:
        exporter.shutdown()
    assert _stored(pg_dsn, fresh_schema) == (80, 80, 80)
    assert stats["replayed"] == 105 and stats["duplicates"] == 25
    assert len(spool) == 0


def test_what_exceeds_the_spool_bound_is_counted_as_dropped(scratch_server: ScratchServer, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    one_batch = [observation(i) for i in range(100)]
    size = len(("\n".join(dumps(o) for o in one_batch) + "\n").encode())
    exporter = PostgresExporter(scratch_server.dsn, spool_dir=tmp_path / "spool",
                                spool_max_bytes=int(size * 2.5), retry_initial_s=60, retry_max_s=60)
    try:
        scratch_server.stop()
        for b in range(5):
            assert exporter.export([observation(b * 1000 + i) for i in range(100)]) is ExportResult.ACCEPTED
        stats = exporter.stats()
    finally:
        exporter.shutdown(timeout_s=0)
    assert stats["spilled"] == 200
    assert stats["dropped"] == 300
    assert Spool(tmp_path / "spool", 1 << 30).size_bytes() <= int(size * 2.5)
    assert any("is full" in r.getMessage() for r in caplog.records)


def test_automatic_retention_drops_old_partitions(pg_dsn: str, fresh_schema: str, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=10)
    seed = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool", background=False)
    seed.export([observation(i, started_at=old) for i in range(5)] + [observation(i, started_at=now)
                                                                      for i in range(5, 8)])
    seed.shutdown()
    exporter = PostgresExporter(pg_dsn, schema=fresh_schema, spool_dir=tmp_path / "spool", retention_days=7,
                                background=False)
    try:
        exporter.run_maintenance()  # what the background thread does at most once an hour
    finally:
        exporter.shutdown()
    with connect(pg_dsn, fresh_schema) as conn:
        assert count_rows(conn) == 3
        assert old.date() not in existing_partitions(conn, fresh_schema)
        assert partition_name(now.date()) in {partition_name(d) for d in existing_partitions(conn, fresh_schema)}
