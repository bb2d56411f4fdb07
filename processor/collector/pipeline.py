"""From the write-ahead log to route observations in the exporter, and the checkpoint.

One worker thread reads logged requests in order, converts their spans
(:func:`~processor.collector.otlp.span_records`) and holds them in a
:class:`~processor.trace_inference.TraceBuffer` until each trace has likely arrived whole
(the agent span ends after the calls below it). Ready traces go through
:func:`~processor.trace_inference.derive_trace` and their observations to the exporter.

A record is done when every one of its spans has left the buffer and the observations
of those traces were accepted by the exporter (written, or in the exporter's own durable
spool). The checkpoint moves past a record only when it and every record before it are
done, so a crash replays at most what was not yet written, and replayed rows are
idempotent. While the exporter asks to retry later, the worker waits and retries the
same batch: records stay in the log, which fills up, and the receivers answer "retry
later" — the sender's queue becomes the buffer.

:meth:`Pipeline.stop` (SIGTERM) reads what is left in the log, hands out every held
trace, exports, persists the checkpoint and shuts the exporter down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Sequence

from exporters.base import ExportResult, ObservationExporter
from processor.collector.otlp import MalformedBody, span_records
from processor.collector.wal import Record, WriteAheadLog
from processor.derive import Pricer
from processor.observation import RouteObservation
from processor.trace_inference import SpanRecord, TraceBuffer, derive_trace

logger = logging.getLogger("otel_llm.collector")

#: Records read from the log per step.
READ_RECORDS = 64
#: Observations per ``export`` call.
EXPORT_BATCH = 2048
#: Seconds between checkpoint writes (it is also written at shutdown).
CHECKPOINT_INTERVAL_S = 1.0
#: Longest wait between two tries of a batch the exporter asked to retry.
MAX_RETRY_WAIT_S = 5.0


class Pipeline:
    """The worker between the log and the exporter; see the module docstring."""

    def __init__(
        self,
        wal: WriteAheadLog,
        exporter: ObservationExporter,
        *,
        buffer: TraceBuffer | None = None,
        capture_content: bool = False,
        pricer: Pricer | None = None,
        export_batch: int = EXPORT_BATCH,
    ) -> None:
        self.wal = wal
        self.exporter = exporter
        self.buffer = buffer if buffer is not None else TraceBuffer()
        self.capture_content = capture_content
        self.pricer = pricer
        self.export_batch = export_batch
        #: seq -> [spans of the record still held or being exported, bytes of the record]
        self._open: OrderedDict[int, list[int]] = OrderedDict()
        #: id(span) -> seq of its record, for spans in the buffer (bounded by it).
        self._owner: dict[int, int] = {}
        self._reader = wal.reader()
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_persist = time.monotonic()
        self._lock = threading.Lock()
        self._counts = {"spans_read": 0, "observations": 0, "malformed": 0, "ignored": 0,
                        "export_retries": 0, "export_failed": 0, "damaged_records": 0}

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        replay = self.wal.next_seq - self.wal.checkpoint
        if replay:
            logger.warning("otel-llm collect: %d logged requests after the checkpoint are read again "
                           "(rows already written are not counted twice)", replay)
        self._thread = threading.Thread(target=self._run, name="otel-llm-collect-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Drain: read the rest of the log, derive every held trace, export, checkpoint,
        shut the exporter down. True when everything acknowledged was written; what is
        not stays in the log for the next run."""
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        drained = True
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(5.0)
                drained = False
        self._advance_checkpoint(force=True)
        try:
            self.exporter.force_flush(max(1.0, deadline - time.monotonic()))
        finally:
            self.exporter.shutdown(max(1.0, deadline - time.monotonic()))
        self._reader.close()
        return drained and not self._open

    def stats(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._counts)
        out["spans_held"] = len(self.buffer)
        out["log_bytes"] = self.wal.pending_bytes
        return out

    # -- the worker -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._abandon.is_set():
            try:
                if self._step():
                    return
            except _Abandoned:
                return
            except Exception:  # noqa: BLE001 - the worker must outlive any failure
                logger.exception("otel-llm collect: pipeline step failed; retrying")
                time.sleep(0.5)

    def _step(self) -> bool:
        """One round; True when stopping and everything is drained."""
        stopping = self._stopping.is_set()
        wait = 0.0 if stopping else (0.05 if len(self.buffer) else 0.25)
        records = self._reader.read(READ_RECORDS, wait)
        for record in records:
            self._add(record)
        drained = stopping and not records and self._reader.next_seq >= self.wal.next_seq
        ready = self.buffer.take_ready(everything=drained)
        if ready:
            self._derive_and_export(ready)
        self._advance_checkpoint()
        return drained and not len(self.buffer)

    def _add(self, record: Record) -> None:
        try:
            spans = span_records(record.payload)
        except MalformedBody as exc:  # logged bodies decoded once already: damage on disk
            logger.error("otel-llm collect: logged request %d cannot be read (%s); skipped", record.seq, exc)
            self._count(damaged_records=1)
            spans = []
        self._open[record.seq] = [len(spans), record.size]
        if spans:
            owner = self._owner
            seq = record.seq
            for span in spans:
                owner[id(span)] = seq
            self.buffer.add(spans)
            self._count(spans_read=len(spans))

    def _derive_and_export(self, ready: list[tuple[list[SpanRecord], Any]]) -> None:
        observations: list[RouteObservation] = []
        malformed = ignored = 0
        for spans, _tokens in ready:
            try:
                result = derive_trace(spans, capture_content=self.capture_content, pricer=self.pricer)
            except Exception as exc:  # noqa: BLE001 - a trace that breaks derivation is skipped, not retried
                logger.error("otel-llm collect: a trace of %d spans could not be derived: %r", len(spans), exc)
                malformed += len(spans)
                continue
            observations.extend(result.observations)
            ignored += result.ignored
            if result.malformed:
                malformed += len(result.malformed)
                span, reason = result.malformed[0]
                logger.info("otel-llm collect: %d malformed call spans skipped, e.g. %s: %s",
                            len(result.malformed), span.name, reason)
        for start in range(0, len(observations), self.export_batch):
            self._export(observations[start:start + self.export_batch])
        self._count(malformed=malformed, ignored=ignored)
        open_records, owner = self._open, self._owner
        for spans, _tokens in ready:
            for span in spans:
                seq = owner.pop(id(span), None)
                if seq is not None:
                    open_records[seq][0] -= 1

    def _export(self, batch: Sequence[RouteObservation]) -> None:
        wait = 0.1
        while True:
            try:
                result = self.exporter.export(batch)
            except Exception as exc:  # noqa: BLE001 - the protocol says it must not raise; treat as retry
                logger.error("otel-llm collect: exporter raised %r; retrying", exc)
                result = ExportResult.RETRY
            if result is ExportResult.ACCEPTED:
                self._count(observations=len(batch))
                return
            if result is ExportResult.FAILED:
                self._count(export_failed=len(batch))
                logger.error("otel-llm collect: the exporter refused %d observations for good", len(batch))
                return
            self._count(export_retries=1)
            if self._abandon.wait(wait):
                raise _Abandoned
            wait = min(wait * 2, MAX_RETRY_WAIT_S)

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

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                if delta:
                    self._counts[name] += delta


class _Abandoned(Exception):
    """Raised out of a retry loop when :meth:`Pipeline.stop` gives up waiting."""
