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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Sequence

from exporters.base import ExportResult, ObservationExporter
from processor.collector.otlp import MalformedBody, span_records
from processor.derive import Pricer
from processor.observation import RouteObservation
from processor.trace_inference import SpanRecord, TraceBuffer, derive_trace

logger = logging.getLogger("otel_llm.collector")

#: Observations per ``export`` call.
EXPORT_BATCH = 2048
#: Longest wait between two tries of a batch the exporter asked to retry.
MAX_RETRY_WAIT_S = 5.0
COUNTERS = ("spans_read", "observations", "malformed", "ignored", "export_retries", "export_failed",
            "damaged_records")


class Abandoned(Exception):
    """Raised out of a retry loop when the stage is told to give up (forced stop)."""


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
        """Derive and export the traces ready now (all of them with ``everything``);
        the requests done since the last call."""
        ready = self.buffer.take_ready(everything=everything)
        if ready:
            self._derive_and_export(ready)
            left, owner, done = self._left, self._owner, self._done
            for spans, _tokens in ready:
                for span in spans:
                    seq = owner.pop(id(span), None)
                    if seq is not None:
                        left[seq] -= 1
                        if not left[seq]:
                            del left[seq]
                            done.append(seq)
        done, self._done = self._done, []
        return done

    def _derive_and_export(self, ready: Sequence[tuple[list[SpanRecord], Any]]) -> None:
        observations: list[RouteObservation] = []
        counts = self.counts
        for spans, _tokens in ready:
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
        for start in range(0, len(observations), self.export_batch):
            self._export(observations[start:start + self.export_batch])

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
        """Flush and shut the exporter down."""
        try:
            self.exporter.force_flush(max(1.0, timeout_s))
        finally:
            self.exporter.shutdown(max(1.0, timeout_s))


ExporterFactory = Callable[[], ObservationExporter]
