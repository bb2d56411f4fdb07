"""Fallback chains: one span per attempt, a parent span per logical call, no leaked errors."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm import semconv
from otel_llm.fallback import (
    AllAttemptsFailed,
    ChainUsageError,
    Target,
    current_attempt,
    fallback_attempts,
    fallback_chain,
)


class RateLimited(Exception):
    pass


class ProviderDown(Exception):
    pass


def failing(exc: BaseException):
    def call(*args, **kwargs):
        raise exc

    return call


def usage_extractor(call, response):
    call.set_response(model=response["model"], id=response["id"])
    call.set_usage(input_tokens=response["in"], output_tokens=response["out"])


def split(spans):
    finished = spans.get_finished_spans()
    chains = [s for s in finished if s.name.startswith("fallback_chain ")]
    attempts = [s for s in finished if s.attributes.get(semconv.OTEL_LLM_ATTEMPT) is not None]
    return chains, sorted(attempts, key=lambda s: s.attributes[semconv.OTEL_LLM_ATTEMPT])


def test_two_failures_then_success_gives_three_attempt_spans_under_one_chain(spans):
    seen_args = []

    def answer(prompt, *, temperature):
        seen_args.append((prompt, temperature))
        return {"model": "llama3.2:3b", "id": "r-1", "in": 12, "out": 5, "text": "hi"}

    chain = fallback_chain(
        "answer",
        [
            Target("openai", "gpt-4o", route="primary", call=failing(RateLimited("429 slow down"))),
            Target("anthropic", "claude-3-5-haiku", route="secondary", call=failing(ProviderDown("503"))),
            Target("ollama", "llama3.2", route="local", call=answer, server_address="localhost", server_port=11434),
        ],
        extractor=usage_extractor,
    )
    result = chain.run("hello", temperature=0.1)

    assert result["text"] == "hi"
    assert seen_args == [("hello", 0.1)]
    (parent,), attempts = split(spans)
    assert parent.name == "fallback_chain answer"
    assert parent.kind is SpanKind.INTERNAL
    assert parent.status.status_code is StatusCode.OK
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_ATTEMPTS] == 3
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_SELECTED] == "local"
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"
    assert semconv.GEN_AI_OPERATION_NAME not in parent.attributes  # the chain is not a provider call

    logical_id = trace.format_span_id(parent.context.span_id)
    assert [a.attributes[semconv.OTEL_LLM_ATTEMPT] for a in attempts] == [0, 1, 2]
    assert [a.attributes[semconv.OTEL_LLM_FALLBACK] for a in attempts] == [False, True, True]
    assert semconv.OTEL_LLM_FALLBACK_REASON not in attempts[0].attributes
    assert attempts[1].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "RateLimited"
    assert attempts[2].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "ProviderDown"
    for a in attempts:
        assert a.kind is SpanKind.CLIENT
        assert a.parent.span_id == parent.context.span_id
        assert a.context.trace_id == parent.context.trace_id
        assert a.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID] == logical_id
    assert [a.name for a in attempts] == ["chat gpt-4o", "chat claude-3-5-haiku", "chat llama3.2"]
    assert [a.attributes[semconv.OTEL_LLM_ROUTE] for a in attempts] == ["primary", "secondary", "local"]
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    assert [a.attributes.get(semconv.ERROR_TYPE) for a in attempts] == ["RateLimited", "ProviderDown", None]
    last = attempts[2].attributes
    assert last[semconv.GEN_AI_RESPONSE_MODEL] == "llama3.2:3b"
    assert last[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12 and last[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert last[semconv.SERVER_ADDRESS] == "localhost" and last[semconv.SERVER_PORT] == 11434


def test_async_chain_awaits_async_targets_and_accepts_sync_ones(spans):
    async def slow_fail(prompt):
        await asyncio.sleep(0)
        raise TimeoutError("read timeout")

    def sync_answer(prompt):
        return f"answer to {prompt}"

    chain = fallback_chain(
        "async-answer",
        [Target("openai", "gpt-4o-mini", call=slow_fail), Target("ollama", "qwen2.5", call=sync_answer)],
        record_response=False,
    )
    assert asyncio.run(chain.arun("q")) == "answer to q"
    (parent,), attempts = split(spans)
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_ATTEMPTS] == 2
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_SELECTED] == "ollama/qwen2.5"
    assert attempts[0].attributes[semconv.ERROR_TYPE] == "TimeoutError"
    assert attempts[1].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "TimeoutError"


def test_every_attempt_failing_raises_all_attempts_failed_with_each_error(spans):
    first, second = RateLimited("429"), ProviderDown("connection refused")
    chain = fallback_chain(
        "doomed",
        [Target("openai", "gpt-4o", call=failing(first)), Target("ollama", "llama3.2", route="local", call=failing(second))],
    )
    with pytest.raises(AllAttemptsFailed) as caught:
        chain.run()
    err = caught.value
    assert isinstance(err, Exception)
    assert [(t.key, e) for t, e in err.errors] == [("openai/gpt-4o", first), ("local", second)]
    assert err.__cause__ is second and err.last_error is second
    message = str(err)
    assert "doomed" in message and "2 attempts" in message
    assert "openai/gpt-4o: RateLimited: 429" in message and "local: ProviderDown: connection refused" in message
    (parent,), attempts = split(spans)
    assert parent.status.status_code is StatusCode.ERROR
    assert parent.attributes[semconv.ERROR_TYPE] == "AllAttemptsFailed"
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "all_failed"
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_ATTEMPTS] == 2
    assert semconv.OTEL_LLM_CHAIN_SELECTED not in parent.attributes
    assert all(a.status.status_code is StatusCode.ERROR for a in attempts)


def test_error_the_predicate_rejects_propagates_unchanged_and_stops_the_chain(spans):
    calls = []
    bug = KeyError("prompt_template")

    def second(*_):
        calls.append("second")
        return "never"

    chain = fallback_chain(
        "strict",
        [Target("openai", "gpt-4o", call=failing(bug)), Target("ollama", "llama3.2", call=second)],
        fallback_on=(RateLimited, ProviderDown),
    )
    with pytest.raises(KeyError) as caught:
        chain.run()
    assert caught.value is bug
    assert calls == []
    (parent,), (attempt,) = split(spans)
    assert parent.status.status_code is StatusCode.ERROR
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "error"
    assert parent.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert attempt.attributes[semconv.ERROR_TYPE] == "KeyError"


def test_predicate_function_decides_per_exception(spans):
    def only_429(exc: Exception) -> bool:
        return "429" in str(exc)

    chain = fallback_chain(
        "by-message",
        [
            Target("openai", "gpt-4o", call=failing(RateLimited("429"))),
            Target("openai", "gpt-4o-mini", call=failing(RateLimited("400 bad request"))),
            Target("ollama", "llama3.2", call=lambda: "unreached"),
        ],
        fallback_on=only_429,
    )
    with pytest.raises(RateLimited, match="400"):
        chain.run()
    _, attempts = split(spans)
    assert len(attempts) == 2


def test_a_broken_predicate_is_logged_and_the_error_propagates(spans, caplog):
    from otel_llm import _safety

    _safety.reset_for_tests()

    def broken(exc):
        raise RuntimeError("predicate bug")

    chain = fallback_chain(
        "broken-predicate",
        [Target("openai", "gpt-4o", call=failing(RateLimited("429"))), Target("ollama", "llama3.2", call=lambda: "x")],
        fallback_on=broken,
    )
    with caplog.at_level(logging.WARNING, logger="otel_llm"):
        with pytest.raises(RateLimited):
            chain.run()
    assert "predicate bug" in caplog.text


def test_keyboard_interrupt_is_never_swallowed(spans):
    chain = fallback_chain(
        "interrupted",
        [Target("openai", "gpt-4o", call=failing(KeyboardInterrupt())), Target("ollama", "llama3.2", call=lambda: "x")],
    )
    with pytest.raises(KeyboardInterrupt):
        chain.run()
    (parent,), (attempt,) = split(spans)
    assert parent.attributes[semconv.ERROR_TYPE] == "KeyboardInterrupt"
    assert attempt.attributes[semconv.ERROR_TYPE] == "KeyboardInterrupt"


def test_cancellation_is_never_swallowed(spans):
    started = []

    async def hang(*_):
        started.append(True)
        await asyncio.sleep(3600)

    chain = fallback_chain(
        "cancelled", [Target("openai", "gpt-4o", call=hang), Target("ollama", "llama3.2", call=lambda: "x")]
    )

    async def main():
        task = asyncio.create_task(chain.arun())
        while not started:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    (parent,), (attempt,) = split(spans)
    assert attempt.attributes[semconv.ERROR_TYPE] == "CancelledError"
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "error"


def test_chain_level_call_serves_targets_without_their_own(spans):
    seen = []

    def ask(target, prompt):
        seen.append(target.model)
        if target.model == "gpt-4o":
            raise ProviderDown("503")
        return f"{target.model}: {prompt}"

    chain = fallback_chain(
        "shared-call", [Target("openai", "gpt-4o"), Target("ollama", "llama3.2")], call=ask, record_response=False
    )
    assert chain.run("hi") == "llama3.2: hi"
    assert seen == ["gpt-4o", "llama3.2"]


def test_iterator_style_stops_after_the_first_success(spans):
    tried = []
    targets = [Target("openai", "gpt-4o"), Target("ollama", "llama3.2"), Target("ollama", "qwen2.5")]
    result = None
    for attempt in fallback_attempts("loop", targets):
        with attempt as call:
            tried.append(attempt.target.model)
            if attempt.index == 0:
                raise ProviderDown("503")
            call.set_usage(input_tokens=3, output_tokens=1)
            result = "answered"
    assert result == "answered"
    assert tried == ["gpt-4o", "llama3.2"]
    (parent,), attempts = split(spans)
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_SELECTED] == "ollama/llama3.2"
    assert attempts[1].attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert attempts[1].attributes[semconv.OTEL_LLM_FALLBACK_REASON] == "ProviderDown"


def test_iterator_style_raises_all_attempts_failed_from_the_loop(spans):
    with pytest.raises(AllAttemptsFailed) as caught:
        for attempt in fallback_attempts("loop-fail", [Target("openai", "gpt-4o"), Target("ollama", "llama3.2")]):
            with attempt:
                raise ProviderDown(attempt.target.model)
    assert [str(e) for _, e in caught.value.errors] == ["gpt-4o", "llama3.2"]
    (parent,), _ = split(spans)
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "all_failed"


def test_leaving_the_loop_early_still_ends_the_chain_span(spans):
    for attempt in fallback_attempts("gave-up", [Target("openai", "gpt-4o"), Target("ollama", "llama3.2")]):
        with attempt:
            raise ProviderDown("503")
        break  # the application gives up after the first failure
    (parent,), (attempt_span,) = split(spans)
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "abandoned"
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_ATTEMPTS] == 1


def test_an_attempt_not_entered_is_a_clear_usage_error(spans):
    with pytest.raises(ChainUsageError, match="with attempt"):
        for attempt in fallback_attempts("misused", [Target("openai", "gpt-4o"), Target("ollama", "llama3.2")]):
            pass


def test_sync_run_of_an_async_target_is_a_usage_error_not_a_fallback(spans):
    async def async_target():
        return "x"

    calls = []
    chain = fallback_chain(
        "wrong-run",
        [Target("openai", "gpt-4o", call=async_target), Target("ollama", "llama3.2", call=lambda: calls.append(1))],
    )
    with pytest.raises(ChainUsageError, match="arun"):
        chain.run()
    assert calls == []


def test_target_code_can_record_on_the_attempt_and_is_not_recorded_twice(spans):
    extractor_calls = []

    def answer():
        attempt = current_attempt()
        assert attempt is not None and attempt.target.model == "llama3.2"
        attempt.call.add_tool_call("lookup", "call_1")
        return {"anything": True}

    chain = fallback_chain(
        "self-recording",
        [Target("ollama", "llama3.2", call=answer)],
        extractor=lambda call, response: extractor_calls.append(response),
    )
    chain.run()
    assert extractor_calls == []
    assert current_attempt() is None
    _, (attempt,) = split(spans)
    assert attempt.attributes[semconv.OTEL_LLM_TOOL_CALLS] == 1


def test_child_spans_of_the_target_nest_under_its_attempt(spans):
    from otel_llm._tracer import tracer

    def answer():
        with tracer().start_as_current_span("POST /api/chat"):
            return "ok"

    fallback_chain("nesting", [Target("ollama", "llama3.2", call=answer)], record_response=False).run()
    http = next(s for s in spans.get_finished_spans() if s.name == "POST /api/chat")
    _, (attempt,) = split(spans)
    assert http.parent.span_id == attempt.context.span_id


def test_one_chain_shared_by_concurrent_tasks_keeps_runs_apart(spans):
    async def answer(prompt):
        await asyncio.sleep(0)
        if prompt % 2:
            raise ProviderDown("odd")
        return prompt

    async def backup(prompt):
        await asyncio.sleep(0)
        return -prompt

    chain = fallback_chain(
        "shared", [Target("openai", "gpt-4o", call=answer), Target("ollama", "llama3.2", call=backup)],
        record_response=False,
    )

    async def main():
        return await asyncio.gather(*(chain.arun(i) for i in range(6)))

    assert asyncio.run(main()) == [0, -1, 2, -3, 4, -5]
    chains, attempts = split(spans)
    assert len(chains) == 6
    ids = {trace.format_span_id(c.context.span_id): c for c in chains}
    for a in attempts:
        parent = ids[a.attributes[semconv.OTEL_LLM_LOGICAL_CALL_ID]]
        assert a.parent.span_id == parent.context.span_id
    assert sorted(c.attributes[semconv.OTEL_LLM_CHAIN_ATTEMPTS] for c in chains) == [1, 1, 1, 2, 2, 2]


def test_attempts_carry_the_scope(spans):
    chain = fallback_chain("scoped", [Target("ollama", "llama3.2", call=lambda: "x")], record_response=False)
    with otel_llm.scope(agent="support", session="s-42"):
        chain.run()
    _, (attempt,) = split(spans)
    assert attempt.attributes[semconv.GEN_AI_AGENT_NAME] == "support"
    assert attempt.attributes[semconv.SESSION_ID] == "s-42"


def test_with_block_makes_the_chain_span_current_and_runs_once(spans):
    chain = fallback_chain("block", [Target("ollama", "llama3.2", call=lambda: "x")], record_response=False)
    with chain as run:
        assert trace.get_current_span() is run.span
        assert chain.run() == "x"
        with pytest.raises(ChainUsageError, match="already ran"):
            chain.run()
    assert run.outcome == "ok" and run.selected is chain.targets[0]
    assert trace.get_current_span() is not run.span
    (parent,), _ = split(spans)
    assert parent.attributes[semconv.OTEL_LLM_CHAIN_OUTCOME] == "ok"


def test_attempt_metrics_carry_the_error_type(spans, metric_reader):
    from tests.conftest import collect_points

    fallback_chain(
        "metrics",
        [Target("openai", "fallback-metrics-model", call=failing(RateLimited("429"))),
         Target("ollama", "fallback-metrics-model", call=lambda: "x")],
        record_response=False,
    ).run()
    points = [p for p in collect_points(metric_reader, semconv.METRIC_OPERATION_DURATION)
              if p.attributes.get(semconv.GEN_AI_REQUEST_MODEL) == "fallback-metrics-model"]
    by_provider = {p.attributes[semconv.GEN_AI_PROVIDER_NAME]: p.attributes.get(semconv.ERROR_TYPE) for p in points}
    assert by_provider == {"openai": "RateLimited", "ollama": None}


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: fallback_chain("empty", []), ValueError),
        (lambda: fallback_chain("", [Target("a", "b")]), TypeError),
        (lambda: Target("", "gpt-4o"), TypeError),
        (lambda: Target("openai", None), TypeError),
        (lambda: Target("openai", "gpt-4o", call="not callable"), TypeError),
        (lambda: fallback_chain("x", ["openai/gpt-4o"]), TypeError),
        (lambda: fallback_chain("x", [Target("a", "b")], fallback_on="RateLimited"), TypeError),
    ],
)
def test_bad_definitions_fail_at_the_call_site(make, error):
    with pytest.raises(error):
        make()


def test_target_without_any_call_is_a_usage_error(spans):
    with pytest.raises(ChainUsageError, match="no call"):
        fallback_chain("no-call", [Target("openai", "gpt-4o")]).run()


def test_targets_may_be_given_as_mappings(spans):
    chain = fallback_chain("mappings", [{"provider": "ollama", "model": "llama3.2", "call": lambda: 7}],
                           record_response=False)
    assert chain.run() == 7
