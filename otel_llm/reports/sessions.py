"""Sessions: what each conversation cost, who owns it and which route is serving it.

Over the raw route observations of the window (default the last 24 h), per session id:
attempts, successes, fallbacks, tokens and cost; the **owner**, the agent of the
session's first attempt that names an agent; the **hot route**, the route of its
latest successful attempt (where the next turn most likely goes). All figures are over
the attempts inside the window: a session that began before it has its owner taken
from its first attempt in the window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from otel_llm.reports._query import fetch, window_bounds

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SessionTotals:
    """One session over the window."""

    session_id: str
    count: int
    ok_count: int
    fallback_count: int
    input_tokens: int
    output_tokens: int
    #: Sum of known costs; None when no attempt had one.
    cost_usd: Decimal | None
    first_at: datetime
    last_at: datetime
    owner: str | None
    hot_route: str | None
    agent_count: int
    route_count: int
    user_count: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        out["first_at"], out["last_at"] = self.first_at.isoformat(), self.last_at.isoformat()
        return out


def session_totals(conn: psycopg.Connection, window: timedelta = DEFAULT_WINDOW, *,
                   now: datetime | None = None, schema: str | None = None,
                   session: str | None = None, limit: int = DEFAULT_LIMIT) -> list[SessionTotals]:
    """Sessions active in the ``window`` ending at ``now``, most recently active first
    (at most ``limit``; only ``session`` when given)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    start, end = window_bounds(window, now)
    out = []
    for (session_id, n, n_ok, n_fallback, tokens_in, tokens_out, cost, n_cost, first_at, last_at,
         owner, hot_route, n_agents, n_routes, n_users) in fetch(
            conn, schema, "sessions_totals",
            {"start": start, "end": end, "session": session, "limit": limit}):
        out.append(SessionTotals(
            session_id=session_id, count=int(n), ok_count=int(n_ok), fallback_count=int(n_fallback),
            input_tokens=int(tokens_in), output_tokens=int(tokens_out), cost_usd=cost if n_cost else None,
            first_at=first_at, last_at=last_at, owner=owner, hot_route=hot_route,
            agent_count=int(n_agents), route_count=int(n_routes), user_count=int(n_users)))
    return out
