"""A local, size-bounded spool of batches the database could not take yet.

One file per batch, one JSON line per observation (the codec of :mod:`exporters.jsonl`).
A file is written to a temporary name, flushed and fsynced, then renamed into place and
the directory fsynced: a crash leaves either the whole batch or nothing, never half a
file. Names start with a nanosecond timestamp, so listing them in name order replays
batches in the order they were spilled.

Several processes may share a spool directory (e.g. a restarted process finds what the
previous one spilled). A replayer claims a file with a non-blocking ``flock`` and skips
files claimed by someone else; replaying the same file twice would be harmless anyway,
since writes are idempotent.

The bound is on the bytes of all batch files: a batch that would push the spool past
``max_bytes`` is refused, and the caller counts its observations as dropped.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from exporters.jsonl import dumps, loads
from processor.observation import RouteObservation

logger = logging.getLogger("otel_llm.postgres")

SUFFIX = ".jsonl"
_TMP_SUFFIX = ".tmp"
_BAD_SUFFIX = ".bad"
_counter = itertools.count()


@dataclass(frozen=True, slots=True)
class SpoolPut:
    """Outcome of :meth:`Spool.put`."""

    #: Whether the batch is now on disk.
    stored: bool
    #: Observations written to the file.
    observations: int
    #: Observations that could not be encoded (not written).
    malformed: int


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    """A batch read back from the spool."""

    path: Path
    observations: list[RouteObservation]
    #: Lines that could not be decoded (skipped).
    malformed: int


class Spool:
    """A directory of spilled batches, bounded to ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clean_temporaries()

    # -- state -----------------------------------------------------------------------
    def files(self) -> list[Path]:
        """Batch files, oldest first."""
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(SUFFIX) and e.is_file()]
        except FileNotFoundError:
            return []
        return [self.directory / n for n in sorted(names)]

    def size_bytes(self) -> int:
        """Bytes held by batch files (temporary files excluded)."""
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def __len__(self) -> int:
        return len(self.files())

    # -- writing ---------------------------------------------------------------------
    def put(self, batch: Sequence[RouteObservation]) -> SpoolPut:
        """Write ``batch`` as one file, durably; refuse it if the spool would exceed its bound."""
        lines: list[str] = []
        malformed = 0
        for obs in batch:
            try:
                lines.append(dumps(obs))
            except Exception as exc:  # noqa: BLE001 - one bad object must not sink the batch
                malformed += 1
                logger.warning("otel-llm: observation cannot be spooled and is skipped: %s: %s",
                               type(exc).__name__, exc)
        if not lines:
            return SpoolPut(True, 0, malformed)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self.size_bytes() + len(data) > self.max_bytes:
            return SpoolPut(False, 0, malformed)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):08d}"
        final = self.directory / f"{name}{SUFFIX}"
        tmp = self.directory / f"{name}{_TMP_SUFFIX}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, final)
        self._fsync_directory()
        return SpoolPut(True, len(lines), malformed)

    # -- reading ---------------------------------------------------------------------
    @contextmanager
    def claim(self, path: Path) -> Iterator[SpooledBatch | None]:
        """Lock ``path`` and read it; yields ``None`` if another process holds it or it is gone.

        Call :meth:`remove` inside the block once the batch is stored.
        """
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if os.fstat(fd).st_nlink == 0:  # replayed and removed by someone else meanwhile
                yield None
                return
            with os.fdopen(os.dup(fd), "r", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            observations: list[RouteObservation] = []
            malformed = 0
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    observations.append(loads(line))
                except Exception as exc:  # noqa: BLE001 - one bad line must not sink the file
                    malformed += 1
                    logger.warning("otel-llm: spool file %s line %d is not an observation and is skipped: %s",
                                   path.name, number, exc)
            yield SpooledBatch(path, observations, malformed)
        finally:
            os.close(fd)

    def remove(self, path: Path) -> None:
        """Delete a replayed batch file."""
        path.unlink(missing_ok=True)
        self._fsync_directory()

    # -- housekeeping ----------------------------------------------------------------
    def _clean_temporaries(self) -> None:
        """Remove temporary files a crashed writer left behind (never renamed = never accepted)."""
        cutoff = time.time() - 60
        for entry in os.scandir(self.directory):
            if entry.name.endswith(_TMP_SUFFIX):
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    pass

    def _fsync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
