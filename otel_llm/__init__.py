"""otel-llm: LLM calls as first-class OpenTelemetry spans.

The emitting side (this package) depends on the OpenTelemetry API and SDK only; the
processor, exporters and reports are imported when asked for.
"""

from otel_llm.call import LLMCall, error_type_of, llm_span
from otel_llm.scope import Scope, ScopeSpanProcessor, agent, current_scope, route, scope, session, user

__all__ = [
    "LLMCall",
    "Scope",
    "ScopeSpanProcessor",
    "agent",
    "current_scope",
    "error_type_of",
    "llm_span",
    "route",
    "scope",
    "session",
    "user",
]
