"""The spool and the JSON-lines codec it uses: lossless, atomic, bounded, tolerant."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from exporters.base import ExportResult
from exporters.jsonl import JsonlExporter, dumps, loads
from exporters.postgres.spool import Spool
from tests.pg import observation


def test_codec_round_trip_keeps_every_value() -> None:
    obs = observation(7, started_at=datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))),
                      cost_usd=Decimal("0.000000123456789"), computed_cost_usd=Decimal("1E-12"),
                      ttft_ms=1.5, fallback=None, tags={"a": "b"}, attributes={"n": [1, {"x": None}], "f": 0.1})
    back = loads(dumps(obs))
    assert back == obs
    assert back.started_at.utcoffset() == timedelta(hours=2)


def test_codec_reads_lines_of_older_and_newer_writers() -> None:
    line = '{"trace_id":"%s","span_id":"%s","started_at":"2030-01-01T00:00:00+00:00","duration_ms":5,' \
           '"some_future_field":1}' % ("a" * 32, "b" * 16)
    obs = loads(line)
    assert (obs.trace_id, obs.duration_ms, obs.ok, obs.route) == ("a" * 32, 5, True, None)


def test_put_is_atomic_and_files_come_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    first = [observation(i) for i in range(3)]
    second = [observation(i) for i in range(3, 5)]
    assert spool.put(first).stored and spool.put(second).stored
    assert sorted(os.listdir(tmp_path)) == [p.name for p in spool.files()]  # no temporary file left
    read = []
    for path in spool.files():
        with spool.claim(path) as batch:
            assert batch is not None
            read.append(batch.observations)
            spool.remove(path)
    assert read == [first, second]
    assert len(spool) == 0


def test_a_crashed_half_written_file_is_never_replayed(tmp_path: Path) -> None:
    stale = tmp_path / "00000000000000000001-1-00000000.tmp"
    stale.write_text('{"trace_id": "truncat')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    spool = Spool(tmp_path, 1 << 20)
    assert spool.files() == []
    assert not stale.exists()


def test_a_corrupt_line_is_skipped_and_the_rest_of_the_file_kept(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.put([observation(1), observation(2)])
    path = spool.files()[0]
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    with spool.claim(path) as batch:
        assert batch is not None
        assert [o.trace_id for o in batch.observations] == [observation(1).trace_id, observation(2).trace_id]
        assert batch.malformed == 1


def test_a_file_claimed_elsewhere_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.put([observation(1)])
    path = spool.files()[0]
    with spool.claim(path) as mine:
        with spool.claim(path) as theirs:
            assert mine is not None and theirs is None


def test_put_refuses_a_batch_beyond_the_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 4000)
    results = [spool.put([observation(i) for i in range(b * 3, b * 3 + 3)]) for b in range(6)]
    assert [r.stored for r in results].count(False) >= 1
    assert spool.size_bytes() <= 4000


def test_unencodable_observations_are_counted_not_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    put = spool.put([observation(1), object()])  # type: ignore[list-item]
    assert (put.stored, put.observations, put.malformed) == (True, 1, 1)


def test_jsonl_exporter_appends_one_line_per_observation(tmp_path: Path) -> None:
    target = tmp_path / "out" / "observations.jsonl"
    exporter = JsonlExporter(target)
    assert exporter.export([observation(1), observation(2)]) is ExportResult.ACCEPTED
    assert exporter.export([observation(3), "junk"]) is ExportResult.ACCEPTED  # type: ignore[list-item]
    exporter.shutdown()
    lines = target.read_text().splitlines()
    assert [loads(line).trace_id for line in lines] == [observation(i).trace_id for i in (1, 2, 3)]
    assert exporter.stats() == {"exported": 3, "skipped_malformed": 1}
    assert exporter.export([observation(4)]) is ExportResult.FAILED


def test_jsonl_exporter_needs_exactly_one_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JsonlExporter()
