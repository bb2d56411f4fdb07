"""Learned tool capability: which routes are offered tools and never call one.

A route that was offered tools (``tools_offered > 0``) on at least ``min_offers`` (N,
default 5) successful attempts in the window whose tool-call count is known, and made
no tool call on any of them, is marked ``never_calls_tools``: the model behind it most
likely cannot use tools (or the prompt never leads it to), and offering them only costs
input tokens. A route with a tool call is ``calls_tools``; one offered tools fewer than
N times (counting only attempts that said how many tool calls they made) is
``not_enough_data``. Failed attempts are not counted: they say nothing about tools.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from otel_llm.reports._query import fetch, window_bounds

DEFAULT_MIN_OFFERS = 5
DEFAULT_WINDOW = timedelta(days=7)

Capability = Literal["calls_tools", "never_calls_tools", "not_enough_data"]


@dataclass(frozen=True, slots=True)
class ToolCapability:
    """Tool use of one route over the window."""

    route: str | None
    #: Successful attempts that offered tools.
    offered: int
    #: ... of which said how many tool calls they made.
    offered_known: int
    #: ... of which made at least one.
    with_tool_calls: int
    tool_calls: int
    max_tools_offered: int
    last_offered_at: datetime
    capability: Capability

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["last_offered_at"] = self.last_offered_at.isoformat()
        return out


def capability_of(offered_known: int, tool_calls: int, min_offers: int = DEFAULT_MIN_OFFERS) -> Capability:
    """The verdict of the module docstring."""
    if tool_calls > 0:
        return "calls_tools"
    return "never_calls_tools" if offered_known >= min_offers else "not_enough_data"


def tool_capability(conn: psycopg.Connection, window: timedelta = DEFAULT_WINDOW, *,
                    now: datetime | None = None, schema: str | None = None,
                    min_offers: int = DEFAULT_MIN_OFFERS) -> list[ToolCapability]:
    """Every route offered tools in the ``window`` ending at ``now``, most offered first."""
    start, end = window_bounds(window, now)
    out = []
    for route, offered, known, with_calls, calls, max_tools, last_at in fetch(
            conn, schema, "tools_capability", {"start": start, "end": end}):
        out.append(ToolCapability(
            route=route, offered=int(offered), offered_known=int(known), with_tool_calls=int(with_calls),
            tool_calls=int(calls), max_tools_offered=int(max_tools), last_offered_at=last_at,
            capability=capability_of(int(known), int(calls), min_offers)))
    return out
