"""Trace-aware inference: agent, attempts, fallback and request model from the trace,
nested instrumentations of one call counted once, and the bounded trace buffer.

Traces are built from the real spans of ``tests/fixtures/otlp`` (re-parented under
agent and application spans the way a framework nests them) and from spans written
with the attribute names each instrumentation uses.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from otel_llm import semconv
from processor.derive import derive_from_parts
from processor.trace_inference import SpanRecord, TraceBuffer, derive_trace, model_from_span_name
from tests.test_fixture_derivation import load

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
RESOURCE = {"service.name": "support-bot"}
_ids = itertools.count(1)
MS = 1_000_000


def span(name: str, attributes: dict[str, Any], *, parent: SpanRecord | None = None, start: int = 1,
         end: int = 2, status: int = 0, trace: bytes = TRACE) -> SpanRecord:
    """A span of ``trace``; times in milliseconds from an arbitrary epoch."""
    return SpanRecord(trace, next(_ids).to_bytes(8, "big"), parent.span_id if parent else None, name, 3,
                      1_700_000_000_000 * MS + start * MS, 1_700_000_000_000 * MS + end * MS,
                      attributes, status, RESOURCE)


def chat(model: str | None, *, provider: str = "openai", name: str | None = None, **kwargs: Any) -> SpanRecord:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider}
    if model is not None:
        attrs["gen_ai.request.model"] = model
    attrs.update(kwargs.pop("attrs", {}))
    return span(name or f"chat {model}", attrs, **kwargs)


def fixture_call(name: str, parent: SpanRecord, **changes: Any) -> SpanRecord:
    """The provider-call span of a fixture, moved under ``parent`` in this test's trace."""
    _doc, records = load(name)
    [call] = [r for r in records if r.scope_name not in ("fixture-app", "opentelemetry.instrumentation.httpx")]
    return dataclasses.replace(call, trace_id=TRACE, span_id=next(_ids).to_bytes(8, "big"),
                               parent_span_id=parent.span_id, **changes)


def by_span(result: Any) -> dict[str, Any]:
    return {o.span_id: o for o in result.observations}


def obs(result: Any, record: SpanRecord) -> Any:
    return by_span(result)[record.span_id.hex()]


def inferred(observation: Any) -> list[str]:
    return observation.attributes.get(semconv.OTEL_LLM_INFERRED, [])


# --- agent ----------------------------------------------------------------------------------
def test_agent_from_the_nearest_invoke_agent_ancestor() -> None:
    root = span("POST /ask", {"http.route": "/ask"})
    agent = span("invoke_agent support", {"gen_ai.operation.name": "invoke_agent",
                                          "gen_ai.agent.name": "support"}, parent=root)
    tool = span("execute_tool lookup", {"gen_ai.operation.name": "execute_tool"}, parent=agent)
    call = fixture_call("otel_openai_v2_chat", tool)
    result = derive_trace([root, agent, tool, call])
    observation = obs(result, call)
    assert observation.agent == "support"
    assert "agent" in inferred(observation)
    assert result.ignored == 3


def test_agent_name_from_the_span_name_when_the_attribute_is_missing() -> None:
    agent = span("invoke_agent triage", {"gen_ai.operation.name": "invoke_agent"})
    call = fixture_call("otel_openai_v2_chat", agent)
    assert obs(derive_trace([agent, call]), call).agent == "triage"


def test_openinference_and_openllmetry_agent_spans() -> None:
    oi_agent = span("researcher", {"openinference.span.kind": "AGENT"})
    oi_call = fixture_call("openinference_openai_chat", oi_agent)
    tl_agent = span("writer.agent", {"traceloop.span.kind": "agent", "traceloop.entity.name": "writer"})
    tl_call = fixture_call("openllmetry_openai_chat", tl_agent)
    tl_unnamed = span("editor.agent", {"traceloop.span.kind": "agent"})
    tl_call2 = fixture_call("openllmetry_openai_chat", tl_unnamed)
    result = derive_trace([oi_agent, oi_call, tl_agent, tl_call, tl_unnamed, tl_call2])
    assert obs(result, oi_call).agent == "researcher"
    assert obs(result, tl_call).agent == "writer"
    assert obs(result, tl_call2).agent == "editor"


def test_the_nearest_agent_wins_and_a_nameless_one_stops_the_search() -> None:
    planner = span("invoke_agent planner", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"})
    researcher = span("invoke_agent researcher", {"gen_ai.operation.name": "invoke_agent",
                                                  "gen_ai.agent.name": "researcher"}, parent=planner)
    inner = fixture_call("otel_openai_v2_chat", researcher)
    # an agent span that names no agent: its calls belong to no known agent, not to the planner
    nameless = span("", {"openinference.span.kind": "AGENT", "agent.name": " "}, parent=planner)
    under_nameless = fixture_call("otel_openai_v2_chat", nameless)
    result = derive_trace([planner, researcher, inner, nameless, under_nameless])
    assert obs(result, inner).agent == "researcher"
    assert obs(result, under_nameless).agent is None
    assert "agent" not in inferred(obs(result, under_nameless))


def test_an_agent_the_span_names_itself_is_kept() -> None:
    agent = span("invoke_agent support", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    call = chat("gpt-4o", parent=agent, attrs={"gen_ai.agent.name": "billing"})
    observation = obs(derive_trace([agent, call]), call)
    assert observation.agent == "billing"
    assert "agent" not in inferred(observation)


# --- attempts and fallback -------------------------------------------------------------------
def test_a_retry_after_a_failure_is_attempt_one_of_the_same_logical_call() -> None:
    parent = span("answer", {})
    first = chat("gpt-4o", parent=parent, start=10, end=20, status=2, attrs={"error.type": "RateLimitError"})
    retry = chat("gpt-4o", parent=parent, start=25, end=40)
    result = derive_trace([parent, retry, first])  # arrival order does not matter
    a, b = obs(result, first), obs(result, retry)
    assert (a.attempt, a.fallback, a.ok) == (0, False, False)
    assert (b.attempt, b.fallback, b.ok) == (1, False, True)
    assert a.logical_call_id == b.logical_call_id == first.span_id.hex()
    assert inferred(b) == ["attempt", "fallback", "logical_call_id"]


def test_a_failure_then_another_model_is_a_fallback() -> None:
    parent = span("answer", {})
    first = fixture_call("openinference_openai_error", parent)
    second = fixture_call("openinference_openai_chat", parent,
                          start_time_ns=first.end_time_ns + MS, end_time_ns=first.end_time_ns + 5 * MS)
    other = chat("claude-sonnet-4", provider="anthropic", parent=parent, start=0, end=0)
    other = dataclasses.replace(other, start_time_ns=second.end_time_ns + MS, end_time_ns=second.end_time_ns + 2 * MS)
    result = derive_trace([parent, first, second, other])
    assert obs(result, second).attempt == 1
    # the failed request named gpt-4o-mini@status=500: another model
    assert obs(result, second).fallback is True
    assert obs(result, second).route == "openai|gpt-4o-mini"
    # the call after a success starts a new logical call
    assert (obs(result, other).attempt, obs(result, other).fallback) == (0, False)
    assert obs(result, other).logical_call_id == other.span_id.hex()


def test_a_chain_of_failures_counts_every_earlier_failure() -> None:
    parent = span("answer", {})
    a = chat("gpt-4o", parent=parent, start=0, end=5, status=2)
    b = chat("gpt-4o", provider="azure.ai.openai", parent=parent, start=6, end=9, status=2)
    c = chat("claude-haiku", provider="anthropic", parent=parent, start=10, end=30)
    result = derive_trace([parent, a, b, c])
    assert [obs(result, s).attempt for s in (a, b, c)] == [0, 1, 2]
    assert [obs(result, s).fallback for s in (a, b, c)] == [False, True, True]
    assert {obs(result, s).logical_call_id for s in (a, b, c)} == {a.span_id.hex()}


def test_concurrent_calls_other_operations_and_other_parents_are_not_retries() -> None:
    parent = span("answer", {})
    failed = chat("gpt-4o", parent=parent, start=0, end=50, status=2)
    concurrent = chat("gpt-4o", parent=parent, start=10, end=20)
    embed = span("embeddings text-embedding-3-small", {"gen_ai.operation.name": "embeddings",
                                                       "gen_ai.provider.name": "openai"},
                 parent=parent, start=60, end=70)
    elsewhere = span("step", {})
    later_elsewhere = chat("gpt-4o", parent=elsewhere, start=80, end=90)
    result = derive_trace([parent, failed, concurrent, embed, elsewhere, later_elsewhere])
    for record in (failed, concurrent, embed, later_elsewhere):
        assert obs(result, record).attempt == 0


def test_values_the_span_carries_are_never_replaced() -> None:
    parent = span("answer", {})
    first = chat("gpt-4o", parent=parent, start=0, end=5, status=2)
    ours = chat("gpt-4o-mini", parent=parent, start=6, end=9,
                attrs={semconv.OTEL_LLM_ATTEMPT: 3, semconv.OTEL_LLM_FALLBACK: False,
                       semconv.OTEL_LLM_LOGICAL_CALL_ID: "chain-7"})
    result = derive_trace([parent, first, ours])
    observation = obs(result, ours)
    assert (observation.attempt, observation.fallback, observation.logical_call_id) == (3, False, "chain-7")
    assert semconv.OTEL_LLM_INFERRED not in observation.attributes
    # a span with nothing to infer is derived exactly as the in-process path derives it
    direct = derive_from_parts(trace_id=ours.trace_id, span_id=ours.span_id, parent_span_id=ours.parent_span_id,
                               start_time_ns=ours.start_time_ns, end_time_ns=ours.end_time_ns,
                               attributes=ours.attributes, status_code=ours.status_code,
                               resource_attributes=ours.resource_attributes)
    assert observation == direct


# --- request model --------------------------------------------------------------------------
def test_request_model_from_the_span_name_when_the_attribute_is_missing() -> None:
    parent = span("answer", {})
    _doc, records = load("otel_openai_v2_chat")
    [v2] = [r for r in records if r.scope_name != "fixture-app"]
    attrs = {k: v for k, v in v2.attributes.items() if k != "gen_ai.request.model"}
    named = dataclasses.replace(v2, span_id=next(_ids).to_bytes(8, "big"), parent_span_id=parent.span_id,
                                trace_id=TRACE, attributes=attrs)
    tl = fixture_call("openllmetry_openai_chat", parent)
    tl = dataclasses.replace(tl, attributes={k: v for k, v in tl.attributes.items()
                                             if k not in ("gen_ai.request.model", "gen_ai.response.model")})
    result = derive_trace([parent, named, tl])
    observation = obs(result, named)
    assert (observation.request_model, observation.route) == ("gpt-4o-mini", "openai|gpt-4o-mini")
    assert "request_model" in inferred(observation)
    # ``openai.chat`` names no model: it stays unknown
    assert obs(result, tl).request_model is None
    assert "request_model" not in inferred(obs(result, tl))


@pytest.mark.parametrize(("name", "model"), [
    ("chat gpt-4o", "gpt-4o"), ("embeddings text-embedding-3-small", "text-embedding-3-small"),
    ("text_completion davinci-002", "davinci-002"), ("generate_content gemini-2.0-flash", "gemini-2.0-flash"),
    ("openai.chat", None), ("ChatCompletion", None), ("chat", None), ("invoke_agent support", None),
    ("chat two words", None), (None, None),
])
def test_model_from_span_name(name: Any, model: str | None) -> None:
    assert model_from_span_name(name) == model


# --- nested instrumentations -----------------------------------------------------------------
def test_a_framework_span_over_a_client_span_counts_once() -> None:
    agent = span("invoke_agent support", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    framework = span("ChatOpenAI", {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
                                    "llm.provider": "openai"}, parent=agent, start=0, end=100)
    client = fixture_call("openllmetry_openai_chat", framework)
    http = span("POST", {"http.method": "POST", "http.status_code": 200}, parent=client)
    result = derive_trace([agent, framework, client, http])
    [observation] = result.observations
    assert observation.span_id == client.span_id.hex()
    assert observation.agent == "support"
    assert result.ignored == 3


# --- robustness -----------------------------------------------------------------------------
def test_repeated_malformed_and_orphan_spans() -> None:
    parent = span("answer", {})
    good = chat("gpt-4o", parent=parent, start=0, end=5)
    broken = dataclasses.replace(chat("gpt-4o", parent=parent), end_time_ns="soon")
    orphan = chat("gpt-4o", start=0, end=1)
    orphan = dataclasses.replace(orphan, parent_span_id=b"\x99" * 8)
    cyclic_a = span("a", {}, trace=TRACE)
    cyclic_b = dataclasses.replace(span("b", {}), parent_span_id=cyclic_a.span_id)
    cyclic_a = dataclasses.replace(cyclic_a, parent_span_id=cyclic_b.span_id)
    under_cycle = chat("gpt-4o", parent=cyclic_a)
    no_id = dataclasses.replace(chat("gpt-4o"), span_id=b"")
    spans = [parent, good, good, broken, orphan, cyclic_a, cyclic_b, under_cycle, no_id]
    result = derive_trace(spans)
    assert {o.span_id for o in result.observations} == {s.span_id.hex() for s in (good, orphan, under_cycle)}
    malformed = [m[0] for m in result.malformed]
    assert len(malformed) == 2 and broken in malformed and no_id in malformed
    assert all(str(m[1]) for m in result.malformed)
    assert len(result.observations) + len(result.malformed) + result.ignored == len(spans)


# --- the buffer -----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def traced(trace: int, n: int = 1) -> list[SpanRecord]:
    return [span("s", {}, trace=trace.to_bytes(16, "big")) for _ in range(n)]


def test_buffer_holds_a_trace_until_its_last_span_is_old_enough() -> None:
    clock = Clock()
    buffer = TraceBuffer(hold_s=5.0, clock=clock)
    buffer.add(traced(1, 2), token="batch-1")
    clock.now = 4.0
    buffer.add(traced(1), token="batch-2")
    clock.now = 6.0
    buffer.add(traced(2), token="batch-3")
    assert buffer.take_ready(now=8.0) == []
    assert len(buffer) == 4
    [(spans, tokens)] = buffer.take_ready(now=9.0)
    assert (len(spans), tokens) == (3, {"batch-1", "batch-2"})
    assert len(buffer) == 1
    [(spans, tokens)] = buffer.take_ready(everything=True)
    assert (len(spans), tokens, len(buffer)) == (1, {"batch-3"}, 0)


def test_a_trace_that_keeps_growing_is_released_at_its_max_age() -> None:
    clock = Clock()
    buffer = TraceBuffer(hold_s=5.0, max_age_s=12.0, clock=clock)
    for second in range(0, 14, 2):
        clock.now = float(second)
        buffer.add(traced(7))
        ready = buffer.take_ready()
        if second < 12:
            assert ready == []
    assert [len(spans) for spans, _ in ready] == [7]
    assert buffer.traces == 0


def test_bounds_release_early_oldest_first() -> None:
    clock = Clock()
    buffer = TraceBuffer(hold_s=5.0, max_spans=5, max_spans_per_trace=3, clock=clock)
    buffer.add(traced(1, 2), token="a")
    clock.now = 1.0
    buffer.add(traced(2, 2), token="b")
    clock.now = 2.0
    buffer.add(traced(3, 2), token="c")  # 6 spans > 5: trace 1 (oldest) goes
    assert buffer.evicted_traces == 1
    buffer.add(traced(2, 1), token="d")  # trace 2 reaches 3 spans: ready at once
    ready = buffer.take_ready()
    assert [(len(s), t) for s, t in ready] == [(2, {"a"}), (3, {"b", "d"})]
    assert len(buffer) == 2 and buffer.traces == 1
    # a late span of a released trace starts a new group
    buffer.add(traced(1, 1))
    assert buffer.traces == 2


def test_buffer_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        TraceBuffer(max_spans=0)
