"""A real PostgreSQL for the tests: a server, a schema per module, a server to stop.

The server is the one named by ``OTEL_LLM_TEST_DSN`` when set; otherwise an embedded
server (the ``pgserver`` binaries, through :mod:`exporters.postgres.embedded`) in a
temporary directory, started once per test session and stopped at its end. Each test
module works in a schema of its own, with a unique name, dropped afterwards, so test
runs never see each other's rows.

Fixtures (enable with ``pytest_plugins = ["tests.pg"]`` in ``tests/conftest.py``):

- ``pg_dsn`` (session): the DSN of the test server.
- ``pg_schema`` (module): a migrated schema unique to the module.
- ``pg_conn`` (function): a connection prepared for ``pg_schema``.
- ``fresh_schema`` (function): a unique schema name, not created; dropped afterwards.
- ``scratch_server`` (function): a private server a test may stop and start again.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg import sql

from exporters.postgres.embedded import start_embedded, stop_embedded
from exporters.postgres.migrate import migrate
from exporters.postgres.schema import connect
from processor.observation import RouteObservation

#: Environment variable naming the test server.
ENV_TEST_DSN = "OTEL_LLM_TEST_DSN"

_session_lock = threading.Lock()
_session_dsn: str | None = None


def test_server_dsn() -> str:
    """The test server's DSN: ``OTEL_LLM_TEST_DSN``, else an embedded server started once."""
    global _session_dsn
    configured = os.environ.get(ENV_TEST_DSN)
    if configured:
        return configured
    with _session_lock:
        if _session_dsn is None:
            root = Path(tempfile.mkdtemp(prefix="otel-llm-test-pg-"))
            server = start_embedded(root / "pgdata", keep_running=False)
            atexit.register(_remove_server, root)
            _session_dsn = server.dsn
        return _session_dsn


test_server_dsn.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


def _remove_server(root: Path) -> None:
    try:
        stop_embedded(root / "pgdata")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def unique_schema(label: str) -> str:
    """A schema name no other run uses: ``t_<label>_<random>``, at most 63 characters."""
    clean = re.sub(r"[^a-z0-9_]", "_", label.lower())[:40]
    return f"t_{clean}_{secrets.token_hex(4)}"


def drop_schema(dsn: str, schema: str) -> None:
    """Drop ``schema`` and everything in it (if it exists)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """DSN of the test server."""
    return test_server_dsn()


@pytest.fixture(scope="module")
def pg_schema(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated schema for this test module; dropped after it."""
    schema = unique_schema(request.module.__name__.rsplit(".", 1)[-1])
    with connect(pg_dsn, schema) as conn:
        migrate(conn, schema)
    try:
        yield schema
    finally:
        drop_schema(pg_dsn, schema)


@pytest.fixture
def pg_conn(pg_dsn: str, pg_schema: str) -> Iterator[psycopg.Connection]:
    """A connection with ``search_path`` set to the module's schema."""
    conn = connect(pg_dsn, pg_schema)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def fresh_schema(pg_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique schema name for this test, not created yet; dropped after the test."""
    schema = unique_schema(request.node.name)
    try:
        yield schema
    finally:
        drop_schema(pg_dsn, schema)


class ScratchServer:
    """A PostgreSQL server of one test's own, which the test can stop and start.

    It runs the embedded server code on a temporary data directory, so the DSN stays
    the same across restarts (a Unix socket in the data directory).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.dsn = start_embedded(self.pgdata, keep_running=False).dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown: connected clients are disconnected)."""
        stop_embedded(self.pgdata)

    def start(self) -> None:
        """Start it again, same data, same DSN."""
        self.dsn = start_embedded(self.pgdata, keep_running=False).dsn

    def close(self) -> None:
        """Stop the server and delete its data."""
        try:
            stop_embedded(self.pgdata)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def scratch_server() -> Iterator[ScratchServer]:
    """A private server for outage tests; stopped and deleted afterwards."""
    server = ScratchServer(Path(tempfile.mkdtemp(prefix="otel-llm-scratch-pg-")))
    try:
        yield server
    finally:
        server.close()


# --- observations for tests ---------------------------------------------------------
#: The start time of every :func:`observation` made in one test session. One instant, not
#: "now" per call: the same identity made twice must be the same row (the table's key
#: holds ``started_at``, its partition column, beside the identity).
OBSERVED_AT = datetime.now(timezone.utc).replace(microsecond=0)


def observation(i: int, **fields: object) -> RouteObservation:
    """A plausible observation with identity derived from ``i``; ``fields`` override."""
    values: dict[str, object] = {
        "trace_id": f"{i:032x}",
        "span_id": f"{i + 1:016x}",
        "started_at": OBSERVED_AT,
        "duration_ms": 100.0 + i % 400,
        "service_name": "svc",
        "agent": "support",
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "route": "openai|gpt-4o-mini",
        "attempt": 0,
        "fallback": False,
        "stream": False,
        "ok": True,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": Decimal("0.000027"),
        "cost_basis": "computed",
        "tags": {"env": "test"},
        "attributes": {"gen_ai.response.id": f"resp-{i}"},
    }
    values.update(fields)
    return RouteObservation(**values)  # type: ignore[arg-type]


def count_rows(conn: psycopg.Connection, table: str = "route_observations") -> int:
    """Rows in ``table`` of the connection's schema."""
    with conn.transaction():
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
