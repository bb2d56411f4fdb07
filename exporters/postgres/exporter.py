"""The PostgreSQL observation exporter: durable, idempotent, never raising, never stuck.

``export`` runs on the processor's worker thread. It writes the batch through
:class:`~exporters.postgres.writer.BatchWriter` (exactly-once rows plus rollups). When the
database cannot be reached, or fails for any reason that is not about the rows, the batch
is spilled to the local :class:`~exporters.postgres.spool.Spool` and ``export`` still
returns ``ACCEPTED``: from then on the batch is the exporter's to deliver. While the
database is down, batches go straight to the spool (no connect attempt, no timeout on
the worker) until the retry time; a background thread probes the database and replays
spilled batches oldest first when it is back. A batch the spool cannot hold (its byte
bound) is counted as dropped and logged, never silently lost.

The same background thread creates the coming days' partitions and, with
``retention_days``, drops partitions older than that, at most once an hour.

Counters (:meth:`PostgresExporter.stats`): ``exported`` (stored from live batches,
including rows that were already there), ``spilled``, ``replayed``, ``dropped``,
``skipped_malformed``, ``duplicates``, plus the spool's current size.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import psycopg

from exporters.base import ExportResult
from exporters.postgres.embedded import data_dir, redact_dsn, resolve_dsn
from exporters.postgres.migrate import migrate
from exporters.postgres.partitions import prune
from exporters.postgres.schema import STATEMENT_TIMEOUT_MS, connect, resolve_schema
from exporters.postgres.spool import Spool
from exporters.postgres.writer import BatchWriter, WritePlan, WriteResult
from otel_llm._safety import report
from processor.observation import RouteObservation

logger = logging.getLogger("otel_llm.postgres")

#: Default bound of the spool directory.
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
#: Environment variables read by :meth:`PostgresExporter.from_env`.
ENV_SPOOL_DIR = "OTEL_LLM_SPOOL_DIR"
ENV_SPOOL_MAX_BYTES = "OTEL_LLM_SPOOL_MAX_BYTES"
ENV_RETENTION_DAYS = "OTEL_LLM_RETENTION_DAYS"

#: Seconds between maintenance passes (partitions ahead, retention check).
MAINTENANCE_INTERVAL_S = 3600.0
#: Transient conflicts (deadlock, serialization) are retried this many times at once.
_TRANSIENT_RETRIES = 2


def default_spool_dir(schema: str, env: Mapping[str, str] | None = None) -> Path:
    """``OTEL_LLM_SPOOL_DIR``, else ``<otel-llm data dir>/spool/<schema>``."""
    env = os.environ if env is None else env
    configured = env.get(ENV_SPOOL_DIR)
    return Path(configured) if configured else data_dir(env) / "spool" / schema


class PostgresExporter:
    """Writes route observations to PostgreSQL; see the module docstring.

    ``dsn=None`` uses :func:`~exporters.postgres.embedded.resolve_dsn`: ``OTEL_LLM_DSN``,
    else the embedded server (started now if needed).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        schema: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        retention_days: float | None = None,
        auto_migrate: bool = True,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 15.0,
        replay_interval_s: float = 2.0,
        background: bool = True,
    ) -> None:
        self.schema = resolve_schema(schema)
        self.dsn = dsn if dsn is not None else resolve_dsn()
        self.spool = Spool(spool_dir if spool_dir is not None else default_spool_dir(self.schema),
                           spool_max_bytes)
        self.retention = timedelta(days=retention_days) if retention_days else None
        self._auto_migrate = auto_migrate
        self._statement_timeout_ms = statement_timeout_ms
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._replay_interval_s = replay_interval_s
        self._background = background

        self._db_lock = threading.RLock()
        self._counts_lock = threading.Lock()
        self._counts = {"exported": 0, "spilled": 0, "replayed": 0, "dropped": 0,
                        "skipped_malformed": 0, "duplicates": 0}
        self._conn: psycopg.Connection | None = None
        self._writer: BatchWriter | None = None
        self._migrated = False
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = retry_initial_s
        self._next_maintenance = 0.0
        self._spool_files = len(self.spool)
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        if self._spool_files:
            logger.warning("otel-llm: %d spilled batches found in %s; they will be replayed",
                           self._spool_files, self.spool.directory)
        self._start_thread()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "PostgresExporter":
        """An exporter configured from ``OTEL_LLM_DSN``, ``OTEL_LLM_SCHEMA``,
        ``OTEL_LLM_SPOOL_DIR``, ``OTEL_LLM_SPOOL_MAX_BYTES`` and ``OTEL_LLM_RETENTION_DAYS``."""
        env = os.environ if env is None else env
        schema = resolve_schema(overrides.get("schema"), env)
        kwargs: dict[str, Any] = {"schema": schema, "spool_dir": default_spool_dir(schema, env)}
        if overrides.get("dsn") is None:
            kwargs["dsn"] = resolve_dsn(env)  # may start the embedded server
        if env.get(ENV_SPOOL_MAX_BYTES):
            kwargs["spool_max_bytes"] = int(env[ENV_SPOOL_MAX_BYTES])
        if env.get(ENV_RETENTION_DAYS):
            kwargs["retention_days"] = float(env[ENV_RETENTION_DAYS])
        kwargs.update({k: v for k, v in overrides.items() if v is not None or k not in kwargs})
        return cls(**kwargs)

    # -- the exporter protocol -------------------------------------------------------
    def export(self, batch: Sequence[RouteObservation]) -> ExportResult:
        """Store ``batch`` (or spill it); never raises. ``FAILED`` only after shutdown."""
        if self._closed:
            return ExportResult.FAILED
        if not batch:
            return ExportResult.ACCEPTED
        try:
            self._check_fork()
            with self._db_lock:
                if self._spill_without_trying():
                    self._spill(batch)
                    return ExportResult.ACCEPTED
                try:
                    result = self._write(batch)
                except Exception as exc:  # noqa: BLE001 - anything not about the rows: keep the batch
                    self._failed(exc)
                    self._spill(batch)
                    return ExportResult.ACCEPTED
            self._count(exported=result.inserted + result.duplicates, duplicates=result.duplicates,
                        skipped_malformed=result.skipped_count)
            if self._spool_files:
                self._wake.set()
            return ExportResult.ACCEPTED
        except Exception as exc:  # noqa: BLE001 - e.g. the spool's disk failed; let the caller retry
            report("exporting route observations to PostgreSQL", exc)
            return ExportResult.RETRY

    def prepare(self, batch: Sequence[RouteObservation]) -> Sequence[RouteObservation]:
        """``batch`` with the Python work of writing it done ahead (see
        :meth:`BatchWriter.plan`), for :meth:`export` to pick up; ``batch`` itself when
        there is no connection yet. Called by the processor on its deriving thread while
        another batch is being exported: it touches no connection and never raises."""
        writer = self._writer
        if writer is None or not batch:
            return batch
        try:
            plan = writer.plan(batch)
        except Exception as exc:  # noqa: BLE001 - export does the work itself then
            report("preparing route observations for PostgreSQL", exc)
            return batch
        return batch if plan is None else PreparedBatch(batch, plan)

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Try to replay spilled batches within ``timeout_s``; True when none is left."""
        if self._closed:
            return not self._spool_files
        try:
            self._check_fork()
            self._replay(deadline=time.monotonic() + max(0.0, timeout_s), force=True)
        except Exception as exc:  # noqa: BLE001
            report("flushing the PostgreSQL exporter", exc)
        return self._spool_files == 0

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop the background thread, make a last replay attempt, close the connection.

        Batches still spilled stay on disk; the next exporter on this spool replays them.
        """
        if self._closed:
            return
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            if self._spool_files and os.getpid() == self._pid:
                self._replay(deadline=deadline, force=True)
        except Exception as exc:  # noqa: BLE001
            report("replaying spilled observations at shutdown", exc)
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)
        with self._db_lock:
            self._close_connection()
        if self._spool_files:
            logger.warning("otel-llm: %d spilled batches remain in %s; they will be replayed by the next run",
                           self._spool_files, self.spool.directory)

    # -- reading the state ------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counters and spool size; cheap and thread-safe (read by metric callbacks)."""
        with self._counts_lock:
            out = dict(self._counts)
        out["spool_files"] = self._spool_files
        return out

    @property
    def database_down(self) -> bool:
        """Whether the last attempt to use the database failed."""
        return self._down_since is not None

    # -- internals: writing -------------------------------------------------------------
    def _write(self, batch: Sequence[RouteObservation]) -> WriteResult:
        """Write through the current connection (connecting and migrating if needed)."""
        attempt = 0
        while True:
            writer = self._ensure_connected()
            try:
                result = writer.write(batch, getattr(batch, "plan", None))
            except psycopg.errors.UndefinedTable:
                # The schema was dropped or reset under us: migrate again, once.
                self._close_connection()
                self._migrated = False
                if attempt >= 1:
                    raise
                attempt += 1
                continue
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt >= _TRANSIENT_RETRIES:
                    raise
                attempt += 1
                continue
            except Exception:
                self._close_connection()
                raise
            self._mark_up()
            return result

    def _ensure_connected(self) -> BatchWriter:
        if self._conn is not None and not self._conn.closed and self._writer is not None:
            return self._writer
        self._close_connection()
        conn = connect(self.dsn, self.schema, statement_timeout_ms=self._statement_timeout_ms)
        try:
            if self._auto_migrate and not self._migrated:
                migrate(conn, self.schema)
            writer = BatchWriter(conn, self.schema)
            writer.prepare()
            writer.ensure_ahead(datetime.now(timezone.utc).date())
        except BaseException:
            conn.close()
            raise
        self._migrated = True
        self._conn, self._writer = conn, writer
        return writer

    def _close_connection(self) -> None:
        conn, self._conn, self._writer = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    # -- internals: outage handling --------------------------------------------------------
    def _spill_without_trying(self) -> bool:
        return self._down_since is not None and time.monotonic() < self._retry_at

    def _failed(self, exc: BaseException) -> None:
        """A write failed for a reason other than its rows.

        An unreachable or unavailable server puts the exporter in the "down" state
        (batches go straight to the spool until the retry time). Anything else (a
        permission, a broken schema) is reported, rate-limited, and the next batch tries
        the database again.
        """
        if is_unavailable(exc):
            self._mark_down(exc)
        else:
            report("writing route observations to PostgreSQL (the batch is kept in the spool)", exc)

    def _mark_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._backoff = self._retry_initial_s
            logger.warning("otel-llm: PostgreSQL (%s) is not usable: %s: %s; spilling batches to %s "
                           "until it is back", redact_dsn(self.dsn), type(exc).__name__,
                           _first_line(exc), self.spool.directory)
        else:
            self._backoff = min(self._backoff * 2.0, self._retry_max_s)
        self._retry_at = now + self._backoff

    def _mark_up(self) -> None:
        if self._down_since is not None:
            outage = time.monotonic() - self._down_since
            self._down_since = None
            self._backoff = self._retry_initial_s
            logger.warning("otel-llm: PostgreSQL (%s) is reachable again after %.1f s; %d spilled batches "
                           "to replay", redact_dsn(self.dsn), outage, self._spool_files)
            self._wake.set()

    def _spill(self, batch: Sequence[RouteObservation]) -> None:
        put = self.spool.put(batch)
        if put.stored:
            self._spool_files += 1 if put.observations else 0
            self._count(spilled=put.observations, skipped_malformed=put.malformed)
            return
        self._count(dropped=len(batch) - put.malformed, skipped_malformed=put.malformed)
        report("spilling route observations", RuntimeError(
            f"the spool {self.spool.directory} is full ({self.spool.max_bytes} bytes); a batch of "
            f"{len(batch)} observations was dropped"))

    def _replay(self, *, deadline: float | None = None, force: bool = False) -> None:
        """Replay spilled batches, oldest first, until done, the deadline, or a failure."""
        files = self.spool.files()
        self._spool_files = len(files)
        if not files:
            return
        if not force and self._spill_without_trying():
            return
        batches = observations = 0
        for path in files:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self._closed and not force:
                break
            with self._db_lock:
                with self.spool.claim(path) as spooled:
                    if spooled is None:
                        continue
                    try:
                        result = self._write(spooled.observations) if spooled.observations else WriteResult()
                    except Exception as exc:  # noqa: BLE001 - keep the file, try again later
                        self._failed(exc)
                        break
                    self.spool.remove(path)
            batches += 1
            stored = result.inserted + result.duplicates
            observations += stored
            self._count(replayed=stored, duplicates=result.duplicates,
                        skipped_malformed=result.skipped_count + spooled.malformed)
        self._spool_files = len(self.spool.files())
        if batches:
            logger.warning("otel-llm: replayed %d spilled batches (%d observations) into PostgreSQL; "
                           "%d batches left in the spool", batches, observations, self._spool_files)

    # -- internals: background thread --------------------------------------------------
    def _start_thread(self) -> None:
        if not self._background:
            return
        self._thread = threading.Thread(target=self._run, name="otel-llm-postgres", daemon=True)
        self._thread.start()

    def _check_fork(self) -> None:
        """After ``fork()`` the child gets its own connection, locks and thread."""
        if os.getpid() == self._pid:
            return
        self._pid = os.getpid()
        self._conn, self._writer = None, None  # the parent's socket: never touch it here
        self._db_lock = threading.RLock()
        self._counts_lock = threading.Lock()
        self._wake = threading.Event()
        self._start_thread()

    def _run(self) -> None:
        while not self._closed:
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                report("PostgreSQL exporter maintenance", exc)
            self._wake.wait(self._sleep_time())
            self._wake.clear()

    def _sleep_time(self) -> float:
        now = time.monotonic()
        wait = self._next_maintenance - now
        if self._spool_files:
            wait = min(wait, self._replay_interval_s)
            if self._down_since is not None:
                wait = min(wait, self._retry_at - now)
        return max(0.05, wait)

    def _tick(self) -> None:
        if self._spool_files or self.spool.files():
            self._replay()
        if time.monotonic() >= self._next_maintenance and not self._spill_without_trying():
            self.run_maintenance()

    def run_maintenance(self) -> None:
        """Create the coming days' partitions and apply retention now.

        The background thread calls this at most once per :data:`MAINTENANCE_INTERVAL_S`.
        """
        with self._db_lock:
            try:
                writer = self._ensure_connected()
                writer.ensure_ahead(datetime.now(timezone.utc).date())
                if self.retention is not None:
                    assert self._conn is not None
                    result = prune(self._conn, self.schema, datetime.now(timezone.utc) - self.retention)
                    if result.dropped_partitions:
                        writer.forget_partitions()
            except Exception as exc:  # noqa: BLE001
                self._close_connection()
                if is_unavailable(exc):
                    self._mark_down(exc)
                else:
                    report("PostgreSQL exporter maintenance", exc)
                self._next_maintenance = time.monotonic() + 60.0
                return
            self._mark_up()
        self._next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL_S

    def _count(self, **deltas: int) -> None:
        with self._counts_lock:
            for name, delta in deltas.items():
                if delta:
                    self._counts[name] += delta


class PreparedBatch(list):  # type: ignore[type-arg]
    """A batch of observations (a plain list of them) with its :class:`WritePlan`."""

    __slots__ = ("plan",)

    def __init__(self, batch: Sequence[RouteObservation], plan: WritePlan) -> None:
        super().__init__(batch)
        self.plan = plan


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the server cannot be used right now (down, unreachable,
    restarting, out of disk, timed out) rather than a problem with what was sent."""
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, OSError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
