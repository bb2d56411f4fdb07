"""The route observation: one row per provider-call attempt.

A plain, immutable value with no behaviour beyond conversion, so that derivation,
export and tests can pass it around without importing OpenTelemetry or PostgreSQL.
Unknown values are ``None`` (stored as NULL) — never guessed, never 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class RouteObservation:
    """One provider-call attempt, as stored in ``route_observations``.

    Identity is ``(trace_id, span_id)`` (lower-case hex, 32 and 16 characters): a
    resent batch never counts twice. Attempts of one logical call share
    ``logical_call_id``.
    """

    # identity
    trace_id: str
    span_id: str
    started_at: datetime
    duration_ms: float
    parent_span_id: str | None = None
    logical_call_id: str | None = None
    # time
    ttft_ms: float | None = None
    # who
    service_name: str | None = None
    instance_id: str | None = None
    agent: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # what
    operation: str | None = None
    provider: str | None = None
    server_address: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    route: str | None = None
    attempt: int | None = None
    fallback: bool | None = None
    stream: bool | None = None
    # outcome
    ok: bool = True
    error_type: str | None = None
    http_status: int | None = None
    finish_reason: str | None = None
    # volume
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    tools_offered: int | None = None
    tool_calls: int | None = None
    # money
    cost_usd: Decimal | None = None
    cost_basis: str | None = None
    computed_cost_usd: Decimal | None = None
    # routing
    routing_complexity: str | None = None
    routing_score: float | None = None
    # the rest worth keeping (never message content unless the user opted in)
    attributes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Field name to value, in declaration order (the column order of the table)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "RouteObservation":
        """A copy with ``changes`` applied (used by pricing and trace-aware inference)."""
        return dataclasses.replace(self, **changes)


#: Column names in table order; exporters write exactly these.
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RouteObservation))
