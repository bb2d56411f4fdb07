"""The route observation: one row per provider-call attempt.

A plain, immutable value with no behaviour beyond conversion, so that derivation,
export and tests can pass it around without importing OpenTelemetry or PostgreSQL.
Unknown values are ``None`` (stored as NULL) — never guessed, never 0.

It is a named tuple whose fields are the columns of ``route_observations`` in table
order: built in one step by derivation (every observation pays for its construction,
and a tuple costs a fraction of a frozen dataclass), and written to COPY as it is."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple


class _Fields(NamedTuple):
    """The fields of :class:`RouteObservation`, in table order."""

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
    tags: dict[str, str] = None  # type: ignore[assignment]  # a new {} per observation
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
    attributes: dict[str, Any] = None  # type: ignore[assignment]  # a new {} per observation



_new_fields = _Fields.__new__


class RouteObservation(_Fields):
    """One provider-call attempt, as stored in ``route_observations``.

    Identity is ``(trace_id, span_id)`` (lower-case hex, 32 and 16 characters): a
    resent batch never counts twice. Attempts of one logical call share
    ``logical_call_id``. Built with keywords (``tags`` and ``attributes`` default to
    new empty dicts); :func:`processor.derive.derive` builds it positionally.
    """

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> "RouteObservation":
        obs = _new_fields(cls, *args, **kwargs)
        if obs.tags is None or obs.attributes is None:
            obs = obs._replace(tags={} if obs.tags is None else obs.tags,
                               attributes={} if obs.attributes is None else obs.attributes)
        return obs

    def as_dict(self) -> dict[str, Any]:
        """Field name to value, in declaration order (the column order of the table)."""
        return dict(zip(COLUMNS, self))

    def replace(self, **changes: Any) -> "RouteObservation":
        """A copy with ``changes`` applied (used by pricing and trace-aware inference)."""
        return self._replace(**changes)


#: Column names in table order; exporters write exactly these.
COLUMNS: tuple[str, ...] = _Fields._fields

def make_observation(values: tuple[Any, ...]) -> RouteObservation:
    """An observation from all of its values, in :data:`COLUMNS` order, taken as given
    (no defaults, no checks): derivation's fast path."""
    return tuple.__new__(RouteObservation, values)
