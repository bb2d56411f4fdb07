"""Tool execution spans and routing decisions."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm import semconv
from otel_llm._tracer import tracer
from otel_llm.fallback import Target, fallback_chain
from otel_llm.routing import record_routing_decision, routing_attributes
from otel_llm.tools import tool_span


class WeatherDown(Exception):
    pass


# --- tool spans ---------------------------------------------------------------------
def test_tool_span_follows_the_execute_tool_convention(spans, monkeypatch):
    monkeypatch.delenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, raising=False)
    with otel_llm.scope(agent="planner", invoke_agent_span=True):
        with tool_span("get_weather", call_id="call_7", description="Current weather for a city",
                       arguments={"city": "Paris"}) as tool:
            tool.record_result({"temp_c": 21})
    tool_sp, agent_sp = spans.get_finished_spans()
    assert tool_sp.name == "execute_tool get_weather"
    assert tool_sp.kind is SpanKind.INTERNAL
    assert tool_sp.parent.span_id == agent_sp.context.span_id
    a = tool_sp.attributes
    assert a[semconv.GEN_AI_OPERATION_NAME] == "execute_tool"
    assert a[semconv.GEN_AI_TOOL_NAME] == "get_weather"
    assert a[semconv.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert a[semconv.GEN_AI_TOOL_TYPE] == "function"
    assert a[semconv.GEN_AI_TOOL_DESCRIPTION] == "Current weather for a city"
    assert a[semconv.GEN_AI_AGENT_NAME] == "planner"
    # content is off by default: neither the arguments nor the result are recorded
    assert semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in a
    assert semconv.GEN_AI_TOOL_CALL_RESULT not in a


def test_tool_arguments_and_result_recorded_when_content_capture_is_on(spans, monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    with tool_span("search", arguments={"q": "otel genai"}) as tool:
        tool.record_result(["doc-1", "doc-2"])
    (span,) = spans.get_finished_spans()
    assert json.loads(span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"q": "otel genai"}
    assert json.loads(span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT]) == ["doc-1", "doc-2"]


def test_tool_error_is_recorded_and_propagates_unchanged(spans):
    err = WeatherDown("upstream 502")
    with pytest.raises(WeatherDown) as caught:
        with tool_span("get_weather"):
            raise err
    assert caught.value is err
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "WeatherDown"
    assert any(e.name == "exception" for e in span.events)


def test_async_tool_span_parents_work_done_inside(spans):
    async def main():
        async with tool_span("fetch", type="extension"):
            with tracer().start_as_current_span("GET /data"):
                await asyncio.sleep(0)

    asyncio.run(main())
    child, tool_sp = spans.get_finished_spans()
    assert child.parent.span_id == tool_sp.context.span_id
    assert tool_sp.attributes[semconv.GEN_AI_TOOL_TYPE] == "extension"


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": None}, {"name": "t", "call_id": 7}])
def test_tool_span_rejects_bad_arguments_clearly(kwargs):
    with pytest.raises(TypeError, match="tool_span"):
        tool_span(**kwargs)


# --- routing decisions ---------------------------------------------------------------
def test_routing_attributes_are_derived_from_a_decision():
    primary = Target("openai", "gpt-4o", route="primary")
    attrs = routing_attributes(
        complexity="simple", score=0.25, candidates=[primary, "local"], selected=primary,
        preference="cost", required_capabilities=["tools", "json"],
    )
    assert attrs == {
        semconv.OTEL_LLM_ROUTING_COMPLEXITY: "simple",
        semconv.OTEL_LLM_ROUTING_SCORE: 0.25,
        semconv.OTEL_LLM_ROUTING_CANDIDATES: ["primary", "local"],
        semconv.OTEL_LLM_ROUTING_SELECTED: "primary",
        semconv.OTEL_LLM_ROUTING_PREFERENCE: "cost",
        semconv.OTEL_LLM_ROUTING_CAPABILITIES: ["tools", "json"],
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"score": "high"}, {"score": True}, {"score": float("nan")}, {"candidates": "gpt-4o"}, {"selected": 3}],
)
def test_malformed_routing_fields_raise_in_the_pure_function(kwargs):
    with pytest.raises((TypeError, ValueError)):
        routing_attributes(**kwargs)


def test_decision_before_the_first_attempt_lands_on_the_chain_and_every_attempt(spans):
    def down(*_):
        raise ConnectionError("refused")

    chain = fallback_chain(
        "routed",
        [Target("openai", "gpt-4o-mini", route="cheap", call=down), Target("openai", "gpt-4o", route="strong",
                                                                           call=lambda: "ok")],
        record_response=False,
    )
    with chain as run:
        assert record_routing_decision(
            complexity="complex", score=0.82, candidates=chain.targets, selected="cheap",
            preference="speed", required_capabilities=["tools"],
        )
        run.run()
    finished = spans.get_finished_spans()
    parent = next(s for s in finished if s.name == "fallback_chain routed")
    attempts = [s for s in finished if semconv.OTEL_LLM_ATTEMPT in s.attributes]
    assert len(attempts) == 2
    for span in [parent, *attempts]:
        assert span.attributes[semconv.OTEL_LLM_ROUTING_COMPLEXITY] == "complex"
        assert span.attributes[semconv.OTEL_LLM_ROUTING_SCORE] == pytest.approx(0.82)
        assert tuple(span.attributes[semconv.OTEL_LLM_ROUTING_CANDIDATES]) == ("cheap", "strong")
        assert span.attributes[semconv.OTEL_LLM_ROUTING_SELECTED] == "cheap"
        assert span.attributes[semconv.OTEL_LLM_ROUTING_PREFERENCE] == "speed"
        assert tuple(span.attributes[semconv.OTEL_LLM_ROUTING_CAPABILITIES]) == ("tools",)


def test_decision_inside_an_attempt_lands_on_that_attempt_only(spans):
    def decide_then_answer():
        record_routing_decision(complexity="simple")
        return "ok"

    fallback_chain("inner", [Target("ollama", "llama3.2", call=decide_then_answer)], record_response=False).run()
    finished = spans.get_finished_spans()
    parent = next(s for s in finished if s.name == "fallback_chain inner")
    attempt = next(s for s in finished if semconv.OTEL_LLM_ATTEMPT in s.attributes)
    assert attempt.attributes[semconv.OTEL_LLM_ROUTING_COMPLEXITY] == "simple"
    assert semconv.OTEL_LLM_ROUTING_COMPLEXITY not in parent.attributes


def test_decision_inside_an_llm_span_lands_on_it(spans):
    with otel_llm.llm_span(provider="ollama", model="llama3.2"):
        record_routing_decision(complexity="simple", score=1)
    (span,) = spans.get_finished_spans()
    assert span.attributes[semconv.OTEL_LLM_ROUTING_COMPLEXITY] == "simple"
    assert span.attributes[semconv.OTEL_LLM_ROUTING_SCORE] == 1.0


def test_a_bad_field_is_skipped_and_logged_the_rest_recorded(spans, caplog):
    from otel_llm import _safety

    _safety.reset_for_tests()
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        with otel_llm.llm_span(provider="ollama", model="llama3.2"):
            assert record_routing_decision(complexity="simple", score="very")
    (span,) = spans.get_finished_spans()
    assert span.attributes[semconv.OTEL_LLM_ROUTING_COMPLEXITY] == "simple"
    assert semconv.OTEL_LLM_ROUTING_SCORE not in span.attributes
    assert "routing score" in caplog.text


def test_decision_with_no_span_is_a_logged_skip_not_an_error(spans, caplog):
    from otel_llm import _safety

    _safety.reset_for_tests()
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        assert record_routing_decision(complexity="simple") is False
    assert "routing decision" in caplog.text
    assert spans.get_finished_spans() == ()
