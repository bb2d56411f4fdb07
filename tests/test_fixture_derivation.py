"""Spans recorded from other instrumentations derive into the right observations.

The fixtures in ``tests/fixtures/otlp`` are real spans (OpenLLMetry, OpenInference, the
contrib openai-v2 instrumentation, ...) from real clients talking to the fake provider,
stored as OTLP/JSON bodies (see ``generate.py`` there). Each is decoded the way
``otel-llm collect`` decodes a POSTed body and derived through ``derive_trace``; every
field of the observation is checked against what the fake provider sent, adjusted only
where a source does not record a fact (then the field must be NULL) or records it in its
own words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otel_llm import semconv
from processor import aliases
from processor.collector.otlp import parse_request, span_records
from processor.trace_inference import SpanRecord, TraceResult, derive_trace
from tests.fake_provider import CACHED_TOKENS, PROMPT_TOKENS, parse_model

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
OUTPUT_TOKENS = parse_model("gpt-4o-mini").chunks
APP_SCOPE = "fixture-app"
HTTP_SCOPE = "opentelemetry.instrumentation.httpx"

#: Fields every observation has whatever the span says (checked separately).
STRUCTURAL = {"trace_id", "span_id", "started_at", "duration_ms", "parent_span_id", "logical_call_id",
              "service_name", "instance_id", "tags", "attributes", "cost_usd", "computed_cost_usd"}


def _openai_truth(model: str = "gpt-4o-mini") -> dict[str, dict[str, Any]]:
    """What the fake provider answered to each OpenAI scenario."""
    chat = {
        "operation": "chat", "provider": "openai", "server_address": "127.0.0.1",
        "request_model": model, "response_model": model, "route": f"openai|{model}",
        "attempt": 0, "fallback": False, "stream": False, "ok": True, "finish_reason": "stop",
        "input_tokens": PROMPT_TOKENS, "cached_input_tokens": CACHED_TOKENS, "output_tokens": OUTPUT_TOKENS,
        "reasoning_tokens": 0, "tool_calls": 0, "cost_basis": semconv.COST_BASIS_LOCAL,
    }
    failed = f"{model}@status=500"
    return {
        "chat": chat,
        "retry_429": chat,  # the client's retry happens inside the one call span
        "stream": {**chat, "stream": True},
        "tools": {**chat, "finish_reason": "tool_calls", "tools_offered": 2, "tool_calls": 2},
        "embeddings": {
            "operation": "embeddings", "provider": "openai", "server_address": "127.0.0.1",
            "request_model": "text-embedding-3-small", "response_model": "text-embedding-3-small",
            "route": "openai|text-embedding-3-small", "attempt": 0, "fallback": False, "stream": False,
            "ok": True, "input_tokens": PROMPT_TOKENS, "cost_basis": semconv.COST_BASIS_LOCAL,
        },
        "error": {
            "operation": "chat", "provider": "openai", "server_address": "127.0.0.1",
            "request_model": failed, "route": f"openai|{failed}", "attempt": 0, "fallback": False,
            "stream": False, "ok": False, "error_type": "InternalServerError",
            "cost_basis": semconv.COST_BASIS_LOCAL,
        },
    }


def _ollama_truth() -> dict[str, dict[str, Any]]:
    chat = {
        "operation": "chat", "provider": "ollama", "request_model": "llama3.2", "response_model": "llama3.2",
        "route": "ollama|llama3.2", "attempt": 0, "fallback": False, "stream": False, "ok": True,
        "input_tokens": PROMPT_TOKENS, "output_tokens": OUTPUT_TOKENS, "tool_calls": 0,
        "cost_basis": semconv.COST_BASIS_LOCAL,
    }
    return {
        "chat": chat,
        "stream": {**chat, "stream": True},
        # OpenLLMetry records the answer's role but not its tool calls: unknown, not 0.
        "tools": {**chat, "tools_offered": 2, "tool_calls": None},
        "embeddings": {
            "operation": "embeddings", "provider": "ollama", "request_model": "nomic-embed-text",
            "route": "ollama|nomic-embed-text", "attempt": 0, "fallback": False, "stream": False, "ok": True,
            "cost_basis": semconv.COST_BASIS_LOCAL,
        },
        "error": {
            "operation": "chat", "provider": "ollama", "request_model": "llama3.2@status=500",
            "route": "ollama|llama3.2@status=500", "attempt": 0, "fallback": False, "stream": False,
            "ok": False, "error_type": "ResponseError", "cost_basis": semconv.COST_BASIS_LOCAL,
        },
    }


#: What each source does not record (-> NULL), per scenario ("*" = every scenario).
NOT_RECORDED: dict[str, dict[str, set[str]]] = {
    "openllmetry_openai": {"stream": {"reasoning_tokens"}},
    # Ollama answers carry done_reason; OpenLLMetry's Ollama instrumentation drops it.
    "openllmetry_ollama": {"*": {"finish_reason"}},
    # No server address; the stream flag only when the call streamed (invocation parameters).
    "openinference_openai": {"*": {"server_address"}, "chat": {"stream"}, "retry_429": {"stream"},
                             "tools": {"stream"}, "embeddings": {"stream", "response_model"},
                             "error": {"stream"}},
    # util-genai records no server address, stream flag, cached or reasoning tokens; tool
    # calls only with the output messages of the newer conventions; no tool definitions; no
    # finish reason of streams.
    "otel_openai_v2": {"*": {"server_address", "stream", "cached_input_tokens", "reasoning_tokens", "tool_calls",
                             "tools_offered"},
                       "stream": {"finish_reason"}},
    "otel_openai_v2_latest": {"*": {"server_address", "stream", "cached_input_tokens", "reasoning_tokens",
                                    "tools_offered"},
                              "stream": {"finish_reason"}, "embeddings": {"tool_calls"}, "error": {"tool_calls"}},
    # OpenLIT names the tools called, not the tools offered; no reasoning tokens.
    "openlit_openai": {"*": {"tools_offered", "reasoning_tokens"}},
}

#: What a source records in its own words (the value derivation keeps; "positive": a
#: measured time, between 0 and the call's duration).
OWN_WORDS: dict[str, dict[str, dict[str, Any]]] = {
    # OpenLLMetry maps finish reasons onto the conventions' enum (tool_call) and writes 0
    # cached tokens for an embedding.
    "openllmetry_openai": {"tools": {"finish_reason": "tool_call"}, "embeddings": {"cached_input_tokens": 0}},
    "openinference_openai": {"error": {"error_type": "openai.InternalServerError"}},
    # util-genai writes ``str(type(exc))``: "<class 'openai.InternalServerError'>".
    "otel_openai_v2": {"error": {"error_type": "openai.InternalServerError"}},
    "otel_openai_v2_latest": {"error": {"error_type": "openai.InternalServerError"}},
    # OpenLIT writes 0 cache-creation tokens when the provider reports none, and measures
    # the time to the first chunk of a stream.
    "openlit_openai": {"chat": {"cache_creation_input_tokens": 0}, "retry_429": {"cache_creation_input_tokens": 0},
                       "tools": {"cache_creation_input_tokens": 0},
                       "stream": {"cache_creation_input_tokens": 0, "ttft_ms": "positive"}},
}

SOURCES = {
    "openllmetry_openai": _openai_truth(),
    "openllmetry_ollama": _ollama_truth(),
    "openinference_openai": _openai_truth(),
    "otel_openai_v2": _openai_truth(),
    "otel_openai_v2_latest": _openai_truth(),
    "openlit_openai": _openai_truth(),
}


def expected(source: str, scenario: str) -> dict[str, Any]:
    out = dict(SOURCES[source][scenario])
    gaps = NOT_RECORDED.get(source, {})
    for name in gaps.get("*", set()) | gaps.get(scenario, set()):
        out.pop(name, None)
    out.update(OWN_WORDS.get(source, {}).get(scenario, {}))
    if "server_address" not in out and out.get("provider") == "openai":
        out["cost_basis"] = semconv.COST_BASIS_UNKNOWN  # nothing says the server is local
    return out


CASES = [(source, scenario) for source, truth in SOURCES.items() for scenario in truth
         if (FIXTURES / f"{source}_{scenario}.json").exists()]


def load(name: str) -> tuple[dict[str, Any], list[SpanRecord]]:
    """A fixture as its JSON document and as the span records the collector decodes from it."""
    body = (FIXTURES / f"{name}.json").read_bytes()
    return json.loads(body), span_records(parse_request(body, "application/json").payload)


def json_spans(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(scope.get("scope", {}).get("name", ""), span)
            for resource in document["resourceSpans"] for scope in resource["scopeSpans"]
            for span in scope["spans"]]


def derived(name: str, **kwargs: Any) -> tuple[dict[str, Any], TraceResult]:
    document, records = load(name)
    return document, derive_trace(records, **kwargs)


def test_every_source_has_fixtures() -> None:
    missing = [f"{source}_{scenario}" for source, truth in SOURCES.items() for scenario in truth
               if (source, scenario) not in CASES]
    assert not missing, f"run tests/fixtures/otlp/generate.py: {missing}"


@pytest.mark.parametrize(("source", "scenario"), CASES, ids=[f"{s}_{c}" for s, c in CASES])
def test_fixture_derives_field_by_field(source: str, scenario: str) -> None:
    name = f"{source}_{scenario}"
    document, result = derived(name)
    assert not result.malformed
    [observation] = result.observations
    want = expected(source, scenario)
    got = observation.as_dict()
    for field_name, value in got.items():
        if field_name in STRUCTURAL:
            continue
        if want.get(field_name) == "positive":  # a measured time
            assert 0 < value < observation.duration_ms, f"{name}: {field_name} = {value!r}"
            continue
        assert value == want.get(field_name), f"{name}: {field_name} = {value!r}, expected {want.get(field_name)!r}"


@pytest.mark.parametrize(("source", "scenario"), CASES, ids=[f"{s}_{c}" for s, c in CASES])
def test_identity_time_and_service_come_from_the_call_span(source: str, scenario: str) -> None:
    document, result = derived(f"{source}_{scenario}")
    [observation] = result.observations
    calls = [span for scope, span in json_spans(document) if scope not in (APP_SCOPE, HTTP_SCOPE)]
    [app] = [span for scope, span in json_spans(document) if scope == APP_SCOPE]
    [call] = calls
    assert observation.trace_id == call["traceId"] == app["traceId"]
    assert observation.span_id == call["spanId"]
    assert observation.parent_span_id == app["spanId"]
    assert observation.logical_call_id == call["spanId"]
    start, end = int(call["startTimeUnixNano"]), int(call["endTimeUnixNano"])
    assert observation.duration_ms == pytest.approx((end - start) / 1e6)
    assert observation.started_at.timestamp() == pytest.approx(start / 1e9, abs=1e-6)
    assert (observation.service_name, observation.instance_id) == ("fixture-app", "fixture-1")
    assert observation.cost_usd is None if observation.cost_basis == semconv.COST_BASIS_UNKNOWN \
        else observation.cost_usd == 0


@pytest.mark.parametrize(("source", "scenario"), CASES, ids=[f"{s}_{c}" for s, c in CASES])
def test_application_and_http_spans_are_ignored(source: str, scenario: str) -> None:
    document, result = derived(f"{source}_{scenario}")
    others = [span for scope, span in json_spans(document) if scope in (APP_SCOPE, HTTP_SCOPE)]
    assert result.ignored == len(others) >= 1
    assert len(result.observations) + len(result.malformed) + result.ignored == len(json_spans(document))


def _content_keys(attributes: dict[str, Any]) -> list[str]:
    return [k for k in attributes if k in aliases.CONTENT_KEYS
            or any(k == p or k.startswith(p + ".") for p in aliases.CONTENT_PREFIXES)]


@pytest.mark.parametrize(("source", "scenario"), CASES, ids=[f"{s}_{c}" for s, c in CASES])
def test_message_content_is_kept_only_when_asked(source: str, scenario: str) -> None:
    _document, records = load(f"{source}_{scenario}")
    recorded = [k for r in records for k in _content_keys(dict(r.attributes))]
    [plain] = derive_trace(records).observations
    assert _content_keys(plain.attributes) == []
    [full] = derive_trace(records, capture_content=True).observations
    assert sorted(_content_keys(full.attributes)) == sorted(recorded)


@pytest.mark.parametrize(("source", "scenario"), CASES, ids=[f"{s}_{c}" for s, c in CASES])
def test_inferred_fields_are_listed(source: str, scenario: str) -> None:
    _document, result = derived(f"{source}_{scenario}")
    [observation] = result.observations
    inferred = observation.attributes[semconv.OTEL_LLM_INFERRED]
    # A lone call under an application span: first attempt, no fallback; the model is on the span.
    assert inferred == ["attempt", "fallback"]


def test_an_uninstrumented_call_yields_only_ignored_spans() -> None:
    """OpenLLMetry's Ollama instrumentation does not wrap ``embed``: its HTTP span is no call."""
    document, result = derived("openllmetry_ollama_embed")
    assert result.observations == [] and result.malformed == []
    assert result.ignored == len(json_spans(document)) == 2


def test_an_empty_attribute_is_absent_not_invalid() -> None:
    """OpenLIT writes ``gen_ai.request.user = ""`` when the application passed no user."""
    _document, result = derived("openlit_openai_chat")
    [observation] = result.observations
    assert observation.user_id is None
    assert semconv.OTEL_LLM_INVALID_FIELDS not in observation.attributes
