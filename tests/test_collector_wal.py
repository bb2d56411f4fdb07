"""The collector's write-ahead log: what was appended is read back in order, after a
crash too; the checkpoint and the byte bound behave as the receiver relies on."""

from __future__ import annotations

import os

import pytest

from processor.collector.wal import CHECKPOINT_NAME, WalClosed, WalFull, WalLocked, WriteAheadLog


def _payloads(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i % 251]) * size + str(i).encode() for i in range(n)]


def test_records_are_read_back_in_order_across_segments(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=10_000_000, segment_bytes=1_000)
    payloads = _payloads(50)
    assert [wal.append(p) for p in payloads] == list(range(50))
    assert wal.segment_count() > 5
    records = wal.reader().read(1000)
    assert [r.payload for r in records] == payloads
    assert [r.seq for r in records] == list(range(50))


def test_a_reader_follows_appends_made_after_it_reached_the_end(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=10_000_000, segment_bytes=500)
    reader = wal.reader()
    assert reader.read(10) == []
    seen = []
    for p in _payloads(20):
        wal.append(p)
        seen += [r.payload for r in reader.read(10, timeout_s=1.0)]
    assert seen == _payloads(20)


def test_restart_reads_again_only_what_is_after_the_persisted_checkpoint(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=10_000_000, segment_bytes=1_000)
    payloads = _payloads(30)
    for p in payloads:
        wal.append(p)
    done = wal.reader().read(12)
    wal.release(12, sum(r.size for r in done))
    wal.persist()
    wal.release_lock()
    again = WriteAheadLog(tmp_path, max_bytes=10_000_000, segment_bytes=1_000)
    assert again.checkpoint == 12
    assert [r.payload for r in again.reader().read(100)] == payloads[12:]
    assert again.append(b"next") == 30
    assert again.pending_bytes == sum(8 + len(p) for p in payloads[12:]) + 8 + 4


def test_segments_behind_the_checkpoint_are_deleted(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=10_000_000, segment_bytes=1_000)
    for p in _payloads(40):
        wal.append(p)
    before = wal.segment_count()
    records = wal.reader().read(100)
    wal.release(40, sum(r.size for r in records))
    wal.persist()
    assert wal.segment_count() == 1 < before
    assert len(list(tmp_path.glob("*.wal"))) == 1
    assert wal.pending_bytes == 0


def test_a_torn_record_at_the_end_is_cut_off_and_the_rest_kept(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=10_000_000)
    payloads = _payloads(5)
    for p in payloads:
        wal.append(p)
    wal.release_lock()
    segment = sorted(tmp_path.glob("*.wal"))[-1]
    with open(segment, "ab") as f:  # a crash in the middle of an append: never acknowledged
        f.write(b"\x50\x00\x00\x00\x01\x02\x03\x04partial")
    again = WriteAheadLog(tmp_path, max_bytes=10_000_000)
    assert [r.payload for r in again.reader().read(100)] == payloads
    assert again.append(b"after") == 5
    assert [r.payload for r in again.reader(5).read(10)] == [b"after"]


def test_appends_beyond_the_bound_are_refused_until_records_are_released(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=1_000)
    wal.append(b"x" * 400)
    wal.append(b"x" * 400)
    with pytest.raises(WalFull):
        wal.append(b"x" * 400)
    wal.release(1, 408)
    assert wal.append(b"x" * 400) == 2


def test_a_closed_log_refuses_appends_and_a_second_process_cannot_open_it(tmp_path):
    wal = WriteAheadLog(tmp_path)
    with pytest.raises(WalLocked):
        WriteAheadLog(tmp_path)
    wal.close()
    with pytest.raises(WalClosed):
        wal.append(b"late")


def test_a_damaged_checkpoint_file_means_replaying_everything(tmp_path):
    wal = WriteAheadLog(tmp_path)
    for p in _payloads(3):
        wal.append(p)
    wal.release_lock()
    (tmp_path / CHECKPOINT_NAME).write_text("garbage")
    again = WriteAheadLog(tmp_path)
    assert again.checkpoint == 0 and len(again.reader().read(10)) == 3
    assert os.path.exists(tmp_path / "lock")
