"""Message content: never recorded unless the user opts in; then in the conventions' shape."""

from __future__ import annotations

import json

import ollama
import pytest
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageToolCall
from openai.types.chat.chat_completion_message_tool_call import Function

import otel_llm
from otel_llm import semconv

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "21°C, sunny"},
]


def record(input_messages, *outputs):
    with otel_llm.llm_span(provider="openai", model="gpt-4o", input_messages=input_messages) as call:
        for message, finish_reason in outputs:
            call.add_output_message(message, finish_reason)


@pytest.mark.parametrize("setting", [None, "", "false", "0", "no"])
def test_no_content_unless_capture_is_turned_on(spans, monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, raising=False)
    else:
        monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, setting)
    record(CONVERSATION, ({"role": "assistant", "content": "It is 21°C."}, "stop"))
    (span,) = spans.get_finished_spans()
    for key in (semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES, semconv.GEN_AI_SYSTEM_INSTRUCTIONS):
        assert key not in span.attributes
    assert not any("Paris" in str(v) for v in span.attributes.values())


@pytest.mark.parametrize("setting", ["true", "True", "1"])
def test_input_and_output_messages_follow_the_conventions_shape(spans, monkeypatch, setting):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, setting)
    record(CONVERSATION, ({"role": "assistant", "content": "It is 21°C and sunny."}, "stop"))
    (span,) = spans.get_finished_spans()
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You are terse."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        ]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "21°C, sunny"}]},
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "It is 21°C and sunny."}],
         "finish_reason": "stop"},
    ]
    assert "21°C" in span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]  # readable text, not \\u escapes


def test_openai_response_objects_become_tool_call_parts(spans, monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    message = ChatCompletionMessage(
        role="assistant",
        content=None,
        tool_calls=[ChatCompletionMessageToolCall(
            id="call_9", type="function", function=Function(name="lookup_order", arguments='{"order": 42}'))],
    )
    record("Where is order 42?", (message, "tool_calls"))
    (span,) = spans.get_finished_spans()
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Where is order 42?"}]},
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "finish_reason": "tool_calls", "parts": [
            {"type": "tool_call", "id": "call_9", "name": "lookup_order", "arguments": {"order": 42}},
        ]},
    ]


def test_ollama_messages_become_the_same_shape(spans, monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    asked = [ollama.Message(role="user", content="Order 42?")]
    answer = ollama.Message(
        role="assistant",
        content="",
        tool_calls=[ollama.Message.ToolCall(function=ollama.Message.ToolCall.Function(
            name="lookup_order", arguments={"order": 42}))],
    )
    record(asked, (answer, "stop"))
    (span,) = spans.get_finished_spans()
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Order 42?"}]},
    ]
    assert json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]) == [
        {"role": "assistant", "finish_reason": "stop", "parts": [
            {"type": "tool_call", "id": None, "name": "lookup_order", "arguments": {"order": 42}},
        ]},
    ]


def test_multi_part_content_keeps_text_and_names_other_parts_without_their_data(spans, monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    record([{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]}])
    (span,) = spans.get_finished_spans()
    assert json.loads(span.attributes[semconv.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is in this picture?"}, {"type": "image_url"}]},
    ]


def test_capture_is_read_at_call_time(spans, monkeypatch):
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    record("first")
    monkeypatch.setenv(semconv.CAPTURE_MESSAGE_CONTENT_ENV, "false")
    record("second")
    first, second = spans.get_finished_spans()
    assert semconv.GEN_AI_INPUT_MESSAGES in first.attributes
    assert semconv.GEN_AI_INPUT_MESSAGES not in second.attributes
