"""The collector's write-ahead log: an acknowledged batch is on disk before it is acknowledged.

The receiver appends each accepted request body (a serialized
``ExportTraceServiceRequest``) as one record and fsyncs it before answering the sender;
the pipeline's worker reads records in order, and once every span of a record has been
written (or handed to the exporter's own spool) it moves the checkpoint past it. After a
crash, the records after the checkpoint are read again; rows are keyed by
``(trace_id, span_id)``, so a record read twice never counts twice.

On disk: segment files ``<first sequence number, 20 digits>.wal`` holding records
``[length: u32][crc32: u32][payload]``, and a ``checkpoint`` file naming the first
sequence number not yet done (written to a temporary name, fsynced and renamed). A
segment is deleted when every record in it is behind the checkpoint. A torn record at
the end of the last segment (a crash mid-append: never acknowledged) is cut off at
start-up; a damaged record elsewhere ends its segment's reading and is logged.

The log is bounded: :meth:`WriteAheadLog.append` raises :class:`WalFull` when the bytes
not yet checkpointed would exceed ``max_bytes``, and the receiver tells the sender to
retry later. Appends are serialised (one fsync each); reading never blocks appending.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("otel_llm.collector")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
SEGMENT_SUFFIX = ".wal"
CHECKPOINT_NAME = "checkpoint"
_HEADER = struct.Struct("<II")
#: A record longer than this is damage, not data (bodies are limited far below it).
_MAX_RECORD = 1 << 30


class WalFull(Exception):
    """The log holds ``max_bytes`` not yet checkpointed: try again later."""


class WalLocked(OSError):
    """Another process has this log open (two collectors must not share a log)."""


class WalClosed(Exception):
    """The log no longer accepts records (the collector is stopping)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One logged request body."""

    seq: int
    payload: bytes
    #: Bytes the record takes in its segment (header included).
    size: int


@dataclass(slots=True)
class _Segment:
    first_seq: int
    path: Path
    #: Records in the segment and their bytes, as far as known to be good.
    records: int = 0
    size: int = 0


class WriteAheadLog:
    """See the module docstring. One writer at a time (appends are locked), one reader."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 segment_bytes: int | None = None, sync: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.directory / "lock", "a+b")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise WalLocked(f"the write-ahead log in {self.directory} is in use by another process; "
                            "give each collector its own log directory") from None
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(16 * 1024 * 1024, max_bytes // 8))
        self._sync = sync
        self._lock = threading.Lock()  # appends and segment changes (held across the fsync)
        self._bytes_lock = threading.Lock()  # checkpoint and pending bytes (never held long)
        self._appended = threading.Condition(threading.Lock())
        self._closed = False
        self._checkpoint = self._read_checkpoint()
        self._segments = self._recover()
        #: Sequence number the next append gets (every record below it is on disk).
        self._next_seq = max(self._checkpoint, self._segments[-1].first_seq + self._segments[-1].records
                             if self._segments else self._checkpoint)
        self._pending_bytes = self._bytes_after(self._checkpoint)
        self._persisted = self._checkpoint
        self._file = None  # the open segment, opened by the first append
        self._remove_done_segments()

    # -- state ----------------------------------------------------------------------------
    @property
    def checkpoint(self) -> int:
        """The first sequence number not yet done."""
        return self._checkpoint

    @property
    def next_seq(self) -> int:
        """The sequence number of the next record appended."""
        return self._next_seq

    @property
    def pending_bytes(self) -> int:
        """Bytes of records at or after the checkpoint."""
        return self._pending_bytes

    def segment_count(self) -> int:
        return len(self._segments)

    # -- writing ----------------------------------------------------------------------------
    def append(self, payload: bytes) -> int:
        """Log ``payload`` durably; its sequence number. Raises :class:`WalFull`,
        :class:`WalClosed`, or ``OSError`` when the disk fails (nothing acknowledged)."""
        size = _HEADER.size + len(payload)
        with self._lock:
            if self._closed:
                raise WalClosed("the collector is shutting down")
            if self.pending_bytes + size > self.max_bytes:
                raise WalFull(f"write-ahead log full ({self._pending_bytes} of {self.max_bytes} bytes "
                              "waiting to be written to the database)")
            segment = self._writable_segment(size)
            assert self._file is not None
            header = _HEADER.pack(len(payload), zlib.crc32(payload))
            try:
                self._file.write(header)
                self._file.write(payload)
                self._file.flush()
                if self._sync:
                    os.fdatasync(self._file.fileno())
            except BaseException:
                self._abandon_segment(segment)
                raise
            seq = segment.first_seq + segment.records
            segment.records += 1
            segment.size += size
            with self._bytes_lock:
                self._pending_bytes += size
            with self._appended:
                self._next_seq = seq + 1
                self._appended.notify_all()
        return seq

    def _writable_segment(self, size: int) -> _Segment:
        segment = self._segments[-1] if self._segments else None
        if self._file is not None and segment is not None and (
                segment.size + size <= self.segment_bytes or segment.records == 0):
            return segment  # (an empty segment takes one record whatever its size)
        self._close_file()
        if segment is not None and segment.records == 0 and segment.first_seq == self._next_seq:
            self._file = open(segment.path, "ab")  # noqa: SIM115 - an empty one left by a crash
            return segment
        segment = _Segment(self._next_seq, self.directory / f"{self._next_seq:020d}{SEGMENT_SUFFIX}")
        self._file = open(segment.path, "ab")  # noqa: SIM115 - kept open across appends
        self._segments.append(segment)
        self._fsync_directory()
        return segment

    def _abandon_segment(self, segment: _Segment) -> None:
        """A failed write may have left part of a record: cut the file back to its good size."""
        try:
            self._close_file()
            os.truncate(segment.path, segment.size)
        except OSError as exc:
            logger.error("otel-llm collect: cannot repair %s after a failed append: %s", segment.path, exc)

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None

    def release_lock(self) -> None:
        """Let another process open this log (after the last checkpoint was persisted)."""
        self._lock_file.close()

    def close(self) -> None:
        """Refuse further appends (reading and checkpointing go on)."""
        with self._lock:
            self._closed = True
            self._close_file()
        with self._appended:
            self._appended.notify_all()

    # -- reading ---------------------------------------------------------------------------
    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until record ``seq`` exists (or the log is closed); whether it does."""
        with self._appended:
            if self._next_seq <= seq and not self._closed:
                self._appended.wait(timeout_s)
            return self._next_seq > seq

    def reader(self, start: int | None = None) -> "WalReader":
        """A reader from ``start`` (default: the checkpoint)."""
        return WalReader(self, self._checkpoint if start is None else start)

    # -- checkpointing -------------------------------------------------------------------------
    def release(self, next_seq: int, size: int) -> None:
        """Records below ``next_seq`` are done and took ``size`` bytes beyond the previous
        checkpoint: they no longer count against ``max_bytes``. Persisted by :meth:`persist`."""
        with self._bytes_lock:
            if next_seq > self._checkpoint:
                self._checkpoint = next_seq
                self._pending_bytes = max(0, self._pending_bytes - size)

    def persist(self) -> None:
        """Write the checkpoint to disk and delete segments entirely behind it."""
        with self._bytes_lock:
            checkpoint = self._checkpoint
        if checkpoint == self._persisted:
            return
        tmp = self.directory / (CHECKPOINT_NAME + ".tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{checkpoint}\n")
            f.flush()
            if self._sync:
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / CHECKPOINT_NAME)
        self._fsync_directory()
        self._persisted = checkpoint
        with self._lock:
            self._remove_done_segments()

    def _remove_done_segments(self) -> None:
        """Delete segments whose records are all behind the checkpoint (never the open one)."""
        while len(self._segments) > 1 and self._segments[1].first_seq <= self._persisted:
            segment = self._segments.pop(0)
            try:
                segment.path.unlink()
            except FileNotFoundError:
                pass

    # -- start-up ---------------------------------------------------------------------------
    def _read_checkpoint(self) -> int:
        path = self.directory / CHECKPOINT_NAME
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            logger.error("otel-llm collect: unreadable checkpoint %s (%s); replaying the whole log", path, exc)
            return 0
        if not text.isdigit():
            logger.error("otel-llm collect: damaged checkpoint %s; replaying the whole log", path)
            return 0
        return int(text)

    def _recover(self) -> list[_Segment]:
        """Find the segments, count their good records, cut a torn tail off the last one."""
        segments = []
        for path in sorted(self.directory.glob("*" + SEGMENT_SUFFIX)):
            stem = path.name[: -len(SEGMENT_SUFFIX)]
            if stem.isdigit():
                segments.append(_Segment(int(stem), path))
        for i, segment in enumerate(segments):
            records, good, total = _scan(segment.path)
            segment.records, segment.size = records, good
            if good < total:
                if i == len(segments) - 1:
                    logger.warning("otel-llm collect: cutting %d bytes of an unfinished record off %s "
                                   "(never acknowledged)", total - good, segment.path)
                    os.truncate(segment.path, good)
                else:
                    logger.error("otel-llm collect: %s is damaged after %d records; the rest of it is skipped",
                                 segment.path, records)
        return segments

    def _bytes_after(self, seq: int) -> int:
        total = 0
        for segment in self._segments:
            if segment.first_seq + segment.records <= seq:
                continue
            if segment.first_seq >= seq:
                total += segment.size
            else:
                total += segment.size - _offset_of(segment.path, seq - segment.first_seq)
        return total

    def _fsync_directory(self) -> None:
        if not self._sync:
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class WalReader:
    """Reads records in order from a sequence number, following appends and new segments."""

    def __init__(self, wal: WriteAheadLog, start: int) -> None:
        self._wal = wal
        self.next_seq = start
        self._segment: _Segment | None = None
        self._file = None
        self._index = 0  # records of the current segment already passed

    def read(self, max_records: int, timeout_s: float = 0.0) -> list[Record]:
        """Up to ``max_records`` records from ``next_seq``, waiting up to ``timeout_s`` for the first."""
        if timeout_s > 0 and not self._wal.wait_for(self.next_seq, timeout_s):
            return []
        out: list[Record] = []
        while len(out) < max_records and self.next_seq < self._wal.next_seq:
            record = self._next()
            if record is None:
                break
            out.append(record)
        return out

    def _next(self) -> Record | None:
        while True:
            if self._segment is None and not self._open():
                return None
            segment = self._segment
            assert segment is not None and self._file is not None
            if self._index < segment.records:
                header = self._file.read(_HEADER.size)
                length, crc = _HEADER.unpack(header)
                payload = self._file.read(length)
                seq = segment.first_seq + self._index
                self._index += 1
                self.next_seq = seq + 1
                if zlib.crc32(payload) != crc:  # counted good at start-up or just appended
                    logger.error("otel-llm collect: record %d in %s fails its checksum; skipped", seq, segment.path)
                    continue
                return Record(seq, payload, _HEADER.size + length)
            if segment is self._wal._segments[-1]:
                return None  # at the end of the open segment: nothing more yet
            self._close()
            self.next_seq = max(self.next_seq, segment.first_seq + segment.records)

    def _open(self) -> bool:
        """Open the segment holding ``next_seq`` and skip to it."""
        for segment in list(self._wal._segments):
            if segment.first_seq + segment.records > self.next_seq or segment is self._wal._segments[-1]:
                if segment.first_seq > self.next_seq:
                    self.next_seq = segment.first_seq  # records between were lost to damage
                self._segment = segment
                self._file = open(segment.path, "rb")  # noqa: SIM115
                self._index = 0
                while self._index < self.next_seq - segment.first_seq and self._index < segment.records:
                    length, _crc = _HEADER.unpack(self._file.read(_HEADER.size))
                    self._file.seek(length, os.SEEK_CUR)
                    self._index += 1
                return True
        return False

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._segment = None

    def close(self) -> None:
        self._close()


def _scan(path: Path) -> tuple[int, int, int]:
    """(good records, bytes they take, file size) of a segment file."""
    good = records = 0
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            length, crc = _HEADER.unpack(header)
            if length > _MAX_RECORD:
                break
            payload = f.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            records += 1
            good += _HEADER.size + length
    return records, good, total


def _offset_of(path: Path, index: int) -> int:
    """Byte offset of record ``index`` in a (good) segment."""
    offset = 0
    with open(path, "rb") as f:
        for _ in range(index):
            length, _crc = _HEADER.unpack(f.read(_HEADER.size))
            offset += _HEADER.size + length
            f.seek(offset)
    return offset
