"""Added time per call of ``llm_call`` and ``llm_span`` (run by hand, not in CI).

Measured in one run, against two baselines taken in the same run:

* the bare function (no telemetry at all), and
* a minimal hand-written span that sets 12 attributes — what a careful engineer would
  write by hand without otel-llm.

Every variant runs under the same real SDK set-up: a TracerProvider with a span
processor that hands each ended span to an exporter that keeps nothing. The figure that
matters is the *added* time (variant minus bare), and its ratio to the hand-written
span's added time. Goal: at most 1.3x.

Two configurations run, each in its own process (global providers are set once):

* ``spans``: no MeterProvider, so otel-llm's GenAI metrics go to the API's no-op —
  like for like with the hand-written span, which records no metrics;
* ``spans+metrics``: an SDK MeterProvider with a reader, so otel-llm records its three
  convention histograms per call; the hand-written baseline then records the same
  three histogram points by hand, so both sides pay the SDK's metric cost.

    python benchmarks/overhead.py [--calls 20000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_llm import llm_span, semconv
from otel_llm.decorator import llm_call

RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
}


class DiscardingExporter(SpanExporter):
    """Accepts every span and keeps nothing: measures the SDK path, not an exporter."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def setup(with_metrics: bool) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    trace.set_tracer_provider(provider)
    if with_metrics:
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))


def provider_call(model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    """Stands in for the HTTP call: returns an OpenAI-shaped response at no cost."""
    return RESPONSE


def make_variants(with_metrics: bool) -> dict[str, Callable[[], Any]]:
    hand_tracer = trace.get_tracer("hand-written")
    hand_meter = metrics.get_meter("hand-written")
    duration = hand_meter.create_histogram(semconv.METRIC_OPERATION_DURATION, unit="s")
    tokens = hand_meter.create_histogram(semconv.METRIC_TOKEN_USAGE, unit="{token}")
    messages = [{"role": "user", "content": "hi"}]

    def bare() -> Any:
        return provider_call("gpt-4o-mini", messages)

    def hand_written() -> Any:
        started = time.perf_counter()
        with hand_tracer.start_as_current_span(
            "chat gpt-4o-mini",
            kind=trace.SpanKind.CLIENT,
            attributes={
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.SERVER_ADDRESS: "api.openai.com",
                semconv.SERVER_PORT: 443,
                semconv.GEN_AI_AGENT_NAME: "support",
            },
        ) as span:
            response = provider_call("gpt-4o-mini", messages)
            usage = response["usage"]
            span.set_attribute(semconv.GEN_AI_RESPONSE_MODEL, response["model"])
            span.set_attribute(semconv.GEN_AI_RESPONSE_ID, response["id"])
            span.set_attribute(semconv.GEN_AI_RESPONSE_FINISH_REASONS, [response["choices"][0]["finish_reason"]])
            span.set_attribute(semconv.GEN_AI_USAGE_INPUT_TOKENS, usage["prompt_tokens"])
            span.set_attribute(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, usage["completion_tokens"])
            span.set_attribute(semconv.OTEL_LLM_ROUTE, "primary")
        if with_metrics:
            point = {
                semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", semconv.GEN_AI_RESPONSE_MODEL: response["model"],
                semconv.SERVER_ADDRESS: "api.openai.com", semconv.SERVER_PORT: 443,
                semconv.GEN_AI_AGENT_NAME: "support", semconv.OTEL_LLM_ROUTE: "primary",
            }
            duration.record(time.perf_counter() - started, point)
            tokens.record(usage["prompt_tokens"], {**point, semconv.GEN_AI_TOKEN_TYPE: "input"})
            tokens.record(usage["completion_tokens"], {**point, semconv.GEN_AI_TOKEN_TYPE: "output"})
        return response

    decorated = llm_call(
        provider="openai", model="gpt-4o-mini", agent="support", route="primary",
        server_address="api.openai.com", server_port=443,
    )(provider_call)

    def with_llm_call() -> Any:
        return decorated("gpt-4o-mini", messages)

    def with_llm_span() -> Any:
        with llm_span(
            provider="openai", model="gpt-4o-mini", agent="support", route="primary",
            server_address="api.openai.com", server_port=443,
        ) as call:
            response = provider_call("gpt-4o-mini", messages)
            call.record_response(response)
            return response

    return {
        "bare": bare,
        "hand_written_span": hand_written,
        "llm_call": with_llm_call,
        "llm_span": with_llm_span,
    }


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def run(with_metrics: bool, calls: int, repeats: int) -> None:
    setup(with_metrics)
    variants = make_variants(with_metrics)
    for fn in variants.values():  # warm-up
        per_call_us(fn, 2000)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # interleaved, so drift hits every variant alike
        for name, fn in variants.items():
            samples[name].append(per_call_us(fn, calls))
    med = {name: statistics.median(values) for name, values in samples.items()}
    bare = med["bare"]
    hand_added = med["hand_written_span"] - bare
    print(f"\n[{'spans+metrics' if with_metrics else 'spans'}]")
    print(f"{'variant':<20}{'median us/call':>16}{'added us':>12}{'vs hand-written':>18}")
    for name, value in med.items():
        added = value - bare
        ratio = f"{added / hand_added:.2f}x" if name != "bare" else "-"
        print(f"{name:<20}{value:>16.2f}{added:>12.2f}{ratio:>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--mode", choices=["spans", "spans+metrics"], help="run one configuration only")
    args = parser.parse_args()
    if args.mode:
        run(args.mode == "spans+metrics", args.calls, args.repeats)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores; {args.calls} calls x {args.repeats} repeats")
    for mode in ("spans", "spans+metrics"):
        subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--calls", str(args.calls), "--repeats", str(args.repeats)],
            check=True,
        )


if __name__ == "__main__":
    main()
