"""@llm_call: every call of the decorated function is an LLM span; the function is unchanged."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging

import ollama
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm import semconv
from otel_llm._safety import reset_for_tests
from otel_llm.decorator import llm_call
from otel_llm.extract import record_response
from tests.fake_provider import CACHED_TOKENS, PROMPT_TOKENS, FakeProvider

A = semconv
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


class ProviderDown(Exception):
    """The provider did not answer."""


@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p


def only_span(spans):
    (span,) = spans.get_finished_spans()
    return span


def chat_response(model="gpt-4o-mini-2024-07-18"):
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


# --- real clients -----------------------------------------------------------------------------------
def test_sync_function_with_real_openai_client(provider, spans):
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    returned = {}

    @llm_call(provider="openai", agent="support", route="primary", server_address="127.0.0.1",
              server_port=provider.port)
    def ask(question: str, *, model: str, tools=None):
        """Ask the model."""
        returned["value"] = client.chat.completions.create(model=model, messages=MESSAGES, tools=tools)
        return returned["value"]

    result = ask("weather?", model="gpt-4o-mini", tools=[WEATHER_TOOL])
    assert result is returned["value"]  # the very object the function returned
    span = only_span(spans)
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert a[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.GEN_AI_AGENT_NAME] == "support"
    assert a[A.OTEL_LLM_ROUTE] == "primary"
    assert a[A.SERVER_PORT] == provider.port
    assert a[A.GEN_AI_RESPONSE_ID] == result.id
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == PROMPT_TOKENS
    assert a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHED_TOKENS
    assert a[A.OTEL_LLM_TOOLS_OFFERED] == 1  # read from the call's tools=
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather",)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("tool_calls",)
    assert span.status.status_code is StatusCode.UNSET


def test_async_function_with_real_ollama_client(provider, spans):
    @llm_call(provider="ollama")
    async def chat(model: str):
        return await ollama.AsyncClient(host=provider.url).chat(model=model, messages=MESSAGES, tools=[WEATHER_TOOL])

    result = asyncio.run(chat("llama3.2"))
    assert isinstance(result, ollama.ChatResponse)
    a = only_span(spans).attributes
    assert a[A.GEN_AI_REQUEST_MODEL] == "llama3.2"
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_RESPONSE_MODEL]) == (PROMPT_TOKENS, "llama3.2")
    assert tuple(a[A.OTEL_LLM_TOOL_CALL_NAMES]) == ("get_weather",)
    assert a[A.OTEL_LLM_OLLAMA_LOAD_DURATION] == pytest.approx(0.12)


def test_sdk_method_that_returns_a_coroutine_is_followed_to_its_answer(provider, spans):
    """AsyncOpenAI's chat ``create`` is a plain function returning a coroutine."""
    async def main():
        client = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
        create = llm_call(provider="openai")(client.chat.completions.create)
        pending = create(model="gpt-4o-mini", messages=MESSAGES)
        assert inspect.iscoroutine(pending)
        assert spans.get_finished_spans() == ()  # not done until awaited
        result = await pending
        await client.close()
        return result

    result = asyncio.run(main())
    a = only_span(spans).attributes
    assert a[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert a[A.GEN_AI_RESPONSE_ID] == result.id
    assert a[A.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens


# --- forms and metadata -------------------------------------------------------------------------------
def test_bare_decorator_and_metadata_preserved(spans):
    def ask(prompt: str, model: str = "gpt-4o-mini") -> dict:
        """Docstring kept."""
        return chat_response()

    decorated = llm_call(ask)
    assert decorated.__name__ == "ask" and decorated.__doc__ == "Docstring kept."
    assert decorated.__wrapped__ is ask
    assert inspect.signature(decorated) == inspect.signature(ask)
    decorated("hi")
    span = only_span(spans)
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "chat"
    assert span.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"  # the parameter's default


def test_async_function_stays_a_coroutine_function():
    @llm_call(provider="openai")
    async def ask():
        return chat_response()

    assert inspect.iscoroutinefunction(ask)


@pytest.mark.parametrize("how", ["keyword", "positional", "model_from", "callable", "fixed"])
def test_request_model(spans, how):
    def call(prompt, model=None, engine=None):
        return chat_response()

    if how == "keyword":
        llm_call(provider="openai")(call)("hi", model="m-kw")
        expected = "m-kw"
    elif how == "positional":
        llm_call(provider="openai")(call)("hi", "m-pos")
        expected = "m-pos"
    elif how == "model_from":
        llm_call(provider="openai", model_from="engine")(call)("hi", engine="m-engine")
        expected = "m-engine"
    elif how == "callable":
        llm_call(provider="openai", model_from=lambda args, kwargs: args[0].upper())(call)("m-hook")
        expected = "M-HOOK"
    else:
        llm_call(provider="openai", model="m-fixed")(call)("hi", model="m-kw")
        expected = "m-fixed"
    span = only_span(spans)
    assert span.attributes[A.GEN_AI_REQUEST_MODEL] == expected
    assert span.name == f"chat {expected}"


def test_method_model_read_after_self(spans):
    class Agent:
        @llm_call(provider="openai", agent="planner")
        def plan(self, model, goal):
            return chat_response()

    Agent().plan("gpt-4.1", "ship it")
    assert only_span(spans).attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4.1"


def test_scope_and_nesting(spans):
    tracer = trace.get_tracer("test")

    @llm_call(provider="openai", model="m")
    def ask():
        with tracer.start_as_current_span("http POST"):
            return chat_response()

    with otel_llm.scope(agent="billing", session="s-1"):
        ask()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    http, llm = by_name["http POST"], by_name["chat m"]
    assert http.parent.span_id == llm.context.span_id  # work inside the call nests under its span
    assert llm.attributes[A.GEN_AI_AGENT_NAME] == "billing"
    assert llm.attributes[A.SESSION_ID] == "s-1"


def test_messages_recorded_only_with_capture(spans, monkeypatch):
    @llm_call(provider="openai", model="m")
    def ask(messages):
        return chat_response()

    monkeypatch.delenv(A.CAPTURE_MESSAGE_CONTENT_ENV, raising=False)
    ask(messages=MESSAGES)
    assert A.GEN_AI_INPUT_MESSAGES not in only_span(spans).attributes
    spans.clear()
    monkeypatch.setenv(A.CAPTURE_MESSAGE_CONTENT_ENV, "true")
    ask(messages=MESSAGES)
    a = only_span(spans).attributes
    assert json.loads(a[A.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "Weather in Paris?"
    assert json.loads(a[A.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "ok"


# --- exceptions ----------------------------------------------------------------------------------------
def test_sync_exception_propagates_unchanged(spans):
    boom = ProviderDown("503")

    @llm_call(provider="openai", model="m")
    def ask():
        raise boom

    with pytest.raises(ProviderDown) as caught:
        ask()
    assert caught.value is boom
    span = only_span(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ProviderDown"
    assert span.events[0].name == "exception"


def test_async_exception_propagates_unchanged(spans):
    boom = ProviderDown("timeout")

    @llm_call(provider="openai", model="m")
    async def ask():
        await asyncio.sleep(0)
        raise boom

    async def main():
        with pytest.raises(ProviderDown) as caught:
            await ask()
        assert caught.value is boom

    asyncio.run(main())
    assert only_span(spans).attributes[A.ERROR_TYPE] == "ProviderDown"


def test_real_http_error_is_recorded_with_its_class(provider, spans):
    client = openai.OpenAI(base_url=provider.openai_base_url, api_key="test", max_retries=0)
    ask = llm_call(provider="openai")(client.chat.completions.create)
    with pytest.raises(openai.RateLimitError):
        ask(model="gpt-4o-mini@status=429", messages=MESSAGES)
    span = only_span(spans)
    assert span.attributes[A.ERROR_TYPE] == "RateLimitError"


# --- never harm the host --------------------------------------------------------------------------------
class BrokenExporter(SpanExporter):
    def export(self, spans):
        raise RuntimeError("exporter is down")

    def shutdown(self):
        pass


class BrokenProcessor:
    """A span processor that raises where the SDK does not catch it."""

    def __init__(self, on_start=False):
        self.raise_on_start = on_start

    def on_start(self, span, parent_context=None):
        if self.raise_on_start:
            raise RuntimeError("on_start broke")

    def _on_ending(self, span):
        pass

    def on_end(self, span):
        raise RuntimeError("on_end broke")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


@pytest.fixture
def add_processor(tracer_provider):
    added = []

    def add(processor):
        tracer_provider.add_span_processor(processor)
        added.append(processor)

    yield add
    multi = tracer_provider._active_span_processor
    multi._span_processors = tuple(p for p in multi._span_processors if p not in added)


@pytest.mark.parametrize("broken", ["exporter", "on_end", "on_start"])
def test_broken_telemetry_leaves_the_result_untouched(spans, add_processor, broken, caplog):
    reset_for_tests()
    if broken == "exporter":
        add_processor(SimpleSpanProcessor(BrokenExporter()))
    else:
        add_processor(BrokenProcessor(on_start=broken == "on_start"))
    response = chat_response()
    snapshot = json.dumps(response)

    @llm_call(provider="openai", model="m")
    def ask():
        return response

    @llm_call(provider="openai", model="m")
    async def ask_async():
        return response

    @llm_call(provider="openai", model="m")
    def chunks():
        yield from ["a", "b"]

    with caplog.at_level(logging.WARNING):
        assert ask() is response
        assert asyncio.run(ask_async()) is response
        assert list(chunks()) == ["a", "b"]
    assert json.dumps(response) == snapshot  # not modified either


def test_extractor_hook_reads_another_shape(spans):
    anthropic_like = {"id": "msg_1", "model": "claude-3-5-haiku", "stop_reason": "end_turn",
                      "usage": {"input_tokens": 30, "cache_read_input_tokens": 20, "output_tokens": 5}}

    def read(call, response):
        usage = response["usage"]
        call.set_response(model=response["model"], id=response["id"], finish_reasons=[response["stop_reason"]])
        call.set_usage(input_tokens=usage["input_tokens"] + usage["cache_read_input_tokens"],
                       cache_read_input_tokens=usage["cache_read_input_tokens"], output_tokens=usage["output_tokens"])

    @llm_call(provider="anthropic", model="claude-3-5-haiku", extractor=read)
    def ask():
        return anthropic_like

    assert ask() is anthropic_like
    a = only_span(spans).attributes
    assert (a[A.GEN_AI_USAGE_INPUT_TOKENS], a[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]) == (50, 20)
    assert tuple(a[A.GEN_AI_RESPONSE_FINISH_REASONS]) == ("end_turn",)


def test_failing_extractor_hook_is_logged_not_raised(spans, caplog):
    reset_for_tests()
    response = chat_response()

    def broken(call, response):
        raise ValueError("hook bug")

    ask = llm_call(provider="openai", model="m", extractor=broken)(lambda: response)
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        assert ask() is response
    assert only_span(spans).status.status_code is StatusCode.UNSET
    assert any("hook bug" in r.getMessage() for r in caplog.records)


def test_extractor_can_keep_the_built_in_reading(spans):
    def read(call, response):
        record_response(call, response)
        call.set_cost(0.002)

    llm_call(provider="openai", model="m", extractor=read)(chat_response)()
    a = only_span(spans).attributes
    assert a[A.GEN_AI_USAGE_INPUT_TOKENS] == 10
    assert a[A.OTEL_LLM_COST_USD] == pytest.approx(0.002)


def test_chunk_extractor_hook(spans):
    seen = []

    @llm_call(provider="custom", model="m", chunk_extractor=lambda call, chunk: seen.append(chunk))
    def stream():
        yield from ("x", "y")

    assert list(stream()) == ["x", "y"]
    assert seen == ["x", "y"]
    assert only_span(spans).attributes[A.GEN_AI_REQUEST_STREAM] is True


# --- mistakes fail when decorating ----------------------------------------------------------------------
def target(prompt, model="m"):
    return chat_response()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"providr": "openai"}, TypeError, "providr"),
        ({"provider": 3}, TypeError, "provider"),
        ({"operation": ""}, TypeError, "operation"),
        ({"server_port": "443"}, TypeError, "server_port"),
        ({"server_port": 70000}, ValueError, "server_port"),
        ({"stream": "yes"}, TypeError, "stream"),
        ({"tools": "get_weather"}, TypeError, "tools"),
        ({"tools": -1}, ValueError, "tools"),
        ({"attempt": True}, TypeError, "attempt"),
        ({"attempt": -1}, ValueError, "attempt"),
        ({"attributes": {"team": {"nested": 1}}}, TypeError, "team"),
        ({"extractor": "record"}, TypeError, "extractor"),
        ({"chunk_extractor": 1}, TypeError, "chunk_extractor"),
        ({"model_from": "engine"}, TypeError, "engine"),
        ({"model_from": 3}, TypeError, "model_from"),
    ],
)
def test_bad_arguments_fail_at_decoration_time(kwargs, error, message):
    with pytest.raises(error, match=message):
        llm_call(**kwargs)(target)


def test_positional_argument_to_the_decorator_is_a_clear_error():
    with pytest.raises(TypeError, match="keyword-only"):
        llm_call("openai")


def test_decorated_arguments_are_checked_before_any_call():
    calls = []
    with pytest.raises(TypeError):
        llm_call(provider=["openai"])(lambda: calls.append(1))
    assert calls == []


def test_partial_and_callable_objects_are_accepted(spans):
    llm_call(provider="openai")(functools.partial(target, "hi"))(model="m-partial")
    assert only_span(spans).attributes[A.GEN_AI_REQUEST_MODEL] == "m-partial"
