"""What the operational-view commands share: their arguments, a time of reading, a table.

``feedback stats``, ``confidence``, ``health``, ``tools``, ``sessions`` and ``routing``
all take ``--window``, ``--json``, ``--now`` (read as of an ISO time, for reproducible
output) and the database arguments, and print either an aligned table or JSON.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Sequence

from otel_llm.commands.db import add_database_arguments


def add_view_parser(subparsers: Any, command: str, help_text: str, doc: str, default_window: str,
                    handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A sub-command with the view arguments; its description is ``doc`` after the first paragraph."""
    parser = subparsers.add_parser(command, help=help_text, description=doc.split("\n\n", 1)[1].replace("``", ""))
    add_view_arguments(parser, default_window)
    parser.set_defaults(handler=handler)
    return parser


def show(args: argparse.Namespace, key: str, rows: Sequence[Any], window: timedelta, now: datetime, *,
         title: str, header: Sequence[str], cells: Callable[[Any], Sequence[str]], empty: str) -> None:
    """Print ``rows`` as JSON under ``key`` (``--json``) or as a table titled with the window."""
    if args.json:
        print_json(key, rows, window, now)
    else:
        print(table(f"{title}, {args.window} to {now:%Y-%m-%d %H:%M} UTC", header, [cells(r) for r in rows], empty))


def add_view_arguments(parser: argparse.ArgumentParser, default_window: str) -> None:
    """``--window``, ``--json``, ``--now`` and ``--dsn``/``--schema``."""
    parser.add_argument("--window", default=default_window, metavar="DURATION",
                        help=f"how far back to look: 15m, 24h, 30d ... (default {default_window})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--now", metavar="ISO", help="read as of this time (ISO 8601; default: now)")
    add_database_arguments(parser)


def window_and_now(args: argparse.Namespace) -> tuple[timedelta, datetime]:
    """The parsed ``--window`` and ``--now`` (the current time when not given)."""
    from exporters.postgres.durations import parse_duration

    return parse_duration(args.window), parse_now(args.now)


def parse_now(text: str | None) -> datetime:
    """``--now``: an ISO time or date (UTC unless it names a zone); the current time if None."""
    if not text:
        return datetime.now(timezone.utc)
    now = datetime.fromisoformat(text)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def run_view(args: argparse.Namespace,
             read: Callable[[Any, str, timedelta, datetime], Any]) -> tuple[Any, timedelta, datetime]:
    """Open the database, make sure the schema exists; ``(read(conn, schema, window, now), window, now)``."""
    from exporters.postgres.migrate import migrate
    from otel_llm.commands.db import open_database

    window, now = window_and_now(args)
    with open_database(args) as (conn, schema):
        migrate(conn, schema)  # a fresh database answers "nothing yet" rather than an error
        return read(conn, schema, window, now), window, now


def print_json(key: str, items: Sequence[Any], window: timedelta, now: datetime) -> None:
    """``{"end": ..., "window_s": ..., key: [item.as_dict() ...]}`` on standard output."""
    print(json.dumps({"end": now.isoformat(), "window_s": window.total_seconds(),
                      key: [item.as_dict() for item in items]}, indent=2, default=_json_value))


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """An aligned text table (first column left-aligned, the others right-aligned)."""
    if not rows:
        return f"{title}\n{empty}"
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    body = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
            for line in lines]
    return "\n".join([title, *body])


def fmt(value: Any, spec: str = ".3f", none: str = "-") -> str:
    """``value`` formatted with ``spec``; ``none`` for None."""
    return none if value is None else format(value, spec)


def name(value: str | None) -> str:
    """A group key for a table: ``(none)`` for None."""
    return "(none)" if value is None else value
