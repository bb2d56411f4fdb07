"""otel-llm: LLM calls as first-class OpenTelemetry spans.

The emitting side (this package) depends on the OpenTelemetry API and SDK only; the
processor, exporters and reports are imported when asked for. ``configure`` and
``instrument`` are loaded on first use, so ``import otel_llm`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_llm.call import LLMCall, error_type_of, llm_span
from otel_llm.fallback import (
    AllAttemptsFailed,
    Attempt,
    ChainRun,
    ChainUsageError,
    FallbackChain,
    Target,
    current_attempt,
    fallback_attempts,
    fallback_chain,
)
from otel_llm.routing import record_routing_decision
from otel_llm.scope import Scope, ScopeSpanProcessor, agent, current_scope, route, scope, session, user
from otel_llm.tools import ToolCall, tool_span

if TYPE_CHECKING:
    from otel_llm.feedback import flush_feedback, record_feedback
    from otel_llm.setup import Telemetry, configure

_LAZY = {
    "configure": ("otel_llm.setup", "configure"),
    "Telemetry": ("otel_llm.setup", "Telemetry"),
    "llm_call": ("otel_llm.decorator", "llm_call"),
    "instrument": ("otel_llm.instrument", "instrument"),
    "uninstrument": ("otel_llm.instrument", "uninstrument"),
    "record_feedback": ("otel_llm.feedback", "record_feedback"),
    "flush_feedback": ("otel_llm.feedback", "flush_feedback"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'otel_llm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


__all__ = [
    "AllAttemptsFailed",
    "Attempt",
    "ChainRun",
    "ChainUsageError",
    "FallbackChain",
    "LLMCall",
    "Scope",
    "ScopeSpanProcessor",
    "Target",
    "Telemetry",
    "ToolCall",
    "agent",
    "configure",
    "current_attempt",
    "current_scope",
    "error_type_of",
    "fallback_attempts",
    "fallback_chain",
    "flush_feedback",
    "instrument",
    "llm_call",
    "llm_span",
    "record_feedback",
    "record_routing_decision",
    "route",
    "scope",
    "session",
    "tool_span",
    "uninstrument",
    "user",
]
