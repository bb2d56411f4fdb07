"""A provider call is observed once, however the decorator is nested."""

from __future__ import annotations

from otel_llm import fallback_chain, llm_span, semconv
from otel_llm.decorator import llm_call
from otel_llm.fallback import Target


def _response(model: str) -> dict:
    return {
        "id": "chatcmpl-n", "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
    }


@llm_call(provider="openai")
def ask(model: str) -> dict:
    return _response(model)


def _inference(spans):
    return [s for s in spans.get_finished_spans()
            if s.attributes.get(semconv.GEN_AI_OPERATION_NAME) == "chat"]


def test_decorated_call_inside_llm_span_opens_no_second_span(spans):
    with llm_span(provider="openai", model="gpt-4o") as call:
        response = ask("gpt-4o")
        call.record_response(response)
    (only,) = _inference(spans)
    assert only.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11


def test_decorated_target_of_a_fallback_chain_is_one_attempt_with_its_response(spans):
    chain = fallback_chain("answer", [Target(provider="openai", model="gpt-4o", call=lambda: ask("gpt-4o"))])
    result = chain.run()
    assert result["id"] == "chatcmpl-n"
    (attempt,) = _inference(spans)
    assert attempt.attributes[semconv.OTEL_LLM_ATTEMPT] == 0
    assert attempt.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert attempt.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 1  # recorded once, not by both


def test_decorated_call_outside_any_span_still_gets_its_own(spans):
    ask("gpt-4o-mini")
    (only,) = _inference(spans)
    assert only.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
