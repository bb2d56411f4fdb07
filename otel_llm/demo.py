"""``otel-llm demo``: a small agent workload against a local *simulated* provider.

Four agents (support, research, triage, writer) make chat calls through the SDK the way
an application would: ``llm_call``-decorated provider functions, scopes for agent,
session and route, a fallback chain whose first choice fails often, tools offered and
called, a streamed answer, and the occasional failure. Nothing leaves the machine: the provider is
:class:`otel_llm.simulated.SimulatedProvider`, and every response says so.

The spans become route observations in PostgreSQL (``OTEL_LLM_DSN`` or the embedded
server), and the demo ends by printing the route stats of what it just did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator

from otel_llm.decorator import llm_call
from otel_llm.fallback import AllAttemptsFailed, Target, fallback_chain
from otel_llm.scope import scope
from otel_llm.simulated import SimulatedProvider
from otel_llm.tools import tool_span

TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]


@dataclass
class DemoResult:
    """What the workload did, for the closing summary."""

    calls: int = 0
    failures: int = 0
    chains: int = 0
    chains_failed: int = 0


def run_workload(calls: int = 60, *, seed: int = 7, time_scale: float = 1.0) -> DemoResult:
    """Run ``calls`` agent steps against the simulated provider; returns what happened.

    Failures of single calls are caught here as an application would; the telemetry
    records them.
    """
    provider = SimulatedProvider(seed=seed, time_scale=time_scale)
    rng = random.Random(seed)

    @llm_call(provider="openai", server_address="simulated.invalid")
    def openai_chat(model: str, messages: list[dict[str, str]], tools: list[Any] | None = None) -> dict[str, Any]:
        return provider.chat(model, messages, tools)

    @llm_call(provider="anthropic", server_address="simulated.invalid")
    def anthropic_chat(model: str, messages: list[dict[str, str]], tools: list[Any] | None = None) -> dict[str, Any]:
        return provider.chat(model, messages, tools)

    @llm_call(provider="ollama", server_address="localhost", server_port=11434)
    def local_chat(model: str, messages: list[dict[str, str]], tools: list[Any] | None = None) -> dict[str, Any]:
        return provider.chat(model, messages, tools)

    @llm_call(provider="openai", server_address="simulated.invalid")
    def openai_stream(model: str, messages: list[dict[str, str]]) -> Iterator[dict[str, Any]]:
        yield from provider.chat_stream(model, messages)

    answer_chain = fallback_chain(
        "answer",
        [
            Target(provider="openai", model="flaky-large", route="answer-primary",
                   call=lambda messages: openai_chat("flaky-large", messages)),
            Target(provider="anthropic", model="claude-3-5-haiku-latest", route="answer-fallback",
                   call=lambda messages: anthropic_chat("claude-3-5-haiku-latest", messages)),
            Target(provider="ollama", model="llama3.2", route="answer-local",
                   call=lambda messages: local_chat("llama3.2", messages)),
        ],
    )

    result = DemoResult()
    for step in range(calls):
        session = f"demo-session-{step // 6}"
        kind = rng.choice(("support", "support", "research", "triage", "writer"))
        messages = [{"role": "user", "content": f"simulated request {step}"}]
        try:
            if kind == "support":
                with scope(agent="support", session=session, route="support-tools"):
                    response = openai_chat("gpt-4o-mini", messages, tools=TOOLS)
                    result.calls += 1
                    for tool_call in response["choices"][0]["message"].get("tool_calls") or ():
                        with tool_span(tool_call["function"]["name"], call_id=tool_call["id"]):
                            pass
            elif kind == "research":
                with scope(agent="research", session=session):
                    result.chains += 1
                    answer_chain.run(messages)
                    result.calls += 1
            elif kind == "writer":
                with scope(agent="writer", session=session, route="draft-stream"):
                    text = "".join(
                        chunk["choices"][0]["delta"].get("content") or ""
                        for chunk in openai_stream("gpt-4o", messages) if chunk["choices"]
                    )
                    result.calls += 1 if text else 0
            else:
                with scope(agent="triage", session=session, route="triage-local"):
                    local_chat("llama3.2", messages)
                    result.calls += 1
        except AllAttemptsFailed:
            result.chains_failed += 1
        except Exception:  # noqa: BLE001 - a failed call is part of the demo; telemetry has it
            result.failures += 1
    return result
