"""Writes feedback to PostgreSQL from a background thread: never raising, never blocking.

``otel_llm.record_feedback`` runs in application code, so it only puts the feedback on
a bounded in-memory queue (:meth:`FeedbackWriter.submit`). A daemon thread takes up to
``batch_size`` pieces at a time and inserts them in one transaction, idempotently by
``feedback_id`` (``ON CONFLICT DO NOTHING``): a batch written twice — retried after a
connection broke at commit, or flushed again — is stored once.

While the database is unreachable the thread keeps its current batch and retries with
backoff; new feedback waits in the queue. Nothing is lost until the queue is full; then
each refused piece is counted as ``dropped`` (and logged, rate-limited), never silently
lost. The bound on memory is ``max_queue + batch_size`` pieces.

The connection (and the embedded server, when no DSN is configured) is opened by the
thread on first use, so constructing a writer is cheap. This module imports psycopg only
there, which keeps the first ``record_feedback`` call light.

The process's writer (:func:`default_writer`) is shut down when the interpreter exits
normally, waiting at most :data:`EXIT_FLUSH_S` for what it still holds.

Counters (:meth:`FeedbackWriter.stats`): ``accepted``, ``written`` (new rows),
``duplicates`` (already stored), ``dropped`` (queue full or writer closed),
``rejected`` (refused by the database itself, e.g. a check constraint), ``failures``
(failed write attempts, each retried), ``pending`` (accepted, not yet settled).
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from typing import Any, Callable, Protocol, Sequence

from otel_llm._safety import report

logger = logging.getLogger("otel_llm.postgres")

#: Default bound of the queue (pieces of feedback waiting for the database).
DEFAULT_MAX_QUEUE = 10_000
DEFAULT_BATCH_SIZE = 500
#: Seconds a normal interpreter exit waits for the process's writer to store what it holds.
EXIT_FLUSH_S = 5.0
#: Longest an idle writer thread sleeps before looking at its state again.
IDLE_POLL_S = 5.0
#: Put on the queue by shutdown to wake the thread.
_STOP: Any = object()
#: Columns written, in the order of :meth:`FeedbackRecord.row`.
COLUMNS = ("feedback_id", "trace_id", "span_id", "recorded_at", "outcome", "quality",
           "satisfaction", "agent", "model", "comment")


class FeedbackRecord(Protocol):
    """What the writer stores (``otel_llm.feedback.Feedback`` is one)."""

    def row(self) -> tuple[Any, ...]: ...


def insert_statement() -> str:
    """The idempotent insert of one row (see :data:`COLUMNS`)."""
    from exporters.postgres.schema import load_sql

    return load_sql("feedback_insert")


class FeedbackWriter:
    """A bounded queue drained by a daemon thread into the ``feedback`` table.

    ``dsn=None`` resolves the database on the thread, at first use: ``OTEL_LLM_DSN``,
    else the embedded server. ``schema=None`` means ``OTEL_LLM_SCHEMA`` or ``otel_llm``.
    """

    def __init__(self, dsn: str | None = None, *, schema: str | None = None,
                 max_queue: int = DEFAULT_MAX_QUEUE, batch_size: int = DEFAULT_BATCH_SIZE,
                 retry_initial_s: float = 0.5, retry_max_s: float = 15.0,
                 auto_migrate: bool = True) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self._dsn = dsn
        self._schema = schema
        self._batch_size = batch_size
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._auto_migrate = auto_migrate
        self._queue: queue.Queue[FeedbackRecord] = queue.Queue(maxsize=max_queue)
        self._batch: list[FeedbackRecord] = []
        self._conn: Any = None
        self._migrated = False
        self._closed = False
        self._wake = threading.Event()
        self._settled = threading.Condition()
        self._counts = {"accepted": 0, "written": 0, "duplicates": 0, "dropped": 0,
                        "rejected": 0, "failures": 0}
        self._abandoned = 0  # accepted, then dropped at shutdown (also in "dropped")
        self._thread = threading.Thread(target=self._run, name="otel-llm-feedback", daemon=True)
        self._thread.start()

    # -- application side --------------------------------------------------------------
    def submit(self, record: FeedbackRecord) -> bool:
        """Queue ``record``; False (and counted as dropped) when full or closed. Never raises."""
        try:
            if self._closed:
                self._count("dropped")
                return False
            self._queue.put_nowait(record)
        except queue.Full:
            self._count("dropped")
            report("queueing feedback (queue full; the piece was dropped)", RuntimeError("feedback queue full"))
            return False
        except Exception as exc:  # noqa: BLE001
            report("queueing feedback", exc)
            return False
        self._count("accepted")
        return True

    def stats(self) -> dict[str, int]:
        """The counters (see the module docstring)."""
        with self._settled:
            counts = dict(self._counts)
            counts["pending"] = counts["accepted"] - self._settled_count()
        return counts

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything accepted so far is stored (or refused); True if it was in time."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()  # retry now rather than at the end of a backoff
        with self._settled:
            target = self._counts["accepted"]
            while self._settled_count() < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._settled.wait(min(left, 0.05))
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Flush (up to ``timeout_s``), stop the thread, close the connection. Idempotent."""
        flushed = self.flush(timeout_s) if not self._closed else True
        self._closed = True
        self._wake.set()
        try:
            self._queue.put_nowait(_STOP)  # wakes an idle thread; a full queue means it is busy anyway
        except queue.Full:
            pass
        self._thread.join(timeout=max(0.1, timeout_s))
        return flushed

    # -- the thread ----------------------------------------------------------------------
    def _settled_count(self) -> int:
        c = self._counts
        return c["written"] + c["duplicates"] + c["rejected"] + self._abandoned

    def _count(self, name: str, n: int = 1) -> None:
        with self._settled:
            self._counts[name] += n
            self._settled.notify_all()

    def _run(self) -> None:
        backoff = self._retry_initial_s
        while True:
            if not self._batch:
                self._fill_batch()
            if not self._batch:
                if self._closed:
                    break
                continue
            if self._write_batch():
                backoff = self._retry_initial_s
                continue
            if self._closed:
                break
            self._wake.wait(backoff)
            self._wake.clear()
            backoff = min(backoff * 2, self._retry_max_s)
        self._close_connection()
        self._abandon()

    def _abandon(self) -> None:
        """At shutdown, what could not be stored is counted as dropped."""
        lost = len(self._batch)
        self._batch = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            lost += item is not _STOP
        if lost:
            with self._settled:
                self._counts["dropped"] += lost
                self._abandoned += lost
                self._settled.notify_all()
            logger.warning("otel-llm: %d pieces of feedback could not be stored before shutdown "
                           "and were dropped", lost)

    def _fill_batch(self) -> None:
        try:
            item = self._queue.get(timeout=IDLE_POLL_S)
        except queue.Empty:
            return
        while item is not _STOP:
            self._batch.append(item)
            if len(self._batch) >= self._batch_size:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break

    def _write_batch(self) -> bool:
        """Store the current batch; False (batch kept for a retry) when the database failed."""
        import psycopg

        try:
            conn = self._connection()
            rows = [record.row() for record in self._batch]
            inserted = self._insert(conn, rows)
        except psycopg.errors.IntegrityError as exc:
            self._reject_one_by_one(exc)
            return True
        except Exception as exc:  # noqa: BLE001 - the database is down or broke; keep the batch
            self._count("failures")
            report("writing feedback (kept for a retry)", exc)
            self._close_connection()
            return False
        self._batch = []
        with self._settled:
            self._counts["written"] += inserted
            self._counts["duplicates"] += len(rows) - inserted
            self._settled.notify_all()
        return True

    def _insert(self, conn: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        columns = {name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)}
        with conn.transaction():
            return conn.execute(insert_statement(), columns).rowcount

    def _reject_one_by_one(self, first: BaseException) -> None:
        """A row the database refuses must not hold back the others: write them singly."""
        batch, self._batch = self._batch, []
        for record in batch:
            try:
                inserted = self._insert(self._connection(), [record.row()])
            except Exception as exc:  # noqa: BLE001
                self._count("rejected")
                report("storing one piece of feedback (refused by the database)", exc)
                continue
            self._count("written" if inserted else "duplicates")

    def _connection(self) -> Any:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        from exporters.postgres.embedded import resolve_dsn
        from exporters.postgres.migrate import migrate
        from exporters.postgres.schema import connect, resolve_schema

        schema = resolve_schema(self._schema)
        dsn = self._dsn or resolve_dsn()
        conn = connect(dsn, schema)
        conn.autocommit = True
        if self._auto_migrate and not self._migrated:
            migrate(conn, schema)
            self._migrated = True
        self._conn = conn
        return conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None


_default: FeedbackWriter | None = None
_default_lock = threading.Lock()


def default_writer(settings: Callable[[], tuple[str | None, str | None]] | None = None) -> FeedbackWriter:
    """The process's writer, created on first use with ``settings()`` -> (dsn, schema)."""
    global _default
    writer = _default
    if writer is not None:
        return writer
    with _default_lock:
        if _default is None:
            dsn, schema = settings() if settings else (None, None)
            _default = FeedbackWriter(dsn, schema=schema)
            atexit.register(_default.shutdown, EXIT_FLUSH_S)
        return _default


def shutdown_default(timeout_s: float = 10.0) -> bool:
    """Flush and stop the process's writer (if one was created); a later use makes a new one."""
    global _default
    with _default_lock:
        writer, _default = _default, None
    if writer is None:
        return True
    atexit.unregister(writer.shutdown)
    return writer.shutdown(timeout_s)
