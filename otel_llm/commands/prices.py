"""``otel-llm prices`` and ``otel-llm reprice``: which models lack a price, what a model
costs, and stored costs recomputed after a price change.

- ``prices missing [--since DATE | --window 30d]`` lists models whose calls have no
  known cost (basis unknown), with counts and first/last seen; exit 1 when there are
  any, so a scheduled check can tell someone to add them to the price file.
- ``prices show MODEL [--provider P] [--at DATE]`` prints the price in force.
- ``reprice --since DATE [--until DATE]`` recomputes stored costs with the current
  prices (the library's and ``--prices-file``/``OTEL_LLM_PRICES_FILE``); running it
  twice changes nothing the second time. Reported costs are kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from typing import Any

from otel_llm.commands.costs import add_interval_arguments, format_table
from otel_llm.commands.db import add_database_arguments, open_database


def register(subparsers: Any) -> None:
    """Add ``prices`` (``missing``, ``show``) and ``reprice``."""
    prices = subparsers.add_parser("prices", help="models without a price; the price of a model",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = prices.add_subparsers(dest="prices_command", metavar="ACTION")
    prices.set_defaults(handler=lambda args: (prices.print_help(), 2)[1])

    missing = actions.add_parser("missing", help="models seen whose calls have no known cost")
    add_interval_arguments(missing, default_window="30d")
    _prices_file_argument(missing)
    missing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_database_arguments(missing)
    missing.set_defaults(handler=_missing)

    show = actions.add_parser("show", help="the price of a model at a time")
    show.add_argument("model", help="model name, as in the spans")
    show.add_argument("--provider", help="provider name, as in the spans (default: any)")
    show.add_argument("--at", help="date or ISO time (default: now)")
    _prices_file_argument(show)
    show.set_defaults(handler=_show)

    reprice = subparsers.add_parser("reprice", help="recompute stored costs after a price change",
                                    description="Recompute stored costs in [--since, --until) with the "
                                                "current prices; idempotent; reported costs are kept.")
    reprice.add_argument("--since", required=True, help="date or ISO time (or a duration back: 7d)")
    reprice.add_argument("--until", help="date or ISO time (default: now)")
    _prices_file_argument(reprice)
    reprice.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    add_database_arguments(reprice)
    reprice.set_defaults(handler=_reprice)


def _prices_file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prices-file", metavar="FILE",
                        help="YAML/JSON prices overriding the library's (default: OTEL_LLM_PRICES_FILE)")


def _book(args: argparse.Namespace) -> Any:
    from processor.pricing import PriceBook

    return PriceBook(args.prices_file)


def _missing(args: argparse.Namespace) -> int:
    from exporters.postgres.migrate import migrate
    from otel_llm.reports.costs_reprice import missing_prices

    book = _book(args)
    with open_database(args) as (conn, schema):
        migrate(conn, schema)
        found = missing_prices(conn, since=args.since, until=args.until, window=args.window, pricer=book,
                               schema=schema)
    if args.json:
        print(json.dumps({"models": [m.as_dict() for m in found]}, indent=2))
    elif not found:
        print("every call in this interval has a known cost (or is local)")
    else:
        print(format_table(
            ["PROVIDER", "MODEL", "RESPONSE MODEL", "CALLS", "WITH TOKENS", "FIRST SEEN", "LAST SEEN", "PRICED NOW"],
            [[m.provider or "-", m.request_model or "-", m.response_model or "-", str(m.calls),
              str(m.calls_with_tokens), f"{m.first_seen:%Y-%m-%d %H:%M}", f"{m.last_seen:%Y-%m-%d %H:%M}",
              "yes: run reprice" if m.priced_now else "no"] for m in found]))
    return 1 if found else 0


def _show(args: argparse.Namespace) -> int:
    from otel_llm.reports.costs import parse_when
    from processor.providers import normalize_provider

    book = _book(args)
    at = parse_when(args.at) if args.at else datetime.now(timezone.utc)
    card = book.rate_card(normalize_provider(args.provider) if args.provider else None, args.model, at)
    if card is None:
        print(f"no price known for {args.model!r} at {at:%Y-%m-%d %H:%M} UTC; add it to the prices file",
              file=sys.stderr)
        return 1
    rows = []
    for start, c in reversed(card.tiers):
        tier = "base" if start < 0 else f"input > {start:,} tokens"
        rows.append([tier, str(c.input), str(c.cache_read), str(c.cache_write), str(c.output), str(c.reasoning),
                     str(c.request)])
    print(f"{card.description} at {at:%Y-%m-%d %H:%M} UTC "
          "(USD per million tokens; per 1K calls: USD per thousand requests)")
    print(format_table(["TIER", "INPUT", "CACHE READ", "CACHE WRITE", "OUTPUT", "REASONING", "PER 1K CALLS"],
                       rows))
    return 0


def _reprice(args: argparse.Namespace) -> int:
    from exporters.postgres.migrate import migrate
    from otel_llm.reports.costs_reprice import reprice

    book = _book(args)
    with open_database(args) as (conn, schema):
        migrate(conn, schema)
        result = reprice(conn, since=args.since, until=args.until, pricer=book, schema=schema)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(f"repriced {result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC: "
              f"{result.rows_examined} calls examined, {result.rows_changed} changed "
              f"({result.newly_priced} newly priced, {result.newly_unknown} now without a price), "
              f"total cost {'+' if result.cost_delta >= 0 else ''}{result.cost_delta} USD")
    return 0
