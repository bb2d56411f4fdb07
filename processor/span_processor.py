"""The in-process span processor: provider-call spans -> route observations -> exporter.

:class:`RouteObservationProcessor` is an OpenTelemetry SDK ``SpanProcessor``. Its
``on_end`` runs on the application's thread, so it does only what cannot wait: a cheap
test that the span may be a provider call, and an append to a bounded queue. It never
blocks and never raises; when the queue is full the span is dropped and counted.

A background daemon thread takes spans off the queue, derives observations
(:func:`processor.derive.derive`) and hands them to the exporter in batches. The
``export`` call itself runs on a second daemon thread, one call at a time, while the
first derives the next batches (at most :data:`DERIVE_AHEAD_BATCHES` batches ahead,
counted as queued and kept within ``max_queue``): a database exporter spends much of a
batch waiting on its server (the COPY, the commit), and that time goes to derivation
rather than being lost. As soon as the export in flight is done, the next batch is
handed over. Each whole batch derived ahead is also handed to the exporter's optional
``prepare`` there (see :mod:`exporters.base`), so that the export thread, whose work is
the pipeline's critical path, only talks to the destination.

Derivation is pure Python and holds the interpreter lock, so while an export is in
flight the worker hands the lock over every few dozen spans (:mod:`processor.interpreter`):
the export thread, back from its database, then waits for it a fraction of a millisecond
rather than the interpreter's 5 ms switch interval each time.

Outcomes are handled in order, as if sequential:

- ``ACCEPTED``: counted as exported.
- ``RETRY`` (or the exporter raised): the batch is kept and retried with capped
  exponential back-off. While it is held, nothing more is taken off the queue, so the
  queue — and only the queue — keeps bounding memory.
- ``FAILED``: the batch is counted as dropped.

A span whose derivation fails is counted as skipped-malformed and logged (rate-limited);
the rest of its batch goes on. The SDK's ``BatchSpanProcessor`` is not used: it drops
silently when its worker falls behind, and it exports spans, not observations.

Counting. Every provider-call span ``on_end`` sees is *observed*; from then on it is in
exactly one place: queued, in the exporter's hands (*exported*), held for a retry,
*dropped*, or *skipped_malformed*. :meth:`~RouteObservationProcessor.stats` returns the
counts, and the same counts are OpenTelemetry observable instruments
(``otel_llm.processor.*``, one series per processor). Their callbacks only read numbers,
so collecting them never creates a span; the worker runs with instrumentation
suppressed, so an instrumented database driver inside the exporter cannot feed spans
back into the processor.

An exporter may expose ``stats()`` returning a mapping (or object) with ``spilled``
and ``dropped``: ``spilled`` is reported as is, and the exporter's ``dropped`` is added
to the processor's own. It is called from the metrics collection thread, so it must be
cheap and thread-safe.

After ``fork()`` the child starts with an empty queue, zero counts and its own worker;
the spans queued before the fork stay the parent's to export.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue as queue_module
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import metrics
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from exporters.base import ExportResult, ObservationExporter
from otel_llm import semconv
from otel_llm._safety import report
from processor.derive import MalformedSpan, Pricer, derive, is_candidate, span_attributes
from processor.interpreter import HAND_OVER_EVERY_SPANS, hand_over
from processor.observation import RouteObservation

DEFAULT_MAX_QUEUE = 8192
DEFAULT_BATCH_SIZE = 512
DEFAULT_FLUSH_INTERVAL_S = 1.0
#: How many batches the worker derives ahead while the exporter works (see the module docstring).
DERIVE_AHEAD_BATCHES = 4
DEFAULT_RETRY_INITIAL_S = 0.1
DEFAULT_RETRY_MAX_S = 5.0
#: After the shutdown timeout, how long to wait for a worker that is not stuck in the
#: exporter to finish giving up (it does so as soon as it is scheduled).
SHUTDOWN_GRACE_S = 5.0
#: A worker waiting on one exporter call for longer than this at shutdown is stuck there.
STUCK_AFTER_S = 0.25


@dataclass(frozen=True, slots=True)
class ProcessorStats:
    """What happened to the provider-call spans a processor has seen.

    ``observed == exported + dropped_by_processor + skipped_malformed + queued +
    retrying + in_flight`` at any quiet moment; ``dropped`` also includes what the
    exporter reports it lost after accepting it.
    """

    #: Provider-call spans ``on_end`` saw (including those then dropped).
    observed: int
    #: Observations the exporter accepted.
    exported: int
    #: Observations the exporter spilled to local disk (as the exporter reports).
    spilled: int
    #: Lost: queue full, ended after shutdown, refused by the exporter, given up at
    #: shutdown, plus what the exporter reports it dropped.
    dropped: int
    #: Spans that could not be derived (broken ids or times, or a derivation bug).
    skipped_malformed: int
    #: Spans waiting in the queue now.
    queued: int
    #: Observations held for an exporter retry now.
    retrying: int
    #: Observations being handed to the exporter right now.
    in_flight: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Counter:
    """A counter many threads may bump without a lock: ``next()`` on ``itertools.count`` is atomic."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count()

    def add(self) -> None:
        next(self._count)

    @property
    def value(self) -> int:
        return int(repr(self._count)[6:-1])  # "count(N)"


class _Flush:
    """A marker in the queue: everything before it has been handed over once it is done."""

    __slots__ = ("deadline", "done", "ok")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.done = threading.Event()
        self.ok = False


class _ExportCall:
    """One ``export`` handed to the export thread; ``done`` is set with its outcome."""

    __slots__ = ("batch", "result", "error", "done")

    def __init__(self, batch: Sequence[RouteObservation]) -> None:
        self.batch = batch
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class QueueFull(Exception):
    """Logged (rate-limited) when ``on_end`` drops a span because the queue is full."""


_ids = itertools.count(1)


class RouteObservationProcessor(SpanProcessor):
    """Derives route observations from ended spans and exports them from a background thread.

    :param exporter: where batches of observations go (see :mod:`exporters.base`).
    :param max_queue: spans held at most between ``on_end`` and derivation; beyond it
        spans are dropped and counted.
    :param batch_size: observations per ``export`` call at most.
    :param flush_interval_s: longest a span waits in the queue when traffic is light.
    :param capture_content: keep message content in ``attributes`` (off by default).
    :param pricer: computes costs the spans do not report (see :mod:`processor.derive`).
    :param retry_initial_s: first back-off after ``RETRY``; doubles up to ``retry_max_s``.
    """

    def __init__(
        self,
        exporter: ObservationExporter,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        capture_content: bool = False,
        pricer: Pricer | None = None,
        retry_initial_s: float = DEFAULT_RETRY_INITIAL_S,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
    ) -> None:
        if not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be a positive int, got {max_queue!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s!r}")
        if not 0 < retry_initial_s <= retry_max_s:
            raise ValueError("retry back-off needs 0 < retry_initial_s <= retry_max_s")
        self.id = str(next(_ids))
        self._exporter = exporter
        prepare = getattr(exporter, "prepare", None)
        self._exporter_prepare = prepare if callable(prepare) else None
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval_s = float(flush_interval_s)
        self._capture_content = capture_content
        self._pricer = pricer
        self._retry_initial_s = float(retry_initial_s)
        self._retry_max_s = float(retry_max_s)
        self._shutdown_lock = threading.Lock()
        self._reset_state()
        _registry.add(self)
        self._start_worker()

    # --- state (also re-created in a forked child) ---------------------------------------
    def _reset_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._shutdown = False
        self._stopping = False
        self._deadline = 0.0
        self._thread: threading.Thread | None = None
        self._export_thread: threading.Thread | None = None
        self._calls: queue_module.SimpleQueue[_ExportCall | None] = queue_module.SimpleQueue()
        #: Observations derived ahead (while the exporter works), in queue order: whole
        #: batches already prepared for the exporter (``_batches``, holding ``_batched``
        #: observations), then the start of the next one (``_ready``). They count as queued
        #: and, with the queue, stay within ``max_queue``.
        self._batches: deque[Sequence[RouteObservation]] = deque()
        self._batched = 0
        self._ready: list[RouteObservation] = []
        # Counted on application threads (lock-free).
        self._observed = _Counter()
        self._dropped_on_end = _Counter()
        # Counted on the worker thread only.
        self._exported = 0
        self._dropped_worker = 0
        self._skipped = 0
        self._in_flight = 0
        #: When the worker began waiting on the exporter (monotonic), or None.
        self._waiting_on_exporter_since: float | None = None
        self._pending: Sequence[RouteObservation] | None = None
        self._held: list[_Flush] = []
        self._retry_at = 0.0
        self._backoff = self._retry_initial_s

    def _start_worker(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"otel-llm-observations-{self.id}", daemon=True
        )
        self._export_thread = threading.Thread(
            target=self._run_exports, args=(self._calls,), name=f"otel-llm-export-{self.id}", daemon=True
        )
        self._export_thread.start()
        self._thread.start()

    def _after_fork_in_child(self) -> None:
        was_shut_down = self._shutdown
        self._shutdown_lock = threading.Lock()
        self._reset_state()
        self._shutdown = was_shut_down
        if not was_shut_down:
            self._start_worker()

    # --- SpanProcessor ---------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a provider-call span for the worker; a few microseconds, never blocks or raises."""
        try:
            if not is_candidate(span_attributes(span)):
                return
            self._observed.add()
            if self._shutdown:
                self._dropped_on_end.add()
                return
            queue = self._queue
            if len(queue) + len(self._ready) + self._batched >= self._max_queue:
                self._dropped_on_end.add()
                report("queueing a route observation", QueueFull(
                    f"the queue holds {self._max_queue} spans and the exporter is behind; span dropped"))
                return
            queue.append(span)
            if len(queue) >= self._batch_size and not self._wake.is_set():
                self._wake.set()
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            report("queueing a route observation", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Hand everything queued before this call to the exporter, then flush the exporter.

        True when that finished within the timeout and the exporter's own flush said so;
        False on timeout, after shutdown, or when called from the worker itself.
        """
        if self._shutdown or threading.current_thread() in (self._thread, self._export_thread):
            return False
        timeout_s = max(0.0, timeout_millis / 1000.0)
        marker = _Flush(time.monotonic() + timeout_s)
        self._queue.append(marker)
        self._wake.set()
        if not marker.done.wait(timeout_s):
            return False
        return marker.ok

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Export what is queued (within the timeout), stop the worker, shut the exporter down.

        Idempotent. Spans ending afterwards are dropped and counted; what is still
        undelivered when the timeout passes is counted as dropped.
        """
        with self._shutdown_lock:
            if self._shutdown:
                return
            self._shutdown = True
        timeout_s = max(0.0, timeout_millis / 1000.0)
        deadline = time.monotonic() + timeout_s
        self._deadline = deadline
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            # At the deadline the worker gives up on its own within moments; wait for that
            # unless it is stuck inside the exporter (waiting on one call for a while).
            grace_until = time.monotonic() + SHUTDOWN_GRACE_S
            while thread.is_alive() and time.monotonic() < grace_until and not self._stuck_in_exporter():
                thread.join(0.01)
            if not thread.is_alive():
                self._give_up()  # a span that ended while the worker was exiting
        try:
            self._exporter.shutdown(max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001
            report("shutting down the route observation exporter", exc)
        _registry.discard(self)

    def _stuck_in_exporter(self) -> bool:
        """Whether the worker has been waiting on one exporter call for longer than
        :data:`STUCK_AFTER_S` (a worker merely passing through one is not stuck)."""
        since = self._waiting_on_exporter_since
        return since is not None and time.monotonic() - since > STUCK_AFTER_S

    # --- counts ----------------------------------------------------------------------------
    def stats(self) -> ProcessorStats:
        """Current counts (cheap; safe from any thread)."""
        spilled, exporter_dropped = _exporter_counts(self._exporter)
        pending = self._pending
        return ProcessorStats(
            observed=self._observed.value,
            exported=self._exported,
            spilled=spilled,
            dropped=self._dropped_on_end.value + self._dropped_worker + exporter_dropped,
            skipped_malformed=self._skipped,
            queued=len(self._queue) + len(self._ready) + self._batched,
            retrying=len(pending) if pending is not None else 0,
            in_flight=self._in_flight,
        )

    # --- the worker ------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._run_worker()
        finally:
            self._calls.put(None)  # the export thread ends with the worker

    def _run_exports(self, calls: "queue_module.SimpleQueue[_ExportCall | None]") -> None:
        """The export thread: runs one ``export`` call at a time for the worker, so that the
        worker derives the next batch while the exporter waits on its database."""
        exporter = self._exporter
        with _suppressed_instrumentation():
            while True:
                call = calls.get()
                if call is None:
                    return
                try:
                    call.result = exporter.export(call.batch)
                except BaseException as exc:  # noqa: BLE001 - handed back to the worker
                    call.error = exc
                call.done.set()

    def _run_worker(self) -> None:
        with _suppressed_instrumentation():
            while True:
                self._wake.wait(self._wait_time())
                self._wake.clear()
                try:
                    self._work()
                except Exception as exc:  # noqa: BLE001 - the worker must outlive any bug
                    report("exporting route observations", exc)
                if self._stopping:
                    if self._pending is None and not self._queue and not self._ready and not self._batches:
                        break
                    if time.monotonic() >= self._deadline:
                        self._give_up()
                        break

    def _wait_time(self) -> float:
        wait = self._flush_interval_s
        now = time.monotonic()
        if self._pending is not None:
            wait = min(wait, self._retry_at - now)
        if self._stopping:
            wait = min(wait, self._deadline - now)
        return max(0.0, wait)

    def _work(self) -> None:
        while True:
            if self._pending is not None:
                if time.monotonic() < self._retry_at:
                    return
                held, self._pending = self._pending, None  # in flight now, not "retrying"
                if not self._export(held):
                    self._pending = held
                    return
                for marker in self._held:
                    self._complete(marker)
                self._held.clear()
            batch, marker = self._take()
            if batch and not self._export(batch):
                self._pending = batch
                if marker is not None:
                    self._held.append(marker)
                return
            if marker is not None:
                self._complete(marker)
            elif not self._queue and not self._ready and not self._batches:
                return

    def _take(self) -> tuple[Sequence[RouteObservation], _Flush | None]:
        """Up to ``batch_size`` spans off the queue, derived; stops at a flush marker.

        Observations derived ahead come first: they were queued before the rest.
        """
        if self._batches:
            batch = self._batches.popleft()
            self._batched -= len(batch)
            return batch, None
        # Derivation ahead moves every whole batch to ``_batches``: what is ready here is
        # the start of one batch at most.
        ready = self._ready
        batch = ready[:]
        ready.clear()
        queue = self._queue
        for _ in range(self._batch_size - len(batch)):
            try:
                item = queue.popleft()
            except IndexError:
                break
            if isinstance(item, _Flush):
                return batch, item
            observation = self._derive(item)
            if observation is not None:
                batch.append(observation)
        return batch, None

    def _derive(self, span: ReadableSpan) -> RouteObservation | None:
        try:
            observation = derive(span, capture_content=self._capture_content, pricer=self._pricer)
        except MalformedSpan as exc:
            self._skipped += 1
            report("deriving a route observation (malformed span skipped)", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a derivation bug loses one span, not the batch
            self._skipped += 1
            report("deriving a route observation (span skipped)", exc)
            return None
        if observation is None:  # passed the pre-filter but is not a provider call after all
            self._skipped += 1
        return observation

    def _derive_ahead(self, call: _ExportCall) -> None:
        """While the exporter works on ``call``: derive what is queued now, up to
        :data:`DERIVE_AHEAD_BATCHES` batches, stopping at a flush marker (which must see
        everything before it exported first) and as soon as ``call`` is done, so that the
        next batch goes to the export thread without waiting for derivation to stop."""
        ready, queue, size = self._ready, self._queue, self._batch_size
        limit = size * DERIVE_AHEAD_BATCHES
        done = call.done.is_set
        derived = 0
        while len(ready) + self._batched < limit and not self._stopping and not done():
            try:
                item = queue[0]
            except IndexError:
                return
            if isinstance(item, _Flush):
                return
            queue.popleft()  # only this thread takes from the left
            observation = self._derive(item)
            if observation is not None:
                ready.append(observation)
                if len(ready) >= size:
                    self._batches.append(self._prepare(ready[:]))
                    self._batched += len(ready)
                    ready.clear()
            derived += 1
            if derived % HAND_OVER_EVERY_SPANS == 0:
                hand_over()  # the export thread, back from its database, takes the lock now

    def _prepare(self, batch: list[RouteObservation]) -> Sequence[RouteObservation]:
        """The exporter's ``prepare`` of ``batch``, when it has one (see :mod:`exporters.base`)."""
        prepare = self._exporter_prepare
        if prepare is None:
            return batch
        try:
            return prepare(batch)
        except Exception as exc:  # noqa: BLE001 - the exporter then does the work itself
            report("preparing route observations for export", exc)
            return batch

    def _export(self, batch: Sequence[RouteObservation]) -> bool:
        """Hand ``batch`` to the exporter; False when it is to be retried later."""
        self._in_flight = len(batch)
        call = _ExportCall(batch)
        try:
            self._calls.put(call)
            self._derive_ahead(call)
            self._waiting_on_exporter_since = time.monotonic()
            call.done.wait()
            if call.error is not None:
                raise call.error
            result = call.result
        except Exception as exc:  # noqa: BLE001 - treated as RETRY, per the exporter protocol
            report("exporting route observations (will retry)", exc)
            result = ExportResult.RETRY
        finally:
            self._in_flight = 0
            self._waiting_on_exporter_since = None
        if result is ExportResult.ACCEPTED:
            self._exported += len(batch)
            self._backoff = self._retry_initial_s
            return True
        if result is ExportResult.RETRY:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2.0, self._retry_max_s)
            return False
        self._dropped_worker += len(batch)
        report("exporting route observations", RuntimeError(
            f"the exporter refused a batch of {len(batch)} observations ({result!r}); counted as dropped"))
        return True

    def _complete(self, marker: _Flush) -> None:
        ok = False
        remaining = marker.deadline - time.monotonic()
        if remaining > 0:
            self._waiting_on_exporter_since = time.monotonic()
            try:
                ok = bool(self._exporter.force_flush(remaining))
            except Exception as exc:  # noqa: BLE001
                report("flushing the route observation exporter", exc)
            finally:
                self._waiting_on_exporter_since = None
        marker.ok = ok
        marker.done.set()

    def _give_up(self) -> None:
        """Shutdown timed out: count what is left as dropped and release waiting flushes."""
        lost = len(self._pending) if self._pending is not None else 0
        self._pending = None
        lost += len(self._ready) + self._batched
        self._ready.clear()
        self._batches.clear()
        self._batched = 0
        markers = list(self._held)
        self._held.clear()
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            if isinstance(item, _Flush):
                markers.append(item)
            else:
                lost += 1
        self._dropped_worker += lost
        for marker in markers:
            marker.done.set()
        if lost:
            report("shutting down the route observation processor", RuntimeError(
                f"{lost} observations could not be exported before the shutdown timeout; counted as dropped"))


def _exporter_counts(exporter: Any) -> tuple[int, int]:
    """``(spilled, dropped)`` as the exporter reports them through ``stats()``, else zeros."""
    stats_fn = getattr(exporter, "stats", None)
    if not callable(stats_fn):
        return 0, 0
    try:
        stats = stats_fn()
    except Exception:  # noqa: BLE001
        return 0, 0

    def read(name: str) -> int:
        value = stats.get(name) if isinstance(stats, Mapping) else getattr(stats, name, None)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    return read("spilled"), read("dropped")


@contextlib.contextmanager
def _suppressed_instrumentation() -> Iterable[None]:
    """Instrumentation (of a database driver, an HTTP client) records nothing on the worker."""
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # pragma: no cover - opentelemetry-instrumentation is a dependency
        yield
        return
    with suppress_instrumentation():
        yield


# --- processors alive in this process: metrics and fork handling ------------------------------
class _Registry:
    """Live processors, for the observable instruments (created once) and ``fork()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: weakref.WeakSet[RouteObservationProcessor] = weakref.WeakSet()
        self._instruments_created = False
        self._fork_hook_installed = False

    def add(self, processor: RouteObservationProcessor) -> None:
        with self._lock:
            self._live.add(processor)
            if not self._fork_hook_installed and hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=self._after_fork_in_child)
                self._fork_hook_installed = True
            if not self._instruments_created:
                self._instruments_created = True
                try:
                    self._create_instruments()
                except Exception as exc:  # noqa: BLE001 - metrics are a bonus, never a failure
                    report("creating route observation processor metrics", exc)

    def discard(self, processor: RouteObservationProcessor) -> None:
        with self._lock:
            self._live.discard(processor)

    def processors(self) -> list[RouteObservationProcessor]:
        with self._lock:
            return list(self._live)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        for processor in list(self._live):
            try:
                processor._after_fork_in_child()
            except Exception as exc:  # noqa: BLE001
                report("restarting the route observation worker after fork", exc)

    def _create_instruments(self) -> None:
        meter = metrics.get_meter(semconv.INSTRUMENTATION_NAME)
        for name, field, description in (
            (semconv.METRIC_PROCESSOR_OBSERVED, "observed", "Provider-call spans the processor saw."),
            (semconv.METRIC_PROCESSOR_EXPORTED, "exported", "Route observations the exporter accepted."),
            (semconv.METRIC_PROCESSOR_SPILLED, "spilled", "Route observations spilled to local disk."),
            (semconv.METRIC_PROCESSOR_DROPPED, "dropped", "Route observations lost (queue full, refused, timed out)."),
            (semconv.METRIC_PROCESSOR_SKIPPED_MALFORMED, "skipped_malformed", "Spans too malformed to derive."),
        ):
            meter.create_observable_counter(
                name, callbacks=[self._callback(field)], unit="{span}", description=description
            )
        meter.create_observable_gauge(
            semconv.METRIC_PROCESSOR_QUEUE_SIZE, callbacks=[self._callback("queued")],
            unit="{span}", description="Spans waiting to be derived and exported.",
        )

    def _callback(self, field: str):  # type: ignore[no-untyped-def]
        def observe(options: metrics.CallbackOptions) -> list[metrics.Observation]:
            out = []
            for processor in self.processors():
                try:
                    value = getattr(processor.stats(), field)
                except Exception:  # noqa: BLE001
                    continue
                out.append(metrics.Observation(value, {semconv.OTEL_LLM_PROCESSOR_ID: processor.id}))
            return out

        return observe


_registry = _Registry()
