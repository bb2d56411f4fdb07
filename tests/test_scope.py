"""Scoping: agent, session, user, route and tags reach every LLM span opened inside."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import otel_llm
from otel_llm import semconv
from otel_llm._tracer import tracer
from otel_llm.scope import MAX_TAGS


def open_llm_span(model: str = "llama3.2") -> None:
    with otel_llm.llm_span(provider="ollama", model=model):
        pass


def by_model(spans) -> dict:
    return {s.attributes[semconv.GEN_AI_REQUEST_MODEL]: s.attributes for s in spans.get_finished_spans()
            if semconv.GEN_AI_REQUEST_MODEL in s.attributes}


def test_every_llm_span_inside_carries_the_scope(spans):
    with otel_llm.scope(agent="support", agent_id="agent-7", session="s-1", user="u-9", route="fast",
                        conversation="conv-3", tags={"tier": "gold", "region": "eu"}):
        open_llm_span("a")
        open_llm_span("b")
    open_llm_span("outside")
    seen = by_model(spans)
    for model in ("a", "b"):
        a = seen[model]
        assert a[semconv.GEN_AI_AGENT_NAME] == "support"
        assert a[semconv.GEN_AI_AGENT_ID] == "agent-7"
        assert a[semconv.SESSION_ID] == "s-1"
        assert a[semconv.USER_ID] == "u-9"
        assert a[semconv.OTEL_LLM_ROUTE] == "fast"
        assert a[semconv.GEN_AI_CONVERSATION_ID] == "conv-3"
        assert a[semconv.OTEL_LLM_TAGS_PREFIX + "tier"] == "gold"
        assert a[semconv.OTEL_LLM_TAGS_PREFIX + "region"] == "eu"
    outside = seen["outside"]
    assert not any(k in outside for k in (semconv.GEN_AI_AGENT_NAME, semconv.SESSION_ID, semconv.USER_ID))


def test_one_field_shorthands_compose(spans):
    with otel_llm.agent("triage"), otel_llm.session("s-2"), otel_llm.user("u-1"), otel_llm.route("local"):
        open_llm_span()
    a = by_model(spans)["llama3.2"]
    assert (a[semconv.GEN_AI_AGENT_NAME], a[semconv.SESSION_ID], a[semconv.USER_ID], a[semconv.OTEL_LLM_ROUTE]) == (
        "triage", "s-2", "u-1", "local")


def test_explicit_span_arguments_win_over_the_scope(spans):
    with otel_llm.scope(agent="support", route="fast"):
        with otel_llm.llm_span(provider="ollama", model="llama3.2", agent="billing", route="slow"):
            pass
    a = by_model(spans)["llama3.2"]
    assert a[semconv.GEN_AI_AGENT_NAME] == "billing" and a[semconv.OTEL_LLM_ROUTE] == "slow"


def test_spans_from_other_instrumentations_get_the_scope_without_losing_their_values(spans):
    # An instrumentation added later starts spans with a plain tracer; ScopeSpanProcessor
    # (installed by configure(), and by the test set-up) copies the scope onto them.
    other = tracer_for_other_instrumentation()
    with otel_llm.scope(agent="support", session="s-1"):
        with other.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT,
                                         attributes={semconv.GEN_AI_OPERATION_NAME: "chat",
                                                     semconv.GEN_AI_REQUEST_MODEL: "gpt-4o",
                                                     semconv.SESSION_ID: "their-session"}):
            pass
    (span,) = spans.get_finished_spans()
    assert span.instrumentation_scope.name == "some.other.instrumentation"
    assert span.attributes[semconv.GEN_AI_AGENT_NAME] == "support"
    assert span.attributes[semconv.SESSION_ID] == "their-session"


def tracer_for_other_instrumentation():
    from opentelemetry import trace

    return trace.get_tracer("some.other.instrumentation")


def test_nested_scopes_inherit_override_and_restore(spans):
    with otel_llm.scope(agent="support", session="s-1", tags={"tier": "gold"}):
        with otel_llm.scope(agent="billing", tags={"region": "eu"}):
            open_llm_span("inner")
        open_llm_span("outer")
    seen = by_model(spans)
    inner, outer = seen["inner"], seen["outer"]
    assert inner[semconv.GEN_AI_AGENT_NAME] == "billing"
    assert inner[semconv.SESSION_ID] == "s-1"
    assert inner[semconv.OTEL_LLM_TAGS_PREFIX + "tier"] == "gold"
    assert inner[semconv.OTEL_LLM_TAGS_PREFIX + "region"] == "eu"
    assert outer[semconv.GEN_AI_AGENT_NAME] == "support"
    assert semconv.OTEL_LLM_TAGS_PREFIX + "region" not in outer


def test_a_new_agent_does_not_inherit_the_outer_agent_id(spans):
    with otel_llm.scope(agent="support", agent_id="agent-7"):
        with otel_llm.scope(agent="billing"):
            open_llm_span()
    a = by_model(spans)["llama3.2"]
    assert a[semconv.GEN_AI_AGENT_NAME] == "billing"
    assert semconv.GEN_AI_AGENT_ID not in a


def test_a_scope_made_in_advance_inherits_where_it_is_entered(spans):
    per_user = otel_llm.user("u-5")
    with otel_llm.agent("support"):
        with per_user:
            open_llm_span()
    a = by_model(spans)["llama3.2"]
    assert a[semconv.USER_ID] == "u-5"
    assert a[semconv.GEN_AI_AGENT_NAME] == "support"


def test_concurrent_tasks_keep_their_scopes_apart(spans):
    async def handle(request: int) -> None:
        async with otel_llm.scope(agent=f"agent-{request % 2}", session=f"s-{request}"):
            for step in range(3):
                await asyncio.sleep(0)  # let the other tasks run in between
                with otel_llm.llm_span(provider="ollama", model=f"m-{request}-{step}"):
                    await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(handle(i) for i in range(8)))

    asyncio.run(main())
    seen = by_model(spans)
    assert len(seen) == 24
    for model, a in seen.items():
        request = int(model.split("-")[1])
        assert a[semconv.SESSION_ID] == f"s-{request}"
        assert a[semconv.GEN_AI_AGENT_NAME] == f"agent-{request % 2}"


def test_threads_started_with_a_copied_context_carry_the_scope(spans):
    barrier = threading.Barrier(4)

    def work(model: str) -> None:
        barrier.wait()  # the four threads run at the same time
        open_llm_span(model)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for i in range(4):
            with otel_llm.scope(user=f"u-{i}", route="batch"):
                ctx = contextvars.copy_context()
            futures.append(pool.submit(ctx.run, work, f"t-{i}"))
        for f in futures:
            f.result()
    seen = by_model(spans)
    for i in range(4):
        assert seen[f"t-{i}"][semconv.USER_ID] == f"u-{i}"
        assert seen[f"t-{i}"][semconv.OTEL_LLM_ROUTE] == "batch"


def test_invoke_agent_span_parents_the_llm_spans(spans):
    with otel_llm.scope(agent="researcher", session="s-8", invoke_agent_span=True) as s:
        assert s.span is not None
        open_llm_span("step-1")
        open_llm_span("step-2")
    finished = spans.get_finished_spans()
    agent_span = next(x for x in finished if x.name == "invoke_agent researcher")
    assert agent_span.kind is SpanKind.INTERNAL
    assert agent_span.attributes[semconv.GEN_AI_OPERATION_NAME] == "invoke_agent"
    assert agent_span.attributes[semconv.GEN_AI_AGENT_NAME] == "researcher"
    assert agent_span.attributes[semconv.SESSION_ID] == "s-8"
    llm = [x for x in finished if x.name.startswith("chat ")]
    assert len(llm) == 2
    assert all(x.parent.span_id == agent_span.context.span_id for x in llm)


class AgentGaveUp(Exception):
    pass


def test_invoke_agent_span_records_a_failure_and_the_error_propagates(spans):
    with pytest.raises(AgentGaveUp):
        with otel_llm.agent("researcher", invoke_agent_span=True):
            raise AgentGaveUp()
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[semconv.ERROR_TYPE] == "AgentGaveUp"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"agent": 42}, "agent must be a non-empty str"),
        ({"session": ""}, "session must be a non-empty str"),
        ({"user": ["u"]}, "user must be a non-empty str"),
        ({"tags": "tier=gold"}, "tags must be a mapping"),
        ({"tags": {"tier": object()}}, "tag 'tier' must be a str, number or bool"),
        ({"tags": {1: "x"}}, "tag names must be non-empty str"),
    ],
)
def test_bad_scope_arguments_give_a_clear_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        otel_llm.scope(**kwargs)


def test_too_many_tags_or_an_agent_span_without_agent_are_value_errors():
    with pytest.raises(ValueError, match="at most"):
        otel_llm.scope(tags={f"k{i}": "v" for i in range(MAX_TAGS + 1)})
    with pytest.raises(ValueError, match="needs an agent"):
        otel_llm.scope(session="s", invoke_agent_span=True)
