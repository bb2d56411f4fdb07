"""The collector's stage: exports run on a thread of their own, in order, bounded, and a
request is done only once the observations of its spans are exported."""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from exporters.base import ExportResult
from processor.collector import stage as stage_module
from processor.collector.stage import Abandoned, Stage
from processor.testing import InMemoryObservationExporter
from processor.trace_inference import TraceBuffer


def payload(trace: int, calls: int = 1) -> bytes:
    """One request: ``calls`` chat spans of one trace."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    start = time.time_ns()
    for i in range(calls):
        span = spans.add(trace_id=trace.to_bytes(16, "big"), span_id=(trace * 100 + i + 1).to_bytes(8, "big"),
                         name="chat gpt-4o-mini", kind=3, start_time_unix_nano=start,
                         end_time_unix_nano=start + 1_000_000)
        span.attributes.extend([KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini"))])
    return request.SerializeToString()


class GatedExporter(InMemoryObservationExporter):
    """Accepts a batch only once the gate is open; answers RETRY while ``retry`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.retry = False
        self.calls = 0

    def export(self, batch):
        self.calls += 1
        self.gate.wait()
        return ExportResult.RETRY if self.retry else super().export(batch)


def make_stage(exporter) -> Stage:
    return Stage(exporter, buffer=TraceBuffer(hold_s=0.0))


def drain(stage: Stage, until: int, timeout_s: float = 10.0) -> list[int]:
    done: list[int] = []
    deadline = time.monotonic() + timeout_s
    while len(done) < until and time.monotonic() < deadline:
        done += stage.step(everything=True)
    return done


def test_a_request_is_done_only_after_its_observations_are_exported():
    exporter = GatedExporter()
    stage = make_stage(exporter)
    stage.add(1, payload(1, calls=2))
    assert stage.step(everything=True) == []  # derived and handed over; the export waits
    assert stage.open_requests == 1 and exporter.observations == []
    exporter.gate.set()
    assert drain(stage, 1) == [1]
    assert len(exporter.observations) == 2 and stage.open_requests == 0
    assert stage.counts["observations"] == 2
    stage.close(5.0)
    assert exporter.is_shut_down


def test_exports_keep_the_order_of_the_requests():
    exporter = GatedExporter()
    exporter.gate.set()
    stage = make_stage(exporter)
    done: list[int] = []
    for seq in range(1, 6):
        stage.add(seq, payload(seq))
        done += stage.step()
    done += drain(stage, 5 - len(done))
    assert sorted(done) == [1, 2, 3, 4, 5]
    assert [o.trace_id for o in exporter.observations] == [f"{t:032x}" for t in range(1, 6)]
    stage.close(5.0)


def test_a_request_without_calls_is_done_at_once():
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=(7).to_bytes(16, "big"), span_id=(7).to_bytes(8, "big"), name="GET /", kind=2,
        start_time_unix_nano=1, end_time_unix_nano=2)
    exporter = GatedExporter()  # closed: nothing may wait for it
    stage = make_stage(exporter)
    stage.add(7, request.SerializeToString())
    assert stage.step(everything=True) == [7]
    assert exporter.calls == 0


def test_the_stage_waits_while_the_exporter_holds_as_many_batches_as_allowed():
    exporter = GatedExporter()
    stage = make_stage(exporter)
    for seq in range(1, stage_module.EXPORTS_AHEAD + 1):
        stage.add(seq, payload(seq))
        stage.step()
    stage.add(99, payload(99))
    returned = threading.Event()
    done: list[int] = []
    thread = threading.Thread(target=lambda: (done.extend(stage.step()), returned.set()), daemon=True)
    thread.start()
    assert not returned.wait(0.3)  # no place for a third batch: the caller waits
    assert exporter.calls == 1
    exporter.gate.set()
    assert returned.wait(10.0)
    thread.join()
    done += drain(stage, stage_module.EXPORTS_AHEAD + 1 - len(done))
    assert sorted(done) == [*range(1, stage_module.EXPORTS_AHEAD + 1), 99]
    stage.close(5.0)


def test_a_forced_stop_during_retries_is_raised_out_of_step_and_leaves_the_request_open():
    exporter = GatedExporter()
    exporter.retry = True
    exporter.gate.set()
    stage = make_stage(exporter)
    stage.add(1, payload(1))
    stage.step(everything=True)
    deadline = time.monotonic() + 10
    while exporter.calls < 2 and time.monotonic() < deadline:  # retrying
        time.sleep(0.01)
    stage.abandon.set()
    with pytest.raises(Abandoned):
        drain(stage, 1)
    assert stage.open_requests == 1  # not done: it stays in the log for the next start
    stage.close(5.0)
