"""Versioned schema migrations, safe when many processes start at once.

Migrations are the ``NNNN_name.sql`` files in :mod:`exporters.postgres.migrations`,
applied in version order. Every process that writes calls :func:`migrate` at start;
the first one to take a transaction-scoped advisory lock (keyed on the schema) applies
what is missing, in one transaction, and records it in ``schema_migrations``; the others
wait on the lock, then find nothing to do. A process that finds the schema already at
the latest version takes no lock at all.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import psycopg
from psycopg import sql

from exporters.postgres.schema import set_local_search_path, validate_schema

logger = logging.getLogger("otel_llm.postgres")

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: Namespace of otel-llm's advisory lock keys (high 32 bits of the bigint key).
_LOCK_NAMESPACE = 0x6F746C6C  # "otll"


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql_text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, recorded so that an edited, already-applied file is noticed."""
        return hashlib.sha256(self.sql_text.encode("utf-8")).hexdigest()


@cache
def available_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("exporters.postgres.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return tuple(found)


def advisory_key(schema: str, purpose: str) -> int:
    """A stable signed 64-bit advisory lock key for ``purpose`` in ``schema``."""
    low = zlib.crc32(f"{purpose}:{schema}".encode("utf-8"))
    key = (_LOCK_NAMESPACE << 32) | low
    return key - (1 << 64) if key >= (1 << 63) else key


def applied_versions(conn: psycopg.Connection, schema: str) -> set[int]:
    """Versions recorded in ``<schema>.schema_migrations`` (empty if it does not exist)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                          (f"{validate_schema(schema)}.schema_migrations",)).fetchone()[0]
    if not exists:
        return set()
    query = sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
    return {row[0] for row in conn.execute(query)}


def migrate(conn: psycopg.Connection, schema: str, *, lock_timeout_s: float = 120.0) -> list[int]:
    """Bring ``schema`` to the latest version; returns the versions this call applied.

    ``conn`` must not be inside a transaction; it is left outside one. Safe to call from
    any number of processes at once.
    """
    validate_schema(schema)
    wanted = available_migrations()
    latest = wanted[-1].version if wanted else 0
    with conn.transaction():
        if max(applied_versions(conn, schema), default=0) >= latest:
            return []
    applied: list[int] = []
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(lock_timeout_s * 1000)}ms")))
        conn.execute(sql.SQL("SET LOCAL statement_timeout = 0"))
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(schema, "migrate"),))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        set_local_search_path(conn, schema)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0]: row[1] for row in conn.execute("SELECT version, checksum FROM schema_migrations")}
        for migration in wanted:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    logger.warning("otel-llm: migration %04d_%s in schema %s was applied from a different "
                                   "file (checksum differs); not re-applying it",
                                   migration.version, migration.name, schema)
                continue
            conn.execute(migration.sql_text)
            conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                         (migration.version, migration.name, migration.checksum))
            applied.append(migration.version)
    if applied:
        logger.info("otel-llm: schema %s migrated (applied %s)", schema,
                    ", ".join(f"{v:04d}" for v in applied))
    return applied
