"""RouteObservationProcessor end to end: spans through the SDK, observations into an exporter.

The exporters here are real in-memory exporters; the "outages" are exporters that really
block, refuse, ask for a retry or raise, as a database exporter does when its server is
slow or gone.
"""

from __future__ import annotations

import os
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext

from exporters.base import ExportResult, ObservationExporter
from otel_llm import llm_span, scope, semconv
from otel_llm.fallback import Target, fallback_chain
from otel_llm.tools import tool_span
from processor.derive import derive
from processor.span_processor import RouteObservationProcessor
from processor.testing import InMemoryObservationExporter
from tests.conftest import collect_points

QUIET = 60.0  # a flush interval long enough that only batch size, flush or shutdown move spans


class ProviderDown(Exception):
    pass


class GatedExporter(InMemoryObservationExporter):
    """Blocks inside ``export`` until the gate opens: a database that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def export(self, batch):
        self.entered.set()
        self.gate.wait()
        return super().export(batch)


class OutageExporter(InMemoryObservationExporter):
    """Fails the first ``failures`` calls (RETRY, or by raising), then accepts."""

    def __init__(self, failures: int, *, raise_instead: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.raise_instead = raise_instead
        self.calls = 0

    def export(self, batch):
        self.calls += 1
        if self.calls <= self.failures:
            if self.raise_instead:
                raise ConnectionError("database unreachable")
            return ExportResult.RETRY
        return super().export(batch)


class RefusingExporter(InMemoryObservationExporter):
    def export(self, batch):
        return ExportResult.FAILED


class ShutdownCountingExporter(InMemoryObservationExporter):
    def __init__(self) -> None:
        super().__init__()
        self.shutdowns = 0

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self.shutdowns += 1
        super().shutdown(timeout_s)


@pytest.fixture
def attach(tracer_provider):
    """Add processors to the session's TracerProvider for one test, then take them off."""
    attached: list[RouteObservationProcessor] = []

    def _attach(processor: RouteObservationProcessor) -> RouteObservationProcessor:
        tracer_provider.add_span_processor(processor)
        attached.append(processor)
        return processor

    yield _attach
    multi = tracer_provider._active_span_processor
    multi._span_processors = tuple(p for p in multi._span_processors if p not in attached)
    for processor in attached:
        processor.shutdown(timeout_millis=2000)


def chat(n: int = 1, **kwargs) -> None:
    for _ in range(n):
        with llm_span(provider="openai", model="gpt-4o-mini", **kwargs) as call:
            call.set_usage(input_tokens=10, output_tokens=2)


def accounted(stats) -> bool:
    """Every observed span is in exactly one place."""
    return stats.observed == (
        stats.exported + stats.dropped + stats.skipped_malformed + stats.queued + stats.retrying + stats.in_flight
    )


def test_the_exporter_protocol_is_met():
    assert isinstance(InMemoryObservationExporter(), ObservationExporter)


def test_every_provider_call_becomes_exactly_one_observation(attach, spans):
    exporter = InMemoryObservationExporter()
    processor = attach(RouteObservationProcessor(exporter, batch_size=7, flush_interval_s=QUIET))

    def answer(prompt):
        return {"id": "r"}

    with scope(agent="support", session="s-1", invoke_agent_span=True):
        for i in range(20):
            try:
                with llm_span(provider="openai", model="gpt-4o-mini", stream=i % 2 == 0) as call:
                    if i % 5 == 0:
                        raise ProviderDown("503")
                    call.first_chunk()
                    call.set_usage(input_tokens=i, output_tokens=1)
            except ProviderDown:
                pass
        with tool_span("lookup"):
            pass
        fallback_chain("answer", [
            Target("openai", "gpt-4o", call=lambda p: (_ for _ in ()).throw(ProviderDown("429"))),
            Target("anthropic", "claude-3-5-haiku", call=lambda p: (_ for _ in ()).throw(ProviderDown("529"))),
            Target("ollama", "llama3.2", call=answer),
        ], record_response=False).run("hi")

    assert processor.force_flush(10_000) is True
    calls = [s for s in spans.get_finished_spans() if derive(s) is not None]
    assert len(calls) == 23  # 20 calls + 3 attempts; not the agent, tool or chain spans
    observations = exporter.observations
    assert len(observations) == 23
    by_id = {(o.trace_id, o.span_id): o for o in observations}
    assert len(by_id) == 23
    for span in calls:
        assert by_id[(format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"))] == derive(span)
    assert sum(not o.ok for o in observations) == 4 + 2
    stats = processor.stats()
    assert (stats.observed, stats.exported, stats.dropped, stats.skipped_malformed, stats.queued) == (23, 23, 0, 0, 0)
    assert exporter.batches >= 4  # batches of at most 7


def test_spans_that_are_not_provider_calls_are_not_even_queued(attach, spans):
    exporter = InMemoryObservationExporter()
    processor = attach(RouteObservationProcessor(exporter, flush_interval_s=QUIET))
    tracer = trace.get_tracer("tests.app")
    with scope(agent="a", invoke_agent_span=True):
        with tool_span("search"):
            pass
        with tracer.start_as_current_span("GET /orders", attributes={"http.request.method": "GET"}):
            pass
    assert processor.force_flush(5_000) is True
    assert processor.stats().observed == 0
    assert exporter.observations == []


def test_force_flush_hands_over_what_was_queued_before_it(attach):
    exporter = InMemoryObservationExporter()
    processor = attach(RouteObservationProcessor(exporter, batch_size=10_000, flush_interval_s=QUIET))
    chat(5)
    assert processor.stats().queued == 5
    assert processor.force_flush(10_000) is True
    assert len(exporter.observations) == 5
    assert processor.stats().queued == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(attach):
    exporter = GatedExporter()
    processor = attach(RouteObservationProcessor(exporter, max_queue=5, batch_size=2, flush_interval_s=QUIET))
    chat(2)  # one batch: the worker takes it and blocks in the exporter
    assert exporter.entered.wait(10)
    chat(12)  # the application keeps going: 5 queue up, 7 are dropped
    stats = processor.stats()
    assert (stats.observed, stats.in_flight, stats.queued, stats.dropped) == (14, 2, 5, 7)
    assert accounted(stats)

    exporter.gate.set()
    assert processor.force_flush(10_000) is True
    stats = processor.stats()
    assert (stats.exported, stats.dropped, stats.queued, stats.in_flight) == (7, 7, 0, 0)
    assert len(exporter.observations) == 7
    assert accounted(stats)


@pytest.mark.parametrize("raise_instead", [False, True], ids=["retry", "raises"])
def test_an_outage_then_recovery_loses_nothing(attach, raise_instead):
    exporter = OutageExporter(failures=3, raise_instead=raise_instead)
    processor = attach(RouteObservationProcessor(
        exporter, batch_size=4, flush_interval_s=QUIET, retry_initial_s=0.01, retry_max_s=0.05))
    chat(10)  # the application never sees the exporter's trouble
    assert processor.force_flush(10_000) is True
    observations = exporter.observations
    assert len(observations) == 10
    assert len({o.span_id for o in observations}) == 10
    assert exporter.calls >= 3 + 3  # three failed attempts, then three batches
    stats = processor.stats()
    assert (stats.exported, stats.dropped, stats.retrying) == (10, 0, 0)


def test_while_a_batch_waits_for_a_retry_the_queue_still_bounds_memory(attach):
    exporter = OutageExporter(failures=10**9)
    processor = attach(RouteObservationProcessor(
        exporter, max_queue=8, batch_size=4, flush_interval_s=QUIET, retry_initial_s=0.01, retry_max_s=0.02))
    chat(4)  # taken as one batch, refused, held for retry
    chat(30)
    stats = processor.stats()
    assert stats.queued <= 8
    assert stats.observed == 34
    assert processor.force_flush(200) is False  # cannot flush while the exporter refuses


def test_an_exporter_that_never_recovers_is_given_up_at_shutdown_and_counted(attach):
    exporter = OutageExporter(failures=10**9, raise_instead=True)
    processor = attach(RouteObservationProcessor(
        exporter, batch_size=3, flush_interval_s=QUIET, retry_initial_s=0.01, retry_max_s=0.02))
    chat(7)
    processor.shutdown(timeout_millis=300)
    stats = processor.stats()
    assert (stats.observed, stats.exported, stats.dropped, stats.queued, stats.retrying) == (7, 0, 7, 0, 0)


def test_refused_batches_are_counted_as_dropped(attach):
    exporter = RefusingExporter()
    processor = attach(RouteObservationProcessor(exporter, flush_interval_s=QUIET))
    chat(6)
    assert processor.force_flush(10_000) is True
    stats = processor.stats()
    assert (stats.observed, stats.exported, stats.dropped) == (6, 0, 6)


def test_shutdown_exports_the_queue_once_and_is_idempotent(attach):
    exporter = ShutdownCountingExporter()
    processor = attach(RouteObservationProcessor(exporter, batch_size=1000, flush_interval_s=QUIET))
    chat(3)
    processor.shutdown()
    processor.shutdown()
    assert exporter.shutdowns == 1
    assert len(exporter.observations) == 3

    chat(2)  # after shutdown: dropped, counted, never raised
    stats = processor.stats()
    assert (stats.observed, stats.exported, stats.dropped) == (5, 3, 2)
    assert processor.force_flush(1_000) is False


def test_a_malformed_span_is_skipped_and_the_rest_of_its_batch_arrives(spans):
    exporter = InMemoryObservationExporter()
    processor = RouteObservationProcessor(exporter, batch_size=100, flush_interval_s=QUIET)
    try:
        chat(2)
        good = list(spans.get_finished_spans())
        broken = ReadableSpan(
            name="chat gpt-4o",
            context=SpanContext(trace_id=0x5, span_id=0x6, is_remote=False),
            attributes={semconv.GEN_AI_OPERATION_NAME: "chat"},
            start_time=None,  # never started: no usable time
            end_time=None,
        )
        for span in (good[0], broken, good[1]):
            processor.on_end(span)
        assert processor.force_flush(10_000) is True
        assert len(exporter.observations) == 2
        stats = processor.stats()
        assert (stats.observed, stats.exported, stats.skipped_malformed) == (3, 2, 1)
    finally:
        processor.shutdown()


def test_on_end_never_raises_even_for_a_span_it_cannot_read():
    class Unreadable:
        @property
        def attributes(self):
            raise RuntimeError("torn span")

    processor = RouteObservationProcessor(InMemoryObservationExporter(), flush_interval_s=QUIET)
    try:
        processor.on_end(Unreadable())  # must not raise
        assert processor.stats().observed == 0
    finally:
        processor.shutdown()


def test_many_application_threads_are_all_counted(attach):
    exporter = InMemoryObservationExporter()
    processor = attach(RouteObservationProcessor(exporter, max_queue=100_000, flush_interval_s=QUIET))
    threads = [threading.Thread(target=chat, args=(150,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert processor.force_flush(30_000) is True
    stats = processor.stats()
    assert (stats.observed, stats.exported, stats.dropped) == (1200, 1200, 0)
    assert len(exporter.observations) == 1200


def test_counts_are_opentelemetry_metrics(attach, metric_reader):
    exporter = RefusingExporter()
    processor = attach(RouteObservationProcessor(exporter, flush_interval_s=QUIET))
    chat(4)
    assert processor.force_flush(10_000) is True

    def value(name):
        points = [p for p in collect_points(metric_reader, name)
                  if p.attributes.get(semconv.OTEL_LLM_PROCESSOR_ID) == processor.id]
        assert len(points) == 1, name
        return points[0].value

    assert value(semconv.METRIC_PROCESSOR_OBSERVED) == 4
    assert value(semconv.METRIC_PROCESSOR_EXPORTED) == 0
    assert value(semconv.METRIC_PROCESSOR_DROPPED) == 4
    assert value(semconv.METRIC_PROCESSOR_SKIPPED_MALFORMED) == 0
    assert value(semconv.METRIC_PROCESSOR_SPILLED) == 0
    assert value(semconv.METRIC_PROCESSOR_QUEUE_SIZE) == 0


def test_an_exporters_own_spill_and_drop_counts_are_reported(attach):
    class SpoolingExporter(InMemoryObservationExporter):
        def stats(self):
            return {"spilled": 11, "dropped": 2}

    processor = attach(RouteObservationProcessor(SpoolingExporter(), flush_interval_s=QUIET))
    stats = processor.stats()
    assert (stats.spilled, stats.dropped) == (11, 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_clean_and_exports_its_own_spans(attach):
    exporter = InMemoryObservationExporter()
    processor = attach(RouteObservationProcessor(exporter, batch_size=1000, flush_interval_s=QUIET))
    chat(3)  # queued in the parent, not yet exported
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            before = processor.stats()
            chat(2)
            flushed = processor.force_flush(10_000)
            ok = (before.observed, before.queued) == (0, 0) and flushed and len(exporter.observations) == 2
            os.write(write_end, b"ok" if ok else f"bad {before} {flushed} {len(exporter.observations)}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    answer = os.read(read_end, 1000).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert answer == "ok"
    assert processor.force_flush(10_000) is True
    assert len(exporter.observations) == 3


class PreparingExporter(InMemoryObservationExporter):
    """Offers ``prepare`` (see exporters.base) and records which batches it was given prepared.

    From the second ``export`` on, it waits until a batch has been prepared: a database
    busy with one batch while the processor derives and prepares the next.
    """

    class Prepared(list):
        pass

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.prepared = threading.Event()
        self.calls = 0
        self.kinds: list[str] = []

    def prepare(self, batch):
        self.prepared.set()
        if self.fail:
            raise ValueError("cannot prepare")
        return self.Prepared(batch)

    def export(self, batch):
        self.calls += 1
        if self.calls >= 2:
            self.prepared.wait(5)
        self.kinds.append("prepared" if isinstance(batch, self.Prepared) else "plain")
        return super().export(batch)


@pytest.mark.parametrize("fail", [False, True], ids=["prepared", "prepare-raises"])
def test_batches_derived_ahead_are_prepared_by_the_exporter_and_arrive_in_order(spans, fail):
    for _ in range(20):
        chat()
    ended = list(spans.get_finished_spans())
    exporter = PreparingExporter(fail=fail)
    processor = RouteObservationProcessor(exporter, batch_size=5, flush_interval_s=QUIET)
    try:
        for span in ended:
            processor.on_end(span)
        assert processor.force_flush(10_000) is True
        got = [(o.trace_id, o.span_id) for o in exporter.observations]
        assert got == [(o.trace_id, o.span_id) for o in map(derive, ended)]  # each once, in order
        stats = processor.stats()
        assert stats.exported == 20 and stats.dropped == 0 and accounted(stats)
        assert exporter.prepared.is_set()
        if fail:
            assert set(exporter.kinds) == {"plain"}  # exported as they are
        else:
            assert "prepared" in exporter.kinds
    finally:
        processor.shutdown(2000)
