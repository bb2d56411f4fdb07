"""The batch writer: every observation exactly once, bad rows isolated, partitions handled."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb, JsonbBinaryDumper

from exporters.postgres.partitions import existing_partitions, partition_name, prune
from exporters.postgres.schema import connect
from exporters.postgres import writer as writer_module
from exporters.postgres.writer import BatchWriter
from tests.pg import count_rows, observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("pg_schema")


@pytest.fixture
def writer(pg_conn: psycopg.Connection, pg_dsn: str, pg_schema: str) -> BatchWriter:
    """A writer on a clean module schema."""
    with pg_conn.transaction():
        pg_conn.execute("TRUNCATE route_observations, route_rollup_minute, route_rollup_hour, route_stats_hour")
    return BatchWriter(pg_conn, pg_schema)


def _rollup_total(conn: psycopg.Connection, table: str = "route_rollup_minute") -> int:
    with conn.transaction():
        return int(conn.execute(f"SELECT coalesce(sum(n), 0) FROM {table}").fetchone()[0])


def test_batch_lands_once_with_every_field(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    batch = [observation(i, ttft_ms=12.5, cached_input_tokens=10, tags={"team": "a"},
                         attributes={"nested": {"x": [1, 2]}}) for i in range(50)]
    result = writer.write(batch)
    assert (result.inserted, result.duplicates, result.skipped_count) == (50, 0, 0)
    with pg_conn.transaction():
        row = pg_conn.execute(
            "SELECT trace_id, span_id, duration_ms, ttft_ms, agent, route, cost_usd, cached_input_tokens,"
            " tags, attributes, ok FROM route_observations WHERE span_id = %s", (batch[7].span_id,)).fetchone()
    assert row == (batch[7].trace_id, batch[7].span_id, batch[7].duration_ms, 12.5, "support",
                   "openai|gpt-4o-mini", Decimal("0.000027"), 10, {"team": "a"},
                   {"nested": {"x": [1, 2]}}, True)


def test_same_batch_twice_counts_once_in_rows_and_rollups(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    batch = [observation(i) for i in range(200)]
    first = writer.write(batch)
    second = writer.write(batch)
    overlapping = writer.write(batch[150:] + [observation(i) for i in range(200, 260)])
    assert (first.inserted, first.duplicates) == (200, 0)
    assert (second.inserted, second.duplicates) == (0, 200)
    assert (overlapping.inserted, overlapping.duplicates) == (60, 50)
    assert count_rows(pg_conn) == 260
    assert _rollup_total(pg_conn) == 260
    assert _rollup_total(pg_conn, "route_rollup_hour") == 260
    assert _rollup_total(pg_conn, "route_stats_hour") == 260


def test_duplicate_inside_one_batch_is_stored_once(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    obs = observation(1)
    result = writer.write([obs, obs, observation(2)])
    assert (result.inserted, result.duplicates) == (2, 1)
    assert count_rows(pg_conn) == 2
    assert _rollup_total(pg_conn) == 2


def test_bad_rows_are_skipped_and_reported_the_rest_lands(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    good = [observation(i) for i in range(100)]
    bad = [
        observation(1000, agent="nul\x00byte"),             # PostgreSQL refuses NUL in text
        observation(1001, duration_ms=float("nan")),        # refused by a CHECK constraint
        observation(1002, input_tokens=2**70),              # out of bigint range
        observation(1003, attributes={"k": "nul\x00"}),     # jsonb refuses \u0000
        observation(1004, started_at="yesterday"),          # not a timestamp at all
        "not an observation",
    ]
    batch = good[:30] + bad[:3] + good[30:70] + bad[3:] + good[70:]
    with caplog.at_level("WARNING", logger="otel_llm.postgres"):
        result = writer.write(batch)  # type: ignore[arg-type]
    assert result.inserted == 100
    assert result.skipped_count == 6
    assert {s.trace_id for s in result.skipped or ()} == {f"{i:032x}" for i in range(1000, 1005)} | {None}
    assert count_rows(pg_conn) == 100
    assert _rollup_total(pg_conn) == 100
    assert sum("was not stored" in r.getMessage() for r in caplog.records) == 6


def test_naive_timestamps_are_taken_as_utc(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    naive = datetime(2030, 5, 17, 23, 30, 0)
    writer.write([observation(1, started_at=naive)])
    with pg_conn.transaction():
        stored = pg_conn.execute("SELECT started_at FROM route_observations").fetchone()[0]
    assert stored == naive.replace(tzinfo=timezone.utc)


def test_partitions_are_created_for_every_day_of_a_batch(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                         pg_schema: str) -> None:
    base = datetime(2031, 1, 30, 23, 59, 59, tzinfo=timezone.utc)
    days = [base + timedelta(days=d) for d in range(3)]
    result = writer.write([observation(i, started_at=days[i % 3]) for i in range(30)])
    assert result.inserted == 30
    with pg_conn.transaction():
        parts = existing_partitions(pg_conn, pg_schema)
        per_partition = dict(pg_conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM route_observations"
            " WHERE started_at >= %s GROUP BY 1", (base - timedelta(days=1),)).fetchall())
    for d in (date(2031, 1, 30), date(2031, 1, 31), date(2031, 2, 1)):
        assert d in parts
        assert per_partition[partition_name(d)] == 10


def test_prune_drops_whole_old_days_and_their_rollups(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                      pg_schema: str) -> None:
    now = datetime.now(timezone.utc)
    old = now - timedelta(days=40)
    writer.write([observation(i, started_at=old) for i in range(10)]
                 + [observation(i, started_at=now) for i in range(10, 25)])
    result = prune(pg_conn, pg_schema, now - timedelta(days=30))
    assert partition_name(old.date()) in result.dropped_partitions
    assert partition_name(now.date()) not in result.dropped_partitions
    assert count_rows(pg_conn) == 15
    assert _rollup_total(pg_conn) == 15
    assert _rollup_total(pg_conn, "route_rollup_hour") == 15
    assert _rollup_total(pg_conn, "route_stats_hour") == 15
    with pg_conn.transaction():
        assert old.date() not in existing_partitions(pg_conn, pg_schema)


def test_prune_never_drops_the_day_containing_the_cutoff(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                         pg_schema: str) -> None:
    cutoff = datetime(2032, 6, 10, 12, 0, tzinfo=timezone.utc)
    writer.write([observation(1, started_at=cutoff + timedelta(hours=1)),
                  observation(2, started_at=cutoff - timedelta(hours=1))])
    result = prune(pg_conn, pg_schema, cutoff)
    assert partition_name(cutoff.date()) not in result.dropped_partitions
    assert count_rows(pg_conn) == 2


def test_writer_recreates_a_partition_dropped_behind_its_back(writer: BatchWriter, pg_conn: psycopg.Connection,
                                                              pg_dsn: str, pg_schema: str) -> None:
    day = datetime(2033, 3, 3, 3, 3, tzinfo=timezone.utc)
    writer.write([observation(1, started_at=day)])
    with connect(pg_dsn, pg_schema, autocommit=True) as other:
        other.execute(f"DROP TABLE {partition_name(day.date())}")
    result = writer.write([observation(2, started_at=day)])
    assert (result.inserted, result.skipped_count) == (1, 0)


def test_two_writers_racing_on_the_same_batches_store_each_row_once(pg_dsn: str, pg_schema: str,
                                                                     writer: BatchWriter,
                                                                     pg_conn: psycopg.Connection) -> None:
    batches = [[observation(b * 100 + i) for i in range(100)] for b in range(10)]
    errors: list[BaseException] = []
    inserted: list[int] = []

    def run(order: list[list]) -> None:
        try:
            with connect(pg_dsn, pg_schema) as conn:
                w = BatchWriter(conn, pg_schema)
                for batch in order:
                    inserted.append(w.write(batch).inserted)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(batches,)),
               threading.Thread(target=run, args=(list(reversed(batches)),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(inserted) == 1000
    assert count_rows(pg_conn) == 1000
    assert _rollup_total(pg_conn) == 1000


_JSONB_VALUES = [
    {}, {"team": "a"}, {"server.port": 443, "gen_ai.response.id": "resp-1"},
    {"nested": {"x": [1, 2.5, None, True]}, "é": "ü \u2028 \"q\" \\"},
    {"when": datetime(2030, 1, 2, tzinfo=timezone.utc), "cost": Decimal("0.10")},  # stored as text
    [1, "two"], "text", 3, Jsonb({"wrapped": 1}), Jsonb({"k": 1}, dumps=lambda o: '{"custom":1}'),
]


def test_copy_jsonb_dumper_gives_psycopg_s_bytes(pg_conn: psycopg.Connection) -> None:
    reference = JsonbBinaryDumper(dict)
    reference.dumps = writer_module._json_dumps
    for value in _JSONB_VALUES:
        assert bytes(writer_module._JsonbCopyDumper(dict).dump(value)) == bytes(reference.dump(value)), value
    for bad in ({"lone": "\ud800"}, {"deep": _nested(10_000)}):
        with pytest.raises(writer_module.ROW_FAULT_PY_ERRORS):
            reference.dump(bad)
        with pytest.raises(writer_module.ROW_FAULT_PY_ERRORS):
            writer_module._JsonbCopyDumper(dict).dump(bad)


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"d": value}
    return value


def test_jsonb_columns_store_every_kind_of_value(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    batch = [observation(i, tags=v if isinstance(v, dict) else {}, attributes=v)
             for i, v in enumerate(_JSONB_VALUES)]
    assert writer.write(batch).inserted == len(batch)
    with pg_conn.transaction():
        stored = dict(pg_conn.execute("SELECT span_id, attributes::text FROM route_observations").fetchall())
        expected = {obs.span_id: pg_conn.execute("SELECT %s::jsonb::text", (writer_module._json_dumps(
            obs.attributes.obj if isinstance(obs.attributes, Jsonb) else obs.attributes),)).fetchone()[0]
            for obs in batch if not isinstance(obs.attributes, Jsonb) or obs.attributes.dumps is None}
    assert {k: stored[k] for k in expected} == expected
    assert stored[batch[-1].span_id] == '{"custom": 1}'


def test_usual_observations_are_copy_rows_as_they_stand_others_are_converted(writer: BatchWriter) -> None:
    writer.prepare()
    usual = [observation(i, computed_cost_usd=Decimal("0.5"), cost_usd=None if i == 1 else Decimal("0.1"))
             for i in range(3)]
    rows, ids, days, skipped = writer.to_rows(usual)
    assert all(row is obs for row, obs in zip(rows, usual)) and len(rows) == 3
    assert ids == [(o.trace_id, o.span_id) for o in usual]
    assert days == {usual[0].started_at.date()} and skipped == []
    over_days = [observation(i, started_at=usual[0].started_at + timedelta(days=d)) for i, d in enumerate((2, 0, 1))]
    assert writer.to_rows(over_days)[0] == over_days
    assert writer.to_rows(over_days)[2] == {usual[0].started_at.date() + timedelta(days=d) for d in (0, 1, 2)}

    when = datetime(2030, 5, 17, 23, 30, tzinfo=timezone.utc)
    odd = {
        "naive": (observation(9, started_at=when.replace(tzinfo=None)), "started_at", when),
        "another zone": (observation(9, started_at=when.astimezone(timezone(timedelta(hours=2)))),
                         "started_at", when),
        "a zero offset that is not UTC": (observation(9, started_at=when.replace(tzinfo=timezone(timedelta(0)))),
                                          "started_at", when),
        "a float cost": (observation(9, started_at=when, cost_usd=0.25), "cost_usd", Decimal("0.25")),
    }
    for label, (obs, field, expected) in odd.items():
        rows, ids, days, skipped = writer.to_rows(usual + [obs])
        assert rows[:3] == usual and skipped == [], label
        converted = dict(zip(writer._columns, rows[3]))
        assert converted[field] == expected and type(converted[field]) is type(expected), label
        assert converted["started_at"].tzinfo is not None, label
        assert days == {usual[0].started_at.date(), date(2030, 5, 17)}, label
        assert ids[3] == (obs.trace_id, obs.span_id), label
    rows, ids, days, skipped = writer.to_rows(usual + ["not an observation"])  # type: ignore[list-item]
    assert rows == usual and [s.trace_id for s in skipped] == [None]


def test_rollups_refused_after_the_copy_roll_the_copy_back(writer: BatchWriter, pg_conn: psycopg.Connection) -> None:
    # Each row fits a bigint, their sum in one rollup group does not: the COPY succeeds and
    # the rollups statement after it fails, so the fast way must leave nothing behind and
    # the careful way store what it can.
    big = 2**62 + 1
    batch = [observation(1, input_tokens=big), observation(2, input_tokens=big), observation(3)]
    result = writer.write(batch)
    assert (result.inserted, result.skipped_count) == (2, 1)
    with pg_conn.transaction():
        stored = pg_conn.execute("SELECT coalesce(sum(input_tokens), 0) FROM route_observations").fetchone()[0]
        rolled = pg_conn.execute("SELECT coalesce(sum(input_tokens), 0) FROM route_rollup_minute").fetchone()[0]
    assert stored == rolled == big + 100
    assert count_rows(pg_conn) == _rollup_total(pg_conn) == _rollup_total(pg_conn, "route_stats_hour") == 2
    assert writer.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert writer.write([observation(4)]).inserted == 1
