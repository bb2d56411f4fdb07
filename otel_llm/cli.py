"""The ``otel-llm`` command line.

Each sub-command lives in its own module under :mod:`otel_llm.commands` and exposes
``register(subparsers)``; this module only composes them, finding every such module of
the package (a new command is a new module, nothing to list here). A command module is
imported only when the command line is built, so ``import otel_llm`` stays light.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Sequence

#: Commands shown first in ``--help``, in this order; the others follow by name.
_FIRST = ("demo", "routes", "db")


def command_modules() -> list[str]:
    """Every module of :mod:`otel_llm.commands` (each adds sub-commands with
    ``register(subparsers) -> None``), the common ones first."""
    import otel_llm.commands as package

    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
    ordered = [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]
    return [f"{package.__name__}.{n}" for n in ordered]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="otel-llm",
        description="LLM route observations from OpenTelemetry spans: costs, SLOs, health.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what otel-llm is doing")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in command_modules():
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
