"""Where otel-llm's tables live, and how a connection is prepared to use them.

Everything otel-llm creates sits in one PostgreSQL schema (``otel_llm`` by default,
``OTEL_LLM_SCHEMA`` to change it), so that it never collides with the user's tables and
a test run can use a schema of its own and drop it. SQL files name no schema: a
connection gets ``search_path`` set to the target schema instead.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib import resources
from typing import Any, Mapping

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Schema used when none is configured.
DEFAULT_SCHEMA = "otel_llm"
#: Environment variable naming the schema.
ENV_SCHEMA = "OTEL_LLM_SCHEMA"

#: Seconds to wait for a connection before treating the database as unreachable.
CONNECT_TIMEOUT_S = 3
#: Server-side limit for one statement of the write path (milliseconds).
STATEMENT_TIMEOUT_MS = 30_000

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def resolve_schema(schema: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The schema to use: ``schema`` if given, else ``OTEL_LLM_SCHEMA``, else ``otel_llm``."""
    env = os.environ if env is None else env
    return validate_schema(schema or env.get(ENV_SCHEMA) or DEFAULT_SCHEMA)


def validate_schema(name: str) -> str:
    """``name`` if it is a plain lower-case identifier; otherwise ``ValueError``.

    Plain names only, so the schema never needs quoting in logs, URLs or ``psql``.
    """
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise ValueError(
            f"invalid schema name {name!r}: use lower-case letters, digits and '_' "
            "(starting with a letter or '_', at most 63 characters)"
        )
    return name


def conninfo(dsn: str) -> str:
    """``dsn`` completed with otel-llm's connection defaults; settings in ``dsn`` win.

    A short connect timeout and TCP keepalives/user timeout, so an unreachable or
    silently vanished server is noticed within seconds instead of hanging a worker.
    """
    params = {**default_connect_params(), **conninfo_to_dict(dsn)}
    return make_conninfo("", **params)


def default_connect_params() -> dict[str, Any]:
    """libpq settings otel-llm adds to every connection unless the DSN sets them."""
    return {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        "application_name": "otel-llm",
    }


def connect(dsn: str, schema: str, *, autocommit: bool = False,
            statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS) -> psycopg.Connection:
    """Open a connection prepared for ``schema``: search_path, UTC, statement timeout."""
    conn = psycopg.connect(conninfo(dsn), autocommit=True)
    try:
        prepare_session(conn, schema, statement_timeout_ms=statement_timeout_ms)
        conn.autocommit = autocommit
    except BaseException:
        conn.close()
        raise
    return conn


def prepare_session(conn: psycopg.Connection, schema: str, *,
                    statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS) -> None:
    """Session settings on an open connection (not inside a transaction)."""
    validate_schema(schema)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    conn.execute("SET TIME ZONE 'UTC'")
    if statement_timeout_ms is not None:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(int(statement_timeout_ms))))


def set_local_search_path(conn: psycopg.Connection, schema: str) -> None:
    """``SET LOCAL search_path`` for the current transaction only (for borrowed connections)."""
    conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(validate_schema(schema))))


@cache
def load_sql(name: str) -> str:
    """The text of ``exporters/postgres/sql/<name>.sql``."""
    return resources.files("exporters.postgres.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")
