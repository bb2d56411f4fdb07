"""From the write-ahead log to the stages, and the checkpoint.

One thread reads logged requests in order and hands them to a
:class:`~processor.collector.stage.Stage` — in this process, or, with ``workers > 1``,
split by trace id across worker processes (:mod:`processor.collector.shard`). A request
is done when every part of it is done (its spans exported); the checkpoint moves past a
request only when it and every request before it are done, so a crash replays at most
what was not yet written, and replayed rows are idempotent by ``(trace_id, span_id)``.

:meth:`Pipeline.stop` (SIGTERM) reads what is left in the log, has every held trace
derived and exported, persists the checkpoint and shuts the exporters down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import wait as wait_for_pipes


from exporters.base import ObservationExporter
from processor.collector.otlp import MalformedBody, split_by_trace
from processor.collector.shard import WorkerDied, WorkerHandle
from processor.collector.stage import COUNTERS, Abandoned, Stage
from processor.collector.wal import Record, WriteAheadLog
from processor.derive import Pricer
from processor.trace_inference import TraceBuffer

logger = logging.getLogger("otel_llm.collector")

#: Records read from the log per step.
READ_RECORDS = 64
#: Seconds between checkpoint writes (it is also written at shutdown).
CHECKPOINT_INTERVAL_S = 1.0


class Pipeline:
    """See the module docstring. ``workers`` > 1 needs picklable factories."""

    def __init__(
        self,
        wal: WriteAheadLog,
        exporter_factory: Callable[[], ObservationExporter],
        *,
        workers: int = 1,
        hold_s: float = 5.0,
        max_held_spans: int = 100_000,
        capture_content: bool = False,
        pricer_factory: Callable[[], Pricer | None] | None = None,
    ) -> None:
        self.wal = wal
        self._abandon = threading.Event()
        self._stopping = threading.Event()
        self._workers: list[WorkerHandle] = []
        self._stage: Stage | None = None
        self._settings = dict(hold_s=hold_s, max_spans=max(1, max_held_spans // max(1, workers)),
                              capture_content=capture_content, log_level=logger.getEffectiveLevel())
        self._factories = (exporter_factory, pricer_factory)
        self._worker_count = max(1, workers)
        #: seq -> [parts not yet done, bytes of the record]
        self._open: OrderedDict[int, list[int]] = OrderedDict()
        self._reader = wal.reader()
        self._thread: threading.Thread | None = None
        self._last_persist = time.monotonic()
        self._finishing = False
        #: Why the pipeline stopped on its own (a worker died), else None.
        self.failure: str | None = None

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        exporter_factory, pricer_factory = self._factories
        if self._worker_count == 1:
            s = self._settings
            self._stage = Stage(exporter_factory(), buffer=TraceBuffer(hold_s=s["hold_s"], max_spans=s["max_spans"]),
                                capture_content=s["capture_content"],
                                pricer=pricer_factory() if pricer_factory is not None else None,
                                abandon=self._abandon)
        else:
            self._workers = [WorkerHandle(i, exporter_factory, pricer_factory, self._settings)
                             for i in range(self._worker_count)]
        replay = self.wal.next_seq - self.wal.checkpoint
        if replay:
            logger.warning("otel-llm collect: %d logged requests after the checkpoint are read again "
                           "(rows already written are not counted twice)", replay)
        self._thread = threading.Thread(target=self._run, name="otel-llm-collect-pipeline", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Drain (see the module docstring). True when everything acknowledged was written;
        what was not stays in the log for the next run."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(5.0)
        self._advance_checkpoint(force=True)
        if self._stage is not None:
            self._stage.close(max(1.0, deadline - time.monotonic()))
        for worker in self._workers:
            worker.kill()
        self._reader.close()
        return not self._open and self.failure is None and self._reader.next_seq >= self.wal.next_seq

    def stats(self) -> dict[str, int]:
        if self._stage is not None:
            out = self._stage.snapshot()
            held = len(self._stage.buffer)
        else:
            out = dict.fromkeys(COUNTERS, 0)
            for worker in self._workers:
                for key, value in worker.counts.items():
                    out[key] = out.get(key, 0) + value
            held = sum(worker.held for worker in self._workers)
        out["spans_held"] = held
        out["log_bytes"] = self.wal.pending_bytes
        return out

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._abandon.is_set():
            try:
                if self._step():
                    return
            except Abandoned:
                return
            except WorkerDied as exc:
                self.failure = str(exc)
                logger.error("otel-llm collect: %s; stopping (what it had not written is read again "
                             "from the log at the next start)", exc)
                return
            except Exception:  # noqa: BLE001 - the pipeline must outlive any failure
                logger.exception("otel-llm collect: pipeline step failed; retrying")
                time.sleep(0.5)

    def _step(self) -> bool:
        """One round; True when stopping and everything is drained."""
        stopping = self._stopping.is_set()
        local = self._stage is not None
        if stopping:
            wait = 0.0
        elif local:
            wait = 0.05 if len(self._stage.buffer) else 0.25  # type: ignore[union-attr]
        else:
            wait = 0.02
        records = self._reader.read(READ_RECORDS, wait)
        for record in records:
            self._submit(record)
        log_drained = stopping and not records and self._reader.next_seq >= self.wal.next_seq
        if local:
            done = self._stage.step(everything=log_drained)  # type: ignore[union-attr]
            finished = log_drained and not self._stage.open_requests  # type: ignore[union-attr]
        else:
            if log_drained and not self._finishing:
                for worker in self._workers:
                    worker.finish()
                self._finishing = True
            done = self._from_workers(0.0 if records else 0.03)
            finished = self._finishing and all(worker.stopped for worker in self._workers)
        for seq in done:
            entry = self._open.get(seq)
            if entry is not None:
                entry[0] -= 1
        self._advance_checkpoint()
        return finished

    def _submit(self, record: Record) -> None:
        if self._stage is not None:
            self._open[record.seq] = [1, record.size]
            self._stage.add(record.seq, record.payload)
            return
        try:
            parts = split_by_trace(record.payload, len(self._workers))
        except MalformedBody as exc:
            logger.error("otel-llm collect: logged request %d cannot be read (%s); skipped", record.seq, exc)
            parts = []
        sent = 0
        for worker, part in zip(self._workers, parts):
            if part is not None:
                worker.send(record.seq, part)
                sent += 1
        self._open[record.seq] = [sent, record.size]

    def _from_workers(self, timeout_s: float) -> list[int]:
        if timeout_s:
            wait_for_pipes([w.conn for w in self._workers], timeout_s)
        done: list[int] = []
        for worker in self._workers:
            done.extend(worker.receive())
            if not worker.stopped and not worker.process.is_alive():
                done.extend(worker.receive())
                if not worker.stopped:
                    raise WorkerDied(f"worker process {worker.index} exited with code {worker.process.exitcode}")
        return done

    def _advance_checkpoint(self, force: bool = False) -> None:
        open_records = self._open
        released = 0
        moved = False
        while open_records:
            seq, (left, size) = next(iter(open_records.items()))
            if left > 0:
                break
            open_records.popitem(last=False)
            released += size
            moved = True
        if moved or force:
            next_seq = next(iter(open_records)) if open_records else self._reader.next_seq
            self.wal.release(next_seq, released)
        now = time.monotonic()
        if force or now - self._last_persist >= CHECKPOINT_INTERVAL_S:
            self.wal.persist()
            self._last_persist = now


