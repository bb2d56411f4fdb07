"""The ``otel-llm`` command line.

Each sub-command lives in its own module under :mod:`otel_llm.commands` and exposes
``register(subparsers)``; this module only composes them. A command module is imported
only when the command line is built, so ``import otel_llm`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

#: Modules that each add their sub-commands (``register(subparsers) -> None``).
COMMAND_MODULES: tuple[str, ...] = (
    "otel_llm.commands.db",
    "otel_llm.commands.routes",
    "otel_llm.commands.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="otel-llm",
        description="LLM route observations from OpenTelemetry spans: costs, SLOs, health.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what otel-llm is doing")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 a finding such as a breach, 2 an error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a command's failure is reported, not a traceback
        print(f"otel-llm {args.command}: error: {exc}", file=sys.stderr)
        if args.verbose:
            raise
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
