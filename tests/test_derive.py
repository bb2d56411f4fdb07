"""Derivation: a provider-call span becomes one route observation, whoever wrote the span.

Spans here are real SDK spans (recorded through the session's TracerProvider); foreign
spans carry the attribute sets the other instrumentations really write, with the source
of each name noted next to it.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_llm import LLMCall, llm_span, scope, semconv
from otel_llm._safety import reset_for_tests
from otel_llm.fallback import Target, fallback_chain
from otel_llm.routing import record_routing_decision
from otel_llm.tools import tool_span
from processor import aliases
from processor.derive import MalformedSpan, classify, derive, derive_from_parts, is_candidate
from processor.providers import normalize_provider

START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
END_NS = START_NS + 1_250_000_000  # 1250 ms later


class RateLimited(Exception):
    pass


class ProviderDown(Exception):
    pass


class Timeout(Exception):
    pass


def only(spans, predicate=lambda s: True):
    (span,) = [s for s in spans.get_finished_spans() if predicate(s)]
    return span


def foreign_span(spans, name, attributes, *, kind=SpanKind.CLIENT, error=None, status_error=False):
    """A real SDK span written the way another instrumentation writes it."""
    span = trace.get_tracer("tests.foreign").start_span(name, kind=kind, attributes=attributes, start_time=START_NS)
    if error is not None:
        span.record_exception(error)
    if error is not None or status_error:
        span.set_status(Status(StatusCode.ERROR, str(error) if error else None))
    span.end(end_time=END_NS)
    return spans.get_finished_spans()[-1]


# --- our own spans ----------------------------------------------------------------------
def test_our_span_is_derived_field_by_field(spans):
    with scope(agent="support", session="sess-1", user="user-7", tags={"team": "billing", "tier": 2}):
        call = LLMCall(
            provider="OpenAI", model="gpt-4o-mini", route="primary", server_address="api.openai.com",
            server_port=443, stream=True, tools=["lookup", "search", "refund"], start_time_ns=START_NS,
        )
        call.first_chunk(at_ns=START_NS + 250_000_000)
        call.set_response(model="gpt-4o-mini-2024-07-18", id="chatcmpl-1", finish_reasons=["tool_calls", "stop"])
        call.set_usage(input_tokens=1200, output_tokens=80, cache_read_input_tokens=1000,
                       cache_creation_input_tokens=150, reasoning_tokens=20)
        call.add_tool_call("lookup", "call_1")
        call.add_tool_call("refund", "call_2")
        call.set_http_status(200)
        call.set_cost("0.00042")
        call.end(end_time_ns=END_NS)
    span = only(spans)
    o = derive(span)

    assert o.trace_id == format(span.context.trace_id, "032x") and len(o.trace_id) == 32
    assert o.span_id == format(span.context.span_id, "016x") and o.span_id == o.span_id.lower()
    assert o.parent_span_id is None
    assert o.started_at == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert o.duration_ms == 1250.0
    assert o.ttft_ms == pytest.approx(250.0)
    assert o.service_name == "otel-llm-tests"
    assert o.instance_id == span.resource.attributes.get(semconv.SERVICE_INSTANCE_ID)
    assert (o.agent, o.session_id, o.user_id) == ("support", "sess-1", "user-7")
    assert o.tags == {"team": "billing", "tier": "2"}
    assert (o.operation, o.provider, o.server_address) == ("chat", "openai", "api.openai.com")
    assert (o.request_model, o.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert o.route == "primary"
    assert o.stream is True
    assert (o.ok, o.error_type, o.http_status, o.finish_reason) == (True, None, 200, "tool_calls")
    assert (o.input_tokens, o.cached_input_tokens, o.cache_creation_input_tokens) == (1200, 1000, 150)
    assert (o.output_tokens, o.reasoning_tokens) == (80, 20)
    assert (o.tools_offered, o.tool_calls) == (3, 2)
    assert o.cost_usd == Decimal("0.00042") and o.cost_basis == "reported" and o.computed_cost_usd is None
    assert o.logical_call_id == o.span_id  # a call outside any chain is its own logical call
    # Fields became columns; what is left is kept, tags are not repeated.
    assert o.attributes[semconv.GEN_AI_RESPONSE_ID] == "chatcmpl-1"
    assert o.attributes[semconv.SERVER_PORT] == 443
    assert o.attributes[semconv.OTEL_LLM_TOOL_CALL_NAMES] == ["lookup", "refund"]
    for consumed in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_REQUEST_MODEL, semconv.OTEL_LLM_ROUTE,
                     semconv.OTEL_LLM_COST_USD, semconv.GEN_AI_AGENT_NAME, "otel_llm.tag.team"):
        assert consumed not in o.attributes
    json.dumps(o.attributes)  # storable as jsonb


def test_a_failed_attempt_is_an_observation_with_its_error(spans):
    with pytest.raises(RateLimited):
        with llm_span(provider="openai", model="gpt-4o", route="primary") as call:
            call.set_http_status(429)
            raise RateLimited("429 slow down")
    o = derive(only(spans))
    assert o.ok is False
    assert o.error_type == "RateLimited"
    assert o.http_status == 429
    assert (o.input_tokens, o.output_tokens, o.response_model, o.finish_reason) == (None, None, None, None)


def test_a_failure_named_without_an_exception_keeps_its_name(spans):
    with llm_span(provider="ollama", model="llama3.2") as call:
        call.fail("timeout")
    o = derive(only(spans))
    assert (o.ok, o.error_type) == (False, "timeout")


def test_an_error_type_written_as_a_class_repr_is_the_class_name(spans):
    # opentelemetry-util-genai (under the contrib openai-v2 instrumentation) writes str(type(exc))
    span = foreign_span(spans, "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                               "gen_ai.request.model": "gpt-4o",
                                               "error.type": "<class 'openai.RateLimitError'>"}, status_error=True)
    assert derive(span).error_type == "openai.RateLimitError"


@pytest.mark.parametrize(("completion", "tool_calls"), [
    ({"gen_ai.completion.0.role": "assistant"}, None),
    ({"gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Hello"}, 0),
    ({"gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.tool_calls.0.name": "lookup"}, 1),
])
def test_tool_calls_are_known_only_when_the_answer_was_recorded(spans, completion, tool_calls):
    # OpenLLMetry's Ollama instrumentation records the role of an answer that called tools, not the calls
    span = foreign_span(spans, "ollama.chat", {"llm.request.type": "chat", "gen_ai.system": "Ollama",
                                               "gen_ai.request.model": "llama3.2", **completion})
    assert derive(span).tool_calls == tool_calls


def test_fallback_chain_gives_one_observation_per_attempt_and_none_for_the_chain(spans):
    def down(prompt):
        raise ProviderDown("503")

    def answer(prompt):
        return {"model": "llama3.2:3b", "id": "r-1", "in": 12, "out": 5}

    def extractor(call, response):
        call.set_response(model=response["model"], id=response["id"])
        call.set_usage(input_tokens=response["in"], output_tokens=response["out"])

    chain = fallback_chain("answer", [
        Target("openai", "gpt-4o", route="primary", call=down),
        Target("ollama", "llama3.2", route="local", call=answer, server_address="localhost", server_port=11434),
    ], extractor=extractor)
    with scope(agent="triage"):
        with chain as run:
            record_routing_decision(complexity="simple", score=0.25)
            run.run("hi")

    finished = spans.get_finished_spans()
    chain_span = only(spans, lambda s: s.name.startswith("fallback_chain"))
    assert derive(chain_span) is None
    attempts = sorted((derive(s) for s in finished if s is not chain_span), key=lambda o: o.attempt)
    assert [o.attempt for o in attempts] == [0, 1]
    assert [o.fallback for o in attempts] == [False, True]
    assert [o.ok for o in attempts] == [False, True]
    assert attempts[0].error_type == "ProviderDown"
    assert [o.route for o in attempts] == ["primary", "local"]
    chain_id = format(chain_span.context.span_id, "016x")
    assert {o.logical_call_id for o in attempts} == {chain_id}
    assert {o.parent_span_id for o in attempts} == {chain_id}
    assert {o.agent for o in attempts} == {"triage"}
    assert [(o.routing_complexity, o.routing_score) for o in attempts] == [("simple", 0.25)] * 2
    assert attempts[1].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "ProviderDown"
    # The hosted attempt has no known price yet; the local one costs nothing.
    assert (attempts[0].cost_usd, attempts[0].cost_basis) == (None, "unknown")
    assert (attempts[1].cost_usd, attempts[1].cost_basis) == (Decimal(0), "local")
    assert (attempts[1].input_tokens, attempts[1].output_tokens) == (12, 5)


def test_stream_without_first_chunk_has_no_ttft(spans):
    with llm_span(provider="openai", model="gpt-4o-mini", stream=True):
        pass
    o = derive(only(spans))
    assert o.stream is True and o.ttft_ms is None


def test_agent_tool_chain_http_and_app_spans_are_not_observations(spans):
    tracer = trace.get_tracer("tests.app")
    with scope(agent="support", invoke_agent_span=True):
        with tool_span("get_weather", call_id="call_1"):
            pass
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
            "http.request.method": "GET", "url.full": "https://api.openai.com/v1/models",
            semconv.SERVER_ADDRESS: "api.openai.com", semconv.HTTP_RESPONSE_STATUS_CODE: 200,
        }):
            pass
        with tracer.start_as_current_span("handle request", attributes={"app.user": "u"}):
            pass
    finished = spans.get_finished_spans()
    assert len(finished) == 4
    assert [derive(s) for s in finished] == [None] * 4
    assert not any(is_candidate(s.attributes) for s in finished)


def test_what_a_span_does_not_carry_stays_none(spans):
    with llm_span(provider="openai", model="gpt-4o"):
        pass
    o = derive(only(spans))
    for field in ("ttft_ms", "agent", "session_id", "user_id", "server_address", "response_model", "attempt",
                  "fallback", "stream", "error_type", "http_status", "finish_reason", "input_tokens",
                  "cached_input_tokens", "cache_creation_input_tokens", "output_tokens", "reasoning_tokens",
                  "tools_offered", "tool_calls", "cost_usd", "computed_cost_usd", "routing_complexity",
                  "routing_score"):
        assert getattr(o, field) is None, field
    assert o.tags == {}
    assert (o.ok, o.cost_basis) == (True, "unknown")


@pytest.mark.parametrize(
    ("provider", "model", "route", "expected"),
    [
        ("openai", "gpt-4o", "primary", "primary"),
        ("OpenAI", "gpt-4o", None, "openai|gpt-4o"),
        (None, "llama3.2:1b", None, "llama3.2:1b"),
        ("ollama", None, None, "ollama"),
    ],
)
def test_route_is_the_route_name_else_provider_and_model(spans, provider, model, route, expected):
    with llm_span(provider=provider, model=model, route=route):
        pass
    assert derive(only(spans)).route == expected


def test_route_falls_back_to_the_response_model_when_no_request_model(spans):
    with llm_span(provider="openai") as call:
        call.set_response(model="gpt-4o-2024-08-06")
    assert derive(only(spans)).route == "openai|gpt-4o-2024-08-06"


# --- malformed input ----------------------------------------------------------------------
def test_malformed_values_leave_their_field_none_and_keep_the_rest(spans):
    span = foreign_span(spans, "chat gpt-4o", {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: "many",
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: True,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: -3,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2.5,
        semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: "soon",
        semconv.HTTP_RESPONSE_STATUS_CODE: 42,
        semconv.OTEL_LLM_COST_USD: "cheap",
        semconv.OTEL_LLM_ATTEMPT: "second",
        semconv.OTEL_LLM_FALLBACK: "maybe",
        semconv.GEN_AI_REQUEST_STREAM: "yes",  # a readable flag, accepted
        semconv.OTEL_LLM_TOOLS_OFFERED: "12",  # a numeric string, accepted
    })
    o = derive(span)
    assert o is not None
    for field in ("input_tokens", "output_tokens", "reasoning_tokens", "cached_input_tokens", "ttft_ms",
                  "http_status", "cost_usd", "attempt", "fallback"):
        assert getattr(o, field) is None, field
    assert (o.stream, o.tools_offered, o.request_model) == (True, 12, "gpt-4o")
    assert o.cost_basis == "unknown"
    assert o.attributes[semconv.OTEL_LLM_INVALID_FIELDS] == sorted([
        "attempt", "cached_input_tokens", "cost_usd", "fallback", "http_status", "input_tokens",
        "output_tokens", "reasoning_tokens", "ttft_ms",
    ])
    assert o.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == "many"  # the raw value is kept for inspection


def test_a_usable_older_name_wins_over_an_unusable_current_one(spans):
    span = foreign_span(spans, "chat", {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: "n/a",
        semconv.GEN_AI_USAGE_PROMPT_TOKENS: 42,
    })
    o = derive(span)
    assert o.input_tokens == 42
    assert semconv.OTEL_LLM_INVALID_FIELDS not in o.attributes


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"trace_id": 0}, "id"),
        ({"span_id": "not-hex-at-all!!"}, "id"),
        ({"trace_id": b"\x01\x02"}, "id"),
        ({"trace_id": bytes(16)}, "id"),
        ({"span_id": bytes(8)}, "id"),
        ({"span_id": b"\x01" * 16}, "id"),
        ({"start_time_ns": None}, "time"),
        ({"end_time_ns": "later"}, "time"),
        ({"end_time_ns": START_NS - 1}, "before"),
    ],
)
def test_a_provider_call_with_unusable_identity_or_time_raises_malformed(changes, problem):
    parts = dict(
        trace_id=0x1234, span_id=0x99, start_time_ns=START_NS, end_time_ns=END_NS,
        attributes={semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o"},
    )
    parts.update(changes)
    with pytest.raises(MalformedSpan, match=problem):
        derive_from_parts(**parts)


def test_a_non_llm_span_is_none_even_when_broken():
    assert derive_from_parts(trace_id=0, span_id=None, start_time_ns=None, end_time_ns=None,
                             attributes={"http.request.method": "GET"}) is None
    assert derive_from_parts(trace_id=1, span_id=1, start_time_ns=1, end_time_ns=2, attributes={}) is None


def test_attributes_that_are_not_a_mapping_are_malformed():
    with pytest.raises(MalformedSpan):
        derive_from_parts(trace_id=1, span_id=1, start_time_ns=1, end_time_ns=2, attributes=[("a", 1)])


# --- the same derivation for spans that arrive over OTLP ----------------------------------
def test_derive_from_parts_matches_derive_for_the_same_span(spans):
    with scope(agent="support", tags={"env": "prod"}):
        with pytest.raises(Timeout):
            with llm_span(provider="openai", model="gpt-4o", stream=True, tools=2, attempt=1) as call:
                call.set_usage(input_tokens=10)
                raise Timeout("read timeout")
    span = only(spans)
    from_sdk = derive(span)
    from_otlp = derive_from_parts(
        trace_id=span.context.trace_id.to_bytes(16, "big"),  # OTLP protobuf: raw bytes
        span_id=format(span.context.span_id, "016x").upper(),  # any case of hex
        parent_span_id=None,
        start_time_ns=str(span.start_time),  # OTLP/JSON: a decimal string
        end_time_ns=str(span.end_time),
        attributes=dict(span.attributes),
        status_code=2,  # OTLP STATUS_CODE_ERROR
        resource_attributes=dict(span.resource.attributes),
        events=[(e.name, dict(e.attributes)) for e in span.events],
    )
    assert from_otlp == from_sdk
    assert from_sdk.error_type == "Timeout" and from_sdk.ok is False


def test_error_type_comes_from_the_exception_event_when_the_span_has_no_error_type(spans):
    # OpenInference and OpenLLMetry record the exception and set ERROR without error.type.
    span = foreign_span(spans, "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o",
    }, error=ConnectionResetError("peer reset"))
    o = derive(span)
    assert (o.ok, o.error_type) == (False, "ConnectionResetError")


def test_an_error_status_without_any_type_is_other(spans):
    span = foreign_span(spans, "chat", {semconv.GEN_AI_OPERATION_NAME: "chat"}, status_error=True)
    assert (derive(span).ok, derive(span).error_type) == (False, "_OTHER")


# --- other instrumentations' spans -----------------------------------------------------------
#: The call every naming below describes: a non-streamed chat completion on OpenAI.
SAME_CALL = dict(
    operation="chat", provider="openai", request_model="gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18",
    input_tokens=120, output_tokens=30, route="openai|gpt-4o-mini", duration_ms=1250.0, ok=True,
)


def assert_same_call(o, **overrides):
    expected = {**SAME_CALL, **overrides}
    assert {k: getattr(o, k) for k in expected} == expected


def test_openai_v2_contrib_instrumentation_older_release(spans):
    # opentelemetry-instrumentation-openai-v2 (gen_ai.system era; gen_ai.openai.* names).
    span = foreign_span(spans, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.openai.request.service_tier": "default",
        "server.address": "api.openai.com",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-A1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.openai.response.service_tier": "default",
        "gen_ai.openai.response.system_fingerprint": "fp_1",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
    })
    o = derive(span)
    assert_same_call(o, server_address="api.openai.com", finish_reason="stop", stream=None, cost_basis="unknown")
    assert o.attributes["gen_ai.openai.response.service_tier"] == "default"
    assert o.attributes["gen_ai.request.temperature"] == 0.2


def test_openai_v2_contrib_instrumentation_latest_conventions(spans):
    # openai-v2 on the newest conventions: gen_ai.provider.name, openai.* names, dotted cache usage.
    span = foreign_span(spans, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "openai.request.service_tier": "flex",
        "server.address": "api.openai.com",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.cache_read.input_tokens": 64,
        "gen_ai.usage.output_tokens": 30,
    })
    o = derive(span)
    assert_same_call(o, cached_input_tokens=64, finish_reason="length")
    assert o.attributes["openai.request.service_tier"] == "flex"


def test_openllmetry_before_0_5(spans):
    # opentelemetry-semantic-conventions-ai < 0.5 (SpanAttributes.LLM_*), openai instrumentation,
    # with prompt tracing on (TRACELOOP_TRACE_CONTENT defaults to true).
    span = foreign_span(spans, "openai.chat", {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        "llm.is_streaming": False,
        "llm.headers": "None",
        "llm.request.functions.0.name": "lookup_order",
        "llm.request.functions.0.description": "Find an order",
        "llm.request.functions.1.name": "refund",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Where is my order 123?",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-B2",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        "llm.usage.total_tokens": 150,
        "gen_ai.usage.cache_read_input_tokens": 100,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "call_9",
        "gen_ai.completion.0.tool_calls.0.name": "lookup_order",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"order": 123}',
        "traceloop.association.properties.customer": "acme",
    })
    o = derive(span)
    assert_same_call(o, stream=False, server_address="api.openai.com", cached_input_tokens=100,
                     finish_reason="tool_calls", tools_offered=2, tool_calls=1)
    kept = o.attributes
    assert kept["traceloop.association.properties.customer"] == "acme"
    assert "llm.usage.total_tokens" not in kept
    assert not [k for k in kept if k.startswith(("gen_ai.prompt", "gen_ai.completion"))]


def test_openllmetry_0_5_and_later(spans):
    # opentelemetry-semantic-conventions-ai >= 0.5: upstream gen_ai.* names plus
    # gen_ai.is_streaming / gen_ai.usage.total_tokens; tools and messages as JSON.
    span = foreign_span(spans, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.is_streaming": True,
        "gen_ai.tool.definitions": json.dumps([{"name": "lookup_order"}, {"name": "refund"}, {"name": "escalate"}]),
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.total_tokens": 150,
        "gen_ai.usage.cache_creation.input_tokens": 7,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c1", "name": "lookup_order", "arguments": {}},
            {"type": "tool_call", "id": "c2", "name": "refund", "arguments": {}},
        ]}]),
    })
    o = derive(span)
    assert_same_call(o, stream=True, cache_creation_input_tokens=7, tools_offered=3, tool_calls=2)
    assert semconv.GEN_AI_INPUT_MESSAGES not in o.attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in o.attributes


def test_openinference(spans):
    # openinference-semantic-conventions: span kind, llm.* names, invocation parameters as JSON.
    span = foreign_span(spans, "ChatCompletion", {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini", "stream": False, "temperature": 0.2}),
        "input.value": json.dumps({"messages": [{"role": "user", "content": "Where is my order?"}]}),
        "input.mime_type": "application/json",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Where is my order?",
        "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "lookup_order"}}),
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
        "output.value": "{}",
        "output.mime_type": "application/json",
        "llm.token_count.prompt": 120,
        "llm.token_count.completion": 30,
        "llm.token_count.total": 150,
        "llm.token_count.prompt_details.cache_read": 96,
        "llm.token_count.completion_details.reasoning": 8,
        "session.id": "sess-9",
        "user.id": "user-3",
        "metadata": json.dumps({"experiment": "b"}),
    }, kind=SpanKind.INTERNAL)
    o = derive(span)
    assert_same_call(o, stream=False, cached_input_tokens=96, reasoning_tokens=8, tools_offered=1, tool_calls=1,
                     session_id="sess-9", user_id="user-3", finish_reason=None)
    kept = o.attributes
    assert kept["metadata"] == json.dumps({"experiment": "b"})
    for content in ("input.value", "output.value", "llm.input_messages.0.message.content"):
        assert content not in kept


def test_openinference_without_recorded_messages_leaves_operation_and_tool_calls_unknown(spans):
    # OPENINFERENCE_HIDE_INPUTS/OUTPUTS: no messages on the span, so nothing to count from.
    span = foreign_span(spans, "ChatCompletion", {
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.model_name": "claude-3-5-haiku",
    })
    o = derive(span)
    assert (o.operation, o.tool_calls, o.provider, o.request_model) == (None, None, "anthropic", "claude-3-5-haiku")


def test_openlit(spans):
    # openlit.semcov: gen_ai.system, is_stream, server TTFT in seconds, a computed cost.
    span = foreign_span(spans, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.endpoint": "openai.chat.completions",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.is_stream": True,
        "gen_ai.request.user": "user-5",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.total_tokens": 150,
        "gen_ai.usage.cost": 0.000036,
        "gen_ai.server.time_to_first_token": 0.31,
        "gen_ai.server.time_per_output_token": 0.02,
        "gen_ai.sdk.version": "1.0.0",
        "deployment.environment": "production",
        "service.name": "checkout",
    })
    o = derive(span)
    assert_same_call(o, stream=True, ttft_ms=pytest.approx(310.0), user_id="user-5", finish_reason="stop",
                     cost_usd=Decimal("0.000036"), cost_basis="reported")
    assert o.service_name == "otel-llm-tests"  # the resource wins over a span attribute
    assert o.attributes["deployment.environment"] == "production"


def test_openlit_zero_cost_for_a_hosted_model_means_unpriced_and_ttft_of_a_non_stream_is_ignored(spans):
    span = foreign_span(spans, "chat gpt-4o-mini", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.is_stream": False, "gen_ai.usage.cost": 0, "gen_ai.server.time_to_first_token": 1.25,
    })
    o = derive(span)
    assert (o.cost_usd, o.cost_basis, o.ttft_ms) == (None, "unknown", None)


def test_openlit_older_release(spans):
    # Older openlit.semcov: gen_ai.type for the operation, prompt/completion usage names.
    span = foreign_span(spans, "openai.chat.completions", {
        "gen_ai.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.endpoint": "openai.chat.completions",
        "gen_ai.application_name": "default",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        "gen_ai.response.finish_reason": "stop",
        "gen_ai.content.prompt": "user: Where is my order?",
    })
    o = derive(span)
    assert_same_call(o, finish_reason="stop")
    assert "gen_ai.content.prompt" not in o.attributes


@pytest.mark.parametrize(
    ("attributes", "operation"),
    [
        ({"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small"}, "embeddings"),
        ({"llm.request.type": "embedding", "gen_ai.system": "openai"}, "embeddings"),
        ({"llm.request.type": "completion", "gen_ai.system": "openai"}, "text_completion"),
        ({"gen_ai.type": "embedding", "gen_ai.system": "cohere"}, "embeddings"),
        ({"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini"}, "generate_content"),
    ],
)
def test_operations_of_every_naming(spans, attributes, operation):
    assert derive(foreign_span(spans, "call", attributes)).operation == operation


@pytest.mark.parametrize(
    "attributes",
    [
        {"openinference.span.kind": "CHAIN"},
        {"openinference.span.kind": "TOOL", "tool.name": "search"},
        {"traceloop.span.kind": "workflow", "traceloop.workflow.name": "support"},
        {"gen_ai.type": "vectordb", "gen_ai.system": "chroma"},
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "gen_ai.system": "openai"},
        {"gen_ai.system": "openai"},  # a provider but no model and no operation
    ],
)
def test_spans_of_other_kinds_are_not_observations(spans, attributes):
    span = foreign_span(spans, "work", attributes)
    assert derive(span) is None
    assert not is_candidate(span.attributes)


def test_a_provider_and_model_without_any_operation_is_a_call(spans):
    span = foreign_span(spans, "completion", {"gen_ai.system": "Anthropic", "gen_ai.request.model": "claude-3-opus"})
    assert classify(span.attributes) == (True, None)
    o = derive(span)
    assert (o.operation, o.provider, o.route) == (None, "anthropic", "anthropic|claude-3-opus")


def test_message_content_is_kept_only_when_asked(spans):
    attributes = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": []}]',
        "gen_ai.prompt.0.content": "secret",
        "input.value": "secret",
        "gen_ai.request.temperature": 0.5,
    }
    span = foreign_span(spans, "chat", attributes)
    assert set(derive(span).attributes) == {"gen_ai.request.temperature"}
    kept = derive(span, capture_content=True).attributes
    assert kept["gen_ai.prompt.0.content"] == "secret" and semconv.GEN_AI_INPUT_MESSAGES in kept


def test_long_values_are_cut_and_everything_is_json(spans):
    span = foreign_span(spans, "chat", {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        "app.note": "x" * 10_000,
        "app.list": tuple(range(500)),
        "app.ratio": float("nan"),
    })
    kept = derive(span).attributes
    assert len(kept["app.note"]) == 4096
    assert kept["app.list"] == list(range(64))
    json.dumps(kept, allow_nan=False)


# --- providers and cost ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("OpenAI", "openai"), (" openai ", "openai"),
        ("azure_openai", "azure.ai.openai"), ("az.ai.openai", "azure.ai.openai"), ("Azure", "azure.ai.openai"),
        ("azure.ai.openai", "azure.ai.openai"), ("az.ai.inference", "azure.ai.inference"),
        ("Ollama", "ollama"), ("vLLM", "vllm"), ("LM Studio", "lmstudio"),
        ("vertex_ai", "gcp.vertex_ai"), ("vertexai", "gcp.vertex_ai"), ("gemini", "gcp.gemini"),
        ("google", "gcp.gen_ai"), ("Google", "gcp.gen_ai"), ("gcp.vertex_ai", "gcp.vertex_ai"),
        ("Anthropic", "anthropic"), ("bedrock", "aws.bedrock"), ("AWS", "aws.bedrock"),
        ("aws.bedrock", "aws.bedrock"), ("MistralAI", "mistral_ai"), ("mistralai", "mistral_ai"),
        ("mistral_ai", "mistral_ai"), ("Groq", "groq"), ("OpenRouter", "openrouter"), ("xai", "x_ai"),
        ("TogetherAI", "together_ai"), ("HuggingFace", "hugging_face"), ("Watsonx", "ibm.watsonx.ai"),
        ("My-Gateway", "my_gateway"),
    ],
)
def test_provider_names_are_normalised(raw, canonical):
    assert normalize_provider(raw) == canonical


def test_unusable_provider_values_are_none():
    assert normalize_provider("  ") is None
    assert normalize_provider(42) is None


@pytest.mark.parametrize(
    ("provider", "server"),
    [("ollama", None), ("vllm", "gpu-box.internal"), ("lmstudio", None), ("openai", "127.0.0.1"),
     ("openai", "localhost")],
)
def test_self_hosted_calls_cost_nothing(spans, provider, server):
    with llm_span(provider=provider, model="m", server_address=server):
        pass
    o = derive(only(spans))
    assert (o.cost_usd, o.cost_basis) == (Decimal(0), "local")


def test_a_pricer_computes_unreported_costs_and_sits_beside_reported_ones(spans):
    seen = []

    def pricer(observation):
        seen.append((observation.provider, observation.request_model, observation.input_tokens))
        return Decimal("0.5")

    with llm_span(provider="openai", model="gpt-4o") as call:
        call.set_usage(input_tokens=1000)
    with llm_span(provider="openai", model="gpt-4o") as call:
        call.set_cost(0.25)
    with llm_span(provider="ollama", model="llama3.2"):
        pass
    computed, reported, local = [derive(s, pricer=pricer) for s in spans.get_finished_spans()]
    assert (computed.cost_usd, computed.cost_basis, computed.computed_cost_usd) == (
        Decimal("0.5"), "computed", Decimal("0.5"))
    assert (reported.cost_usd, reported.cost_basis, reported.computed_cost_usd) == (
        Decimal("0.25"), "reported", Decimal("0.5"))
    assert (local.cost_usd, local.cost_basis, local.computed_cost_usd) == (Decimal(0), "local", None)
    assert seen[0] == ("openai", "gpt-4o", 1000)


def test_a_failing_pricer_leaves_the_cost_unknown_and_says_so(spans, caplog):
    def pricer(observation):
        raise LookupError("no price for gpt-9")

    with llm_span(provider="openai", model="gpt-9"):
        pass
    reset_for_tests()
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        o = derive(only(spans), pricer=pricer)
    assert (o.cost_usd, o.cost_basis) == (None, "unknown")
    assert "no price for gpt-9" in caplog.text


def test_openinference_reported_total_cost(spans):
    span = foreign_span(spans, "llm", {
        "openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o", "llm.cost.total": 0.0125,
    })
    o = derive(span)
    assert (o.cost_usd, o.cost_basis) == (Decimal("0.0125"), "reported")


# --- any attribute soup: never a crash, and the pre-filter never hides a call ------------------
_KEYS = sorted({
    *aliases.CANDIDATE_KEYS, *aliases.PROVIDER, *aliases.REQUEST_MODEL, *aliases.RESPONSE_MODEL,
    *aliases.INPUT_TOKENS, *aliases.OUTPUT_TOKENS, *aliases.STREAM, *aliases.FINISH_REASON, *aliases.COST_USD,
    *aliases.TTFT_SECONDS, *aliases.TTFT_SECONDS_STREAM_ONLY, *aliases.INVOCATION_PARAMETERS,
    semconv.OTEL_LLM_COST_BASIS, semconv.GEN_AI_TOOL_DEFINITIONS, semconv.GEN_AI_OUTPUT_MESSAGES,
    "gen_ai.completion.0.tool_calls.0.name", "gen_ai.completion.0.role", "llm.tools.0.tool.json_schema",
    "llm.output_messages.0.message.tool_calls.1.tool_call.function.name", "otel_llm.tag.team",
})
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["chat", "CHAT", "embedding", "LLM", "EMBEDDING", "openai", "Ollama", "127.0.0.1", "true",
                     "[1, 2]", '{"model": "m", "stream": true}', "", "  ", "12", "-1", "NaN"]),
    st.text(max_size=20), st.lists(st.sampled_from(["stop", "length", ""]), max_size=3).map(tuple),
)


@settings(max_examples=400, deadline=None)
@given(attributes=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=12), error=st.booleans())
def test_any_attributes_derive_without_crashing_and_the_prefilter_agrees(attributes, error):
    attributes = {k: v for k, v in attributes.items() if v is not None}
    o = derive_from_parts(trace_id=7, span_id=9, start_time_ns=START_NS, end_time_ns=END_NS,
                          attributes=attributes, status_code=2 if error else 0)
    if o is None:
        return
    assert is_candidate(attributes)
    json.dumps(o.attributes, allow_nan=False)
    for count in (o.input_tokens, o.output_tokens, o.tools_offered, o.tool_calls):
        assert count is None or (isinstance(count, int) and count >= 0)
    assert o.cost_basis in {"reported", "computed", "local", "unknown"}
    assert o.ok is (not error and o.error_type is None)


def test_empty_strings_are_absent_values_not_unusable_ones(spans):
    # OpenLIT writes gen_ai.request.user = "" when the application passed no user
    span = foreign_span(spans, "chat gpt-4o", {
        semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o", "gen_ai.request.user": "", semconv.SESSION_ID: "  ",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: "",
    })
    o = derive(span)
    assert (o.user_id, o.session_id, o.input_tokens) == (None, None, None)
    assert semconv.OTEL_LLM_INVALID_FIELDS not in o.attributes
    # a value of the wrong kind is still reported
    bad = foreign_span(spans, "chat gpt-4o", {
        semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o", semconv.GEN_AI_USAGE_INPUT_TOKENS: "many",
    })
    assert derive(bad).attributes[semconv.OTEL_LLM_INVALID_FIELDS] == ["input_tokens"]


def test_otlp_byte_ids_and_parent_read_as_hex():
    o = derive_from_parts(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), parent_span_id=b"\x00" * 7 + b"\x2a",
                          start_time_ns=START_NS, end_time_ns=END_NS,
                          attributes={semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o"})
    assert (o.trace_id, o.span_id, o.parent_span_id) == (bytes(range(1, 17)).hex(), "0102030405060708",
                                                         "000000000000002a")
    assert o.attributes == {}
    zero_parent = derive_from_parts(trace_id=1, span_id=2, parent_span_id=bytes(8), start_time_ns=START_NS,
                                    end_time_ns=END_NS, attributes={semconv.GEN_AI_OPERATION_NAME: "chat"})
    assert zero_parent.parent_span_id is None
    assert zero_parent.attributes[semconv.OTEL_LLM_INVALID_FIELDS] == ["parent_span_id"]


def test_a_read_only_resource_and_a_plain_one_that_changes_both_give_their_service():
    from types import MappingProxyType

    def service(resource):
        return derive_from_parts(trace_id=1, span_id=2, start_time_ns=START_NS, end_time_ns=END_NS,
                                 attributes={semconv.GEN_AI_OPERATION_NAME: "chat"},
                                 resource_attributes=resource).service_name

    shared = MappingProxyType({semconv.SERVICE_NAME: "shop"})
    assert service(shared) == service(shared) == "shop"
    plain = {semconv.SERVICE_NAME: "shop"}
    assert service(plain) == "shop"
    plain[semconv.SERVICE_NAME] = "billing"  # a plain dict may change between spans
    assert service(plain) == "billing"
