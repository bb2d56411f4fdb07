"""llm_span: the context manager every emitting path goes through."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_llm import llm_span, semconv
from tests.conftest import collect_points


def test_span_carries_request_attributes_at_start_and_response_at_end(spans):
    with llm_span(provider="openai", model="gpt-4o-mini", agent="support", route="primary",
                  server_address="api.openai.com", server_port=443, tools=["a", "b"]) as call:
        call.set_response(model="gpt-4o-mini-2024-07-18", id="chatcmpl-1", finish_reasons=["stop"])
        call.set_usage(input_tokens=120, output_tokens=30, cache_read_input_tokens=100, reasoning_tokens=5)
        call.add_tool_call("lookup", "call_1")
        call.add_tool_call("search", "call_2")
        call.set_cost(0.0012)
    (span,) = spans.get_finished_spans()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert a[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert a[semconv.GEN_AI_PROVIDER_NAME] == "openai" and a[semconv.GEN_AI_SYSTEM] == "openai"
    assert a[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert a[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert tuple(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) == ("stop",)
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert a[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 30
    assert a[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 100
    assert a[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 5
    assert a[semconv.GEN_AI_AGENT_NAME] == "support"
    assert a[semconv.OTEL_LLM_ROUTE] == "primary"
    assert a[semconv.SERVER_ADDRESS] == "api.openai.com" and a[semconv.SERVER_PORT] == 443
    assert a[semconv.OTEL_LLM_TOOLS_OFFERED] == 2
    assert a[semconv.OTEL_LLM_TOOL_CALLS] == 2
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) == ("lookup", "search")
    assert tuple(a[semconv.OTEL_LLM_TOOL_CALL_IDS]) == ("call_1", "call_2")
    assert a[semconv.OTEL_LLM_COST_USD] == pytest.approx(0.0012)
    assert a[semconv.OTEL_LLM_COST_BASIS] == "reported"
    assert span.status.status_code is StatusCode.UNSET


def test_attributes_sampling_needs_are_present_when_the_span_starts(tracer_provider, spans):
    seen = {}

    class Recorder:
        def on_start(self, span, parent_context=None):
            seen.update(span.attributes)

        def on_end(self, span):
            pass

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=30000):
            return True

    tracer_provider.add_span_processor(Recorder())
    try:
        with llm_span(provider="ollama", model="llama3.2", agent="triage", route="local", stream=True):
            pass
    finally:
        procs = tracer_provider._active_span_processor._span_processors
        tracer_provider._active_span_processor._span_processors = tuple(p for p in procs if not isinstance(p, Recorder))
    for key in (semconv.GEN_AI_OPERATION_NAME, semconv.GEN_AI_PROVIDER_NAME, semconv.GEN_AI_REQUEST_MODEL,
                semconv.GEN_AI_AGENT_NAME, semconv.OTEL_LLM_ROUTE, semconv.GEN_AI_REQUEST_STREAM):
        assert key in seen


class ProviderDown(Exception):
    pass


def test_exception_sets_error_and_propagates_unchanged(spans):
    err = ProviderDown("503 from upstream")
    with pytest.raises(ProviderDown) as caught:
        with llm_span(provider="openai", model="gpt-4o"):
            raise err
    assert caught.value is err
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "ProviderDown"
    assert any(e.name == "exception" for e in span.events)


def test_async_with_works_and_nests_children(spans):
    from otel_llm._tracer import tracer

    async def main():
        async with llm_span(provider="openai", model="gpt-4o") as call:
            with tracer().start_as_current_span("http POST"):
                await asyncio.sleep(0)
            call.set_usage(input_tokens=3, output_tokens=4)

    asyncio.run(main())
    child, parent = spans.get_finished_spans()
    assert child.parent.span_id == parent.context.span_id
    assert parent.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 4


def test_bad_token_count_is_logged_and_the_rest_still_recorded(spans, caplog):
    from otel_llm import _safety

    _safety.reset_for_tests()
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        with llm_span(provider="openai", model="gpt-4o") as call:
            call.set_usage(input_tokens="lots", output_tokens=7)
    (span,) = spans.get_finished_spans()
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert span.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert "input_tokens" in caplog.text


def test_recording_after_end_is_ignored_and_end_is_idempotent(spans):
    with llm_span(provider="openai", model="gpt-4o") as call:
        pass
    call.set_usage(input_tokens=5)
    call.end()
    (span,) = spans.get_finished_spans()
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


def test_metrics_recorded_with_convention_buckets_and_error_type(spans, metric_reader):
    with llm_span(provider="openai", model="metrics-model-1", agent="billing", route="r1") as call:
        call.set_usage(input_tokens=10, output_tokens=20)
    with pytest.raises(TimeoutError):
        with llm_span(provider="openai", model="metrics-model-1", agent="billing", route="r1"):
            raise TimeoutError()
    durations = [p for p in collect_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
                 if p.attributes.get(semconv.GEN_AI_REQUEST_MODEL) == "metrics-model-1"]
    assert len(durations) == 2
    assert tuple(durations[0].explicit_bounds) == semconv.DURATION_BUCKETS
    errors = [p for p in durations if p.attributes.get(semconv.ERROR_TYPE) == "TimeoutError"]
    assert len(errors) == 1
    assert all(p.attributes[semconv.GEN_AI_AGENT_NAME] == "billing" and p.attributes[semconv.OTEL_LLM_ROUTE] == "r1"
               for p in durations)
    tokens = [p for p in collect_points(metric_reader, semconv.METRIC_TOKEN_USAGE)
              if p.attributes.get(semconv.GEN_AI_REQUEST_MODEL) == "metrics-model-1"]
    by_type = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum for p in tokens}
    assert by_type == {"input": 10, "output": 20}
    assert tuple(tokens[0].explicit_bounds) == tuple(float(b) for b in semconv.TOKEN_BUCKETS)


def test_tool_calls_zero_once_a_finished_response_named_none_unknown_before(spans):
    with llm_span(provider="openai", model="gpt-4o", tools=[{"type": "function"}]) as call:
        call.set_response(finish_reasons=["stop"])
    with llm_span(provider="openai", model="gpt-4o"):
        pass
    finished, unknown = spans.get_finished_spans()
    assert finished.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 0
    assert semconv.OTEL_LLM_TOOL_CALLS not in unknown.attributes


def test_a_span_processor_that_raises_on_start_never_breaks_the_call(tracer_provider, spans):
    class Broken:
        def on_start(self, span, parent_context=None):
            raise RuntimeError("processor bug")

        def on_end(self, span):
            pass

        def shutdown(self):
            pass

        def force_flush(self, timeout_millis=30000):
            return True

    tracer_provider.add_span_processor(Broken())
    try:
        with llm_span(provider="openai", model="gpt-4o") as call:
            call.set_usage(input_tokens=1)
            result = "answer"
    finally:
        procs = tracer_provider._active_span_processor._span_processors
        tracer_provider._active_span_processor._span_processors = tuple(p for p in procs if not isinstance(p, Broken))
    assert result == "answer"
