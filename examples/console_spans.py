"""An agent's LLM calls as OpenTelemetry spans, printed to the console. No network needed.

Run it with ``python examples/console_spans.py``. A pretend provider stands in for a
real model API; everything else is what an application writes:

1. ``configure(console=True)`` — a tracer provider printing every span as JSON
   (``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` name the service);
2. ``scope(...)`` — agent, session and user carried by every span inside, under an
   ``invoke_agent`` span;
3. ``llm_span(...)`` — one provider call as a ``chat {model}`` span with its tokens;
4. ``tool_span(...)`` — the tool the model asked for, as an ``execute_tool`` span;
5. a fallback chain — the primary target is rate-limited, the local model answers:
   two attempt spans sharing one logical call id, under a ``fallback_chain`` span that
   also carries the routing decision.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

import otel_llm
from otel_llm.call import LLMCall
from otel_llm.fallback import Target, fallback_chain
from otel_llm.routing import record_routing_decision
from otel_llm.setup import configure
from otel_llm.tools import tool_span


class RateLimited(Exception):
    """What the pretend provider raises when it is 'overloaded'."""


def pretend_provider(model: str, prompt: str, *, overloaded: bool = False) -> dict[str, Any]:
    """Answer like a chat API would (its own response shape), or fail like one."""
    if overloaded:
        raise RateLimited("429: too many requests, retry later")
    words = prompt.split()
    return {
        "model": f"{model}-2025-01",
        "id": f"resp-{len(words)}",
        "text": f"({model}) Order 42 ships tomorrow.",
        "usage": {"prompt": len(words) * 3, "completion": 9},
        "stop": "stop",
    }


def read_pretend_response(call: LLMCall, response: dict[str, Any]) -> None:
    """Teach otel-llm the pretend provider's response shape (OpenAI and Ollama shapes need no hook)."""
    call.set_response(model=response["model"], id=response["id"], finish_reasons=[response["stop"]])
    call.set_usage(input_tokens=response["usage"]["prompt"], output_tokens=response["usage"]["completion"])


def main() -> None:
    telemetry = configure(console=True, service_name="console-example", observations=False)
    question = "Where is my order 42?"

    with otel_llm.scope(agent="support", session="session-42", user="user-7", invoke_agent_span=True):
        # One provider call: which tool does the model want?
        with otel_llm.llm_span(provider="openai", model="gpt-4o-mini", route="triage", tools=["lookup_order"]) as call:
            call.record_response(pretend_provider("gpt-4o-mini", question), extractor=read_pretend_response)
            call.add_tool_call("lookup_order", "call_1")

        # The tool the model asked for.
        with tool_span("lookup_order", call_id="call_1", description="Find an order by number") as tool:
            tool.record_result({"order": 42, "status": "shipping"})

        # The answer: the primary target is rate-limited, the local model takes over.
        chain = fallback_chain(
            "answer",
            [
                Target("openai", "gpt-4o", route="primary", call=partial(pretend_provider, "gpt-4o", overloaded=True)),
                Target("ollama", "llama3.2", route="local", call=partial(pretend_provider, "llama3.2"),
                       server_address="localhost", server_port=11434),
            ],
            extractor=read_pretend_response,
        )
        with chain as run:
            record_routing_decision(
                complexity="simple", score=0.3, candidates=chain.targets, selected="primary", preference="cost",
            )
            answer = run.run(question)

    telemetry.shutdown()
    print(f"\nanswer: {answer['text']}  (after {run.attempts} attempts, from {run.selected.key})", file=sys.stderr)


if __name__ == "__main__":
    main()
