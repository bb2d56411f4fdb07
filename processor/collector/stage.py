"""Logged requests -> held traces -> observations in the exporter; which requests are done.

A :class:`Stage` converts the spans of each logged request
(:func:`~processor.collector.otlp.span_records`), holds them in a
:class:`~processor.trace_inference.TraceBuffer` until each trace has likely arrived whole
(the agent span ends after the calls below it), derives ready traces with
:func:`~processor.trace_inference.derive_trace` and hands the observations to the
exporter. :meth:`Stage.step` returns the requests that are *done*: every one of their
spans has left the buffer and the observations of those traces were accepted by the
exporter (written, or in the exporter's own durable spool). Only then may the log's
checkpoint move past them.

While the exporter asks to retry later, the stage waits and retries the same batch:
requests stay in the log, which fills up, and the receivers answer "retry later".
The same class runs in the collector's process or in a worker process of its own
(:mod:`processor.collector.shard`).

Exports run on a thread of the stage's own, in order, while the caller's thread derives
the next ready traces: a database exporter spends much of a batch waiting on its server,
and that time goes to derivation (which hands the interpreter lock over every few dozen
spans while an export is in flight, see :mod:`processor.interpreter`). At most
:data:`EXPORTS_AHEAD` derived batches wait for or are in that thread; beyond that
:meth:`Stage.step` waits, as it did when it exported itself, so memory stays bounded and
a slow database still slows the log's reader.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Sequence

from exporters.base import ExportResult, ObservationExporter
from processor.collector.otlp import MalformedBody, span_records
from processor.derive import Pricer
from processor.interpreter import HAND_OVER_EVERY_SPANS, hand_over
from processor.observation import RouteObservation
from processor.trace_inference import SpanRecord, TraceBuffer, derive_trace

logger = logging.getLogger("otel_llm.collector")

#: Observations per ``export`` call.
EXPORT_BATCH = 2048
#: Longest wait between two tries of a batch the exporter asked to retry.
MAX_RETRY_WAIT_S = 5.0
COUNTERS = ("spans_read", "observations", "malformed", "ignored", "export_retries", "export_failed",
            "damaged_records")


#: Derived batches that may wait for, or be in, the export thread.
EXPORTS_AHEAD = 2
#: How long a draining :meth:`Stage.step` waits for an export to finish before returning.
DRAIN_WAIT_S = 0.02


class Abandoned(Exception):
    """Raised out of a retry loop when the stage is told to give up (forced stop)."""


class _Job:
    """The observations of some ready traces, and those traces' spans (whose requests are
    done once the observations are exported)."""

    __slots__ = ("observations", "spans", "error")

    def __init__(self, observations: list[RouteObservation], spans: list[SpanRecord]) -> None:
        self.observations = observations
        self.spans = spans
        self.error: BaseException | None = None


class Stage:
    """See the module docstring. Not thread-safe: one thread drives it."""

    def __init__(self, exporter: ObservationExporter, *, buffer: TraceBuffer | None = None,
                 capture_content: bool = False, pricer: Pricer | None = None,
                 export_batch: int = EXPORT_BATCH, abandon: threading.Event | None = None) -> None:
        self.exporter = exporter
        self.buffer = buffer if buffer is not None else TraceBuffer()
        self.capture_content = capture_content
        self.pricer = pricer
        self.export_batch = export_batch
        self.abandon = abandon or threading.Event()
        #: seq -> spans of that request still held or being exported
        self._left: dict[int, int] = {}
        #: id(span) -> seq of its request, for spans in the buffer (bounded by it).
        self._owner: dict[int, int] = {}
        #: requests with no span left, reported by the next :meth:`step`
        self._done: list[int] = []
        self.counts = dict.fromkeys(COUNTERS, 0)
        #: jobs for the export thread (None: stop), a place for each job it may hold, the
        #: jobs it finished (in order), and an event set whenever it finishes one
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._places = threading.Semaphore(EXPORTS_AHEAD)
        self._finished: deque[_Job] = deque()
        self._finished_event = threading.Event()
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    @property
    def open_requests(self) -> int:
        return len(self._left)

    def add(self, seq: int, payload: bytes) -> None:
        """Take a logged request's spans."""
        try:
            spans = span_records(payload)
        except MalformedBody as exc:  # logged bodies decoded once already: damage on disk
            logger.error("otel-llm collect: logged request %d cannot be read (%s); skipped", seq, exc)
            self.counts["damaged_records"] += 1
            spans = []
        if not spans:
            self._done.append(seq)
            return
        self._left[seq] = len(spans)
        owner = self._owner
        for span in spans:
            owner[id(span)] = seq
        self.buffer.add(spans)
        self.counts["spans_read"] += len(spans)

    def step(self, *, everything: bool = False) -> list[int]:
        """Derive the traces ready now (all of them with ``everything``) and hand their
        observations to the export thread; the requests done since the last call.

        Raises :class:`Abandoned` when an export gave up on a forced stop.
        """
        self._collect_finished()
        ready = self.buffer.take_ready(everything=everything)
        if ready:
            observations = self._derive(ready)
            spans = [span for trace_spans, _tokens in ready for span in trace_spans]
            if observations:
                self._submit(_Job(observations, spans))
            else:
                self._release(spans)
        elif everything and self._in_flight:
            # Draining with nothing left to derive: wait a moment for the exports rather
            # than have the caller spin.
            self._finished_event.wait(DRAIN_WAIT_S)
        self._collect_finished()
        done, self._done = self._done, []
        return done

    def _release(self, spans: list[SpanRecord]) -> None:
        """These spans have left the stage: a request whose last span this was is done."""
        left, owner, done = self._left, self._owner, self._done
        for span in spans:
            seq = owner.pop(id(span), None)
            if seq is not None:
                left[seq] -= 1
                if not left[seq]:
                    del left[seq]
                    done.append(seq)

    def _submit(self, job: _Job) -> None:
        """Hand a job to the export thread, waiting while it holds :data:`EXPORTS_AHEAD`."""
        while not self._places.acquire(timeout=0.1):
            self._collect_finished()
            if self.abandon.is_set():
                raise Abandoned
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_exports, name="otel-llm-collect-export", daemon=True)
            self._thread.start()
        self._in_flight += 1
        self._jobs.put(job)

    def _collect_finished(self) -> None:
        """Release the spans of the jobs the export thread finished; re-raise a give-up."""
        finished = self._finished
        self._finished_event.clear()
        while finished:
            job = finished.popleft()
            self._in_flight -= 1
            if job.error is not None:
                raise job.error
            self._release(job.spans)

    def _run_exports(self) -> None:
        """The export thread: each job's observations, in order, in batches."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                observations = job.observations
                for start in range(0, len(observations), self.export_batch):
                    self._export(observations[start:start + self.export_batch])
            except BaseException as exc:  # noqa: BLE001 - Abandoned (or a bug): handed to step()
                job.error = exc
            self._finished.append(job)
            self._places.release()
            self._finished_event.set()

    def _derive(self, ready: Sequence[tuple[list[SpanRecord], Any]]) -> list[RouteObservation]:
        observations: list[RouteObservation] = []
        counts = self.counts
        since = 0
        for spans, _tokens in ready:
            since += len(spans)
            if since >= HAND_OVER_EVERY_SPANS and self._in_flight:
                hand_over()  # the export thread, back from its database, takes the lock now
                since = 0
            try:
                result = derive_trace(spans, capture_content=self.capture_content, pricer=self.pricer)
            except Exception as exc:  # noqa: BLE001 - a trace that breaks derivation is skipped, not retried
                logger.error("otel-llm collect: a trace of %d spans could not be derived: %r", len(spans), exc)
                counts["malformed"] += len(spans)
                continue
            observations.extend(result.observations)
            counts["ignored"] += result.ignored
            if result.malformed:
                counts["malformed"] += len(result.malformed)
                span, reason = result.malformed[0]
                logger.info("otel-llm collect: %d malformed call spans skipped, e.g. %r: %s",
                            len(result.malformed), span.name, reason)
        return observations

    def _export(self, batch: Sequence[RouteObservation]) -> None:
        wait = 0.1
        while True:
            if self._spool_filling():
                # Keep the batch's requests in the log rather than risk the spool's drops.
                self.counts["export_retries"] += 1
                self.exporter.force_flush(1.0)  # a replay attempt: back up means not down
                if self._spool_filling():
                    if self.abandon.wait(wait):
                        raise Abandoned
                    wait = min(wait * 2, MAX_RETRY_WAIT_S)
                    continue
            try:
                result = self.exporter.export(batch)
            except Exception as exc:  # noqa: BLE001 - the protocol says it must not raise; treat as retry
                logger.error("otel-llm collect: exporter raised %r; retrying", exc)
                result = ExportResult.RETRY
            if result is ExportResult.ACCEPTED:
                self.counts["observations"] += len(batch)
                return
            if result is ExportResult.FAILED:
                self.counts["export_failed"] += len(batch)
                logger.error("otel-llm collect: the exporter refused %d observations for good", len(batch))
                return
            self.counts["export_retries"] += 1
            if self.abandon.wait(wait):
                raise Abandoned
            wait = min(wait * 2, MAX_RETRY_WAIT_S)

    def _spool_filling(self) -> bool:
        """Whether the database is down and the exporter's spool is over half full.

        While the database is down the exporter spills batches to its spool and, once
        the spool is full, drops them — it cannot do better, it is the last stop. Here
        every batch still has its requests in the write-ahead log, so past half the
        spool's bound the stage stops handing batches over: the log fills up and the
        receivers tell senders to retry later, and nothing acknowledged is dropped.
        """
        if not getattr(self.exporter, "database_down", False):
            return False
        spool = getattr(self.exporter, "spool", None)
        try:
            return spool is not None and spool.size_bytes() * 2 > spool.max_bytes
        except (OSError, AttributeError, TypeError):
            return False

    def snapshot(self) -> dict[str, int]:
        """The counters, with the exporter's own (``exporter_spilled`` ...) when it keeps any."""
        out = dict(self.counts)
        stats = getattr(self.exporter, "stats", None)
        if callable(stats):
            try:
                out.update({f"exporter_{k}": v for k, v in stats().items() if isinstance(v, int)})
            except Exception:  # noqa: BLE001 - counters must never break the pipeline
                pass
        return out

    def close(self, timeout_s: float) -> None:
        """Let the export thread finish what it holds (within ``timeout_s``), then flush
        and shut the exporter down."""
        try:
            if self._thread is not None:
                self._jobs.put(None)
                self._thread.join(max(0.0, timeout_s))
            self.exporter.force_flush(max(1.0, timeout_s))
        finally:
            self.exporter.shutdown(max(1.0, timeout_s))


ExporterFactory = Callable[[], ObservationExporter]
