"""Daily partitions of ``route_observations``: naming, creation ahead and on demand, pruning.

A partition holds one UTC day and is named ``route_observations_pYYYYMMDD``. The writer
creates the partitions a batch needs before writing it (and a few days ahead, so that
creating one is rare on the write path); retention drops whole partitions, which is
instant and leaves no dead rows, and deletes rollup rows of the same age.

Creating a partition (a new table, then attached) and dropping one take locks on the
parent table, so each runs in its own short transaction, behind an advisory lock (two
writers never race on the catalog) and with a lock timeout (a long report never stalls
the writer indefinitely). Dropping takes the strongest lock, but only for an instant
and at most once an hour.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

import psycopg
from psycopg import sql

from exporters.postgres.migrate import advisory_key
from exporters.postgres.schema import set_local_search_path, validate_schema

logger = logging.getLogger("otel_llm.postgres")

PARENT = "route_observations"
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")
#: Days ahead of today for which partitions are kept ready.
DAYS_AHEAD = 2
#: How long DDL waits for its lock before giving up (it is retried later).
DDL_LOCK_TIMEOUT = "5s"


def partition_name(day: date) -> str:
    """Name of the partition holding UTC day ``day``."""
    return f"{PARENT}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a partition name stands for; ``None`` for a name not made by :func:`partition_name`."""
    match = _NAME.match(name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of UTC day ``day``."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def utc_day(ts: datetime) -> date:
    """The UTC day of ``ts`` (a naive timestamp is taken as UTC)."""
    if ts.tzinfo is None:
        return ts.date()
    return ts.astimezone(timezone.utc).date()


def existing_partitions(conn: psycopg.Connection, schema: str) -> dict[date, str]:
    """Day -> partition name, for every partition of ``route_observations`` named by us."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent"
        " JOIN pg_namespace n ON n.oid = p.relnamespace"
        " WHERE n.nspname = %s AND p.relname = %s",
        (validate_schema(schema), PARENT),
    ).fetchall()
    found = {}
    for (name,) in rows:
        day = partition_day(name)
        if day is not None:
            found[day] = name
    return found


def ensure_partitions(conn: psycopg.Connection, schema: str, days: Iterable[date]) -> list[date]:
    """Create the partitions for ``days`` that do not exist yet; returns the days created.

    Runs its own transaction (``conn`` must not be in one).
    """
    wanted = sorted(set(days))
    if not wanted:
        return []
    created: list[date] = []
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(DDL_LOCK_TIMEOUT)))
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(schema, "partitions"),))
        set_local_search_path(conn, schema)
        have = existing_partitions(conn, schema)
        for day in wanted:
            if day in have:
                continue
            start, end = day_bounds(day)
            table, parent = sql.Identifier(schema, partition_name(day)), sql.Identifier(schema, PARENT)
            # Not CREATE TABLE ... PARTITION OF, which locks the parent ACCESS EXCLUSIVE
            # (stalling every reader and writer): a new table attached takes only SHARE
            # UPDATE EXCLUSIVE on the parent, and checking an empty table is instant.
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                         .format(table, parent))
            conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})")
                         .format(parent, table, sql.Literal(start), sql.Literal(end)))
            created.append(day)
    if created:
        logger.info("otel-llm: created partitions %s in schema %s",
                    ", ".join(partition_name(d) for d in created), schema)
    return created


def days_ahead(today: date, ahead: int = DAYS_AHEAD) -> list[date]:
    """``today`` and the ``ahead`` days after it."""
    return [today + timedelta(days=i) for i in range(ahead + 1)]


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed."""

    dropped_partitions: tuple[str, ...]
    deleted_rollup_rows: int


def prune(conn: psycopg.Connection, schema: str, cutoff: datetime) -> PruneResult:
    """Drop every daily partition wholly older than ``cutoff``, and rollup rows older than it.

    A partition is dropped only when its whole day ends at or before ``cutoff``, so no
    row newer than the cutoff is ever removed. Runs its own transaction.
    """
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=timezone.utc)
    dropped: list[str] = []
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(DDL_LOCK_TIMEOUT)))
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(schema, "partitions"),))
        set_local_search_path(conn, schema)
        for day, name in sorted(existing_partitions(conn, schema).items()):
            if day_bounds(day)[1] <= cutoff:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, name)))
                dropped.append(name)
        deleted = conn.execute("DELETE FROM route_rollup_minute WHERE ts <= %s::timestamptz - interval '1 minute'",
                               (cutoff,)).rowcount
        deleted += conn.execute("DELETE FROM route_rollup_hour WHERE ts <= %s::timestamptz - interval '1 hour'",
                                (cutoff,)).rowcount
        deleted += conn.execute("DELETE FROM route_stats_hour WHERE ts <= %s::timestamptz - interval '1 hour'",
                                (cutoff,)).rowcount
    if dropped or deleted:
        logger.info("otel-llm: pruned schema %s before %s: dropped %d partitions (%s), %d rollup rows",
                    schema, cutoff.isoformat(), len(dropped), ", ".join(dropped) or "none", deleted)
    return PruneResult(tuple(dropped), deleted)
