"""Running one of the stored read queries for a window: shared by the operational views."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path


def window_bounds(window: timedelta, now: datetime | None) -> tuple[datetime, datetime]:
    """``(start, end)`` of the ``window`` ending at ``now`` (default: the current time), in UTC."""
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return end - window, end


def fetch(conn: psycopg.Connection, schema: str | None, name: str, params: dict[str, Any]) -> list[tuple]:
    """Rows of ``exporters/postgres/sql/<name>.sql`` in its own transaction, local ``search_path``."""
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        return conn.execute(load_sql(name), params).fetchall()


def as_float(value: Any) -> float | None:
    """A database number as a float; None stays None."""
    return None if value is None else float(value)
