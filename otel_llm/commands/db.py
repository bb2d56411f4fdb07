"""``otel-llm db``: the database behind the route observations.

- ``db url`` prints the DSN in use (``OTEL_LLM_DSN``, else the embedded server's,
  starting it if needed), e.g. for ``psql "$(otel-llm db url)"``.
- ``db migrate`` brings the schema to the latest version (writers also do this at start).
- ``db prune --older-than 30d`` drops the daily partitions and rollup rows older than that.
- ``db stop`` stops the embedded server (it keeps running between runs otherwise).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import psycopg


def register(subparsers: Any) -> None:
    """Add ``db`` and its sub-commands."""
    db = subparsers.add_parser("db", help="the PostgreSQL database: url, migrate, prune, stop",
                               description=__doc__.split("\n\n", 1)[1].replace("``", ""),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")

    def _usage(args: argparse.Namespace) -> int:
        db.print_help()
        return 2

    db.set_defaults(handler=_usage)

    url = actions.add_parser("url", help="print the DSN in use")
    url.set_defaults(handler=_url)

    mig = actions.add_parser("migrate", help="apply schema migrations")
    add_database_arguments(mig)
    mig.set_defaults(handler=_migrate)

    prune = actions.add_parser("prune", help="drop data older than a duration")
    add_database_arguments(prune)
    prune.add_argument("--older-than", required=True, metavar="DURATION",
                       help="e.g. 30d, 12h, 2w: whole days older than this are dropped")
    prune.set_defaults(handler=_prune)

    stop = actions.add_parser("stop", help="stop the embedded PostgreSQL server")
    stop.set_defaults(handler=_stop)


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--dsn`` and ``--schema``, defaulting to ``OTEL_LLM_DSN`` / ``OTEL_LLM_SCHEMA``."""
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: OTEL_LLM_DSN, else the embedded server)")
    parser.add_argument("--schema", help="schema holding otel-llm's tables (default: OTEL_LLM_SCHEMA or otel_llm)")


@contextmanager
def open_database(args: argparse.Namespace) -> Iterator[tuple["psycopg.Connection", str]]:
    """A connection prepared for the chosen schema, closed afterwards."""
    from exporters.postgres.embedded import resolve_dsn
    from exporters.postgres.schema import connect, resolve_schema

    schema = resolve_schema(getattr(args, "schema", None))
    dsn = getattr(args, "dsn", None) or resolve_dsn()
    conn = connect(dsn, schema, statement_timeout_ms=None)
    try:
        yield conn, schema
    finally:
        conn.close()


def _url(args: argparse.Namespace) -> int:
    from exporters.postgres.embedded import resolve_dsn

    print(resolve_dsn())
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from exporters.postgres.migrate import available_migrations, migrate

    with open_database(args) as (conn, schema):
        applied = migrate(conn, schema)
    latest = available_migrations()[-1].version
    if applied:
        print(f"schema {schema}: applied {', '.join(f'{v:04d}' for v in applied)} (now at {latest:04d})")
    else:
        print(f"schema {schema}: up to date (at {latest:04d})")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from exporters.postgres.durations import parse_duration
    from exporters.postgres.migrate import migrate
    from exporters.postgres.partitions import prune

    age = parse_duration(args.older_than)
    cutoff = datetime.now(timezone.utc) - age
    with open_database(args) as (conn, schema):
        migrate(conn, schema)
        result = prune(conn, schema, cutoff)
    dropped = ", ".join(result.dropped_partitions) or "none"
    print(f"schema {schema}: data before {cutoff:%Y-%m-%d %H:%M} UTC pruned: "
          f"{len(result.dropped_partitions)} partitions dropped ({dropped}), "
          f"{result.deleted_rollup_rows} rollup rows deleted")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from exporters.postgres.embedded import pgdata_dir, stop_embedded

    if stop_embedded():
        print(f"stopped the embedded PostgreSQL in {pgdata_dir()}")
    else:
        print(f"the embedded PostgreSQL in {pgdata_dir()} is not running")
    return 0
