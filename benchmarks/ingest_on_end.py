"""Cost of ``RouteObservationProcessor.on_end`` on the application thread (run by hand).

``on_end`` is all the application pays for route observations: a pre-filter and, for a
provider-call span, an append to the bounded queue (derivation and export run on the
worker). Measured per call, as the median and 99th percentile of many timed calls, for:

* ``llm``: a finished provider-call span written by ``llm_span`` (queued);
* ``other``: a finished HTTP client span (rejected by the pre-filter);
* ``noop``: a SpanProcessor whose ``on_end`` does nothing (the timing floor).

Spans are real SDK spans, made once and handed to ``on_end`` repeatedly. The worker
exports to an exporter that keeps nothing, with a queue large enough never to drop.

    python benchmarks/ingest_on_end.py [--calls 200000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Callable, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from exporters.base import ExportResult  # noqa: E402
from otel_llm import llm_span, semconv  # noqa: E402
from processor.observation import RouteObservation  # noqa: E402
from processor.span_processor import RouteObservationProcessor  # noqa: E402


class DiscardingExporter:
    """Accepts every batch and keeps nothing."""

    def export(self, batch: Sequence[RouteObservation]) -> ExportResult:
        return ExportResult.ACCEPTED

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 30.0) -> None:
        return None


class NoopProcessor(SpanProcessor):
    def on_end(self, span: ReadableSpan) -> None:
        return None


def sample_spans() -> tuple[ReadableSpan, ReadableSpan]:
    """One finished provider-call span and one finished HTTP client span."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    with llm_span(provider="openai", model="gpt-4o-mini", agent="support", route="primary",
                  server_address="api.openai.com", server_port=443, tools=3) as call:
        call.set_response(model="gpt-4o-mini-2024-07-18", id="chatcmpl-1", finish_reasons=["stop"])
        call.set_usage(input_tokens=1200, output_tokens=80, cache_read_input_tokens=1000)
    with trace.get_tracer("bench").start_as_current_span("POST", kind=trace.SpanKind.CLIENT, attributes={
        "http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat/completions",
        semconv.SERVER_ADDRESS: "api.openai.com", semconv.SERVER_PORT: 443,
        semconv.HTTP_RESPONSE_STATUS_CODE: 200,
    }):
        pass
    llm, http = memory.get_finished_spans()
    return llm, http


def time_calls(fn: Callable[[ReadableSpan], None], span: ReadableSpan, calls: int) -> list[int]:
    clock = time.perf_counter_ns
    out = [0] * calls
    for i in range(calls):
        t0 = clock()
        fn(span)
        out[i] = clock() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    llm, http = sample_spans()
    processor = RouteObservationProcessor(
        DiscardingExporter(), max_queue=args.calls * 2, batch_size=4096, flush_interval_s=0.05)
    noop = NoopProcessor()
    results: dict[str, list[int]] = {"llm": [], "other": [], "noop": []}
    for _ in range(args.repeats):
        results["noop"] += time_calls(noop.on_end, llm, args.calls)
        results["other"] += time_calls(processor.on_end, http, args.calls)
        results["llm"] += time_calls(processor.on_end, llm, args.calls)
        processor.force_flush(60_000)
    processor.shutdown()
    stats = processor.stats()

    print(f"on_end cost per span ({platform.python_implementation()} {platform.python_version()}, "
          f"{args.calls} calls x {args.repeats} repeats)")
    floor = statistics.median(results["noop"])
    for name, samples in results.items():
        samples.sort()
        median = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99)]
        extra = "" if name == "noop" else f"   (median above floor: {median - floor:,.0f} ns)"
        print(f"  {name:6s} median {median:8,.0f} ns   p99 {p99:8,.0f} ns{extra}")
    print(f"  processor: observed {stats.observed}, exported {stats.exported}, dropped {stats.dropped}")


if __name__ == "__main__":
    main()
