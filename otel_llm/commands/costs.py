"""``otel-llm costs``: what the calls cost, grouped and over time.

- ``costs [--by agent,model] [--period day|month]``: cost, calls and tokens per group
  (agent, model, provider, route, operation, session, user, tag:<key>);
- ``costs tokens``: the same with the token breakdown (cached, reasoning ...);
- ``costs basis``: how much of the cost is reported, computed, local or unknown;
- ``costs accuracy``: reported against computed cost per provider;
- ``costs savings --baseline MODEL``: what the calls would have cost on MODEL;
- ``costs trend``: cost per day with the change from the day before.

The interval is ``--since``/``--until`` (dates or ISO times) or ``--window 30d``
(default: the last 30 days). ``--json`` prints JSON instead of a table.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any, Sequence

from otel_llm.commands.db import add_database_arguments, open_database

VIEWS = ("report", "tokens", "basis", "accuracy", "savings", "trend")


def register(subparsers: Any) -> None:
    """Add ``costs``."""
    parser = subparsers.add_parser("costs", help="cost per agent, model, route, user ... per day or month",
                                   description=__doc__.split("\n\n", 1)[1].replace("``", ""),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", nargs="?", choices=VIEWS, default="report", help="what to show (default: report)")
    parser.add_argument("--by", default="agent", metavar="DIMS",
                        help="comma-separated groupings: agent, model, provider, route, operation, session, "
                             "user, tag:<key> ('' for none; default agent)")
    parser.add_argument("--period", choices=("day", "month", "all"), default="all",
                        help="one row per UTC day or month, or for the whole interval (default)")
    add_interval_arguments(parser, default_window="30d")
    parser.add_argument("--baseline", metavar="MODEL", help="savings: the model to compare with")
    parser.add_argument("--baseline-provider", metavar="PROVIDER", help="savings: the baseline's provider")
    parser.add_argument("--prices-file", metavar="FILE",
                        help="savings: prices overriding the library's (default: OTEL_LLM_PRICES_FILE)")
    parser.add_argument("--source", choices=("auto", "raw", "rollup"), default="auto",
                        help="report/tokens: read raw rows or the rollups (default: rollups when they can)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_database_arguments(parser)
    parser.set_defaults(handler=_costs)


def add_interval_arguments(parser: argparse.ArgumentParser, default_window: str) -> None:
    """``--since``, ``--until`` and ``--window`` (``--window`` is ignored with ``--since``)."""
    parser.add_argument("--since", metavar="WHEN", help="start: a date, an ISO time or a duration back (7d)")
    parser.add_argument("--until", metavar="WHEN", help="end (excluded): a date or an ISO time (default: now)")
    parser.add_argument("--window", default=None, metavar="DURATION",
                        help=f"length back from --until when --since is not given (default {default_window})")


def _costs(args: argparse.Namespace) -> int:
    from exporters.postgres.migrate import migrate

    with open_database(args) as (conn, schema):
        migrate(conn, schema)  # a fresh database answers "no calls" rather than an error
        result = _read(args, conn, schema)
    if args.json:
        print(json.dumps(result.as_dict() if hasattr(result, "as_dict") else [r.as_dict() for r in result],
                         indent=2))
    else:
        print(_format(args.view, result))
    return 0


def _read(args: argparse.Namespace, conn: Any, schema: str) -> Any:
    interval = {"since": args.since, "until": args.until, "window": None if args.since else args.window,
                "schema": schema}
    if args.view in ("report", "tokens"):
        from otel_llm.reports.costs import cost_report

        return cost_report(conn, by=args.by, period=args.period, source=args.source, **interval)
    if args.view == "basis":
        from otel_llm.reports.costs_basis import basis_mix

        return basis_mix(conn, **interval)
    if args.view == "accuracy":
        from otel_llm.reports.costs_basis import cost_accuracy

        return cost_accuracy(conn, **interval)
    if args.view == "trend":
        from otel_llm.reports.costs import daily_trend

        return daily_trend(conn, **interval)
    from otel_llm.reports.costs_savings import savings
    from processor.pricing import PriceBook
    from processor.providers import normalize_provider

    if not args.baseline:
        raise ValueError("costs savings needs --baseline MODEL")
    provider = normalize_provider(args.baseline_provider) if args.baseline_provider else None
    return savings(conn, args.baseline, baseline_provider=provider, by=args.by, pricer=PriceBook(args.prices_file),
                   **interval)


# --- tables ------------------------------------------------------------------------------
def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned text table: the first column left-aligned, the others right-aligned."""
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(line)).rstrip() for line in lines)


def usd(value: Decimal | None) -> str:
    """Dollars to 4 decimals (the table's precision; JSON keeps every digit)."""
    return "-" if value is None else f"{value:,.4f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}%"


def _format(view: str, result: Any) -> str:
    if view in ("report", "tokens"):
        return _format_report(result, tokens=view == "tokens")
    if view == "basis":
        rows = [[b.basis, str(b.calls), usd(b.cost_usd), f"{100 * b.share:.1f}%"] for b in result.bases]
        return _titled(result, format_table(["BASIS", "CALLS", "COST USD", "SHARE"], rows)
                       if rows else "no calls in this interval")
    if view == "accuracy":
        if not result:
            return "no calls with both a reported and a computed cost in this interval"
        return format_table(
            ["PROVIDER", "CALLS", "REPORTED USD", "COMPUTED USD", "DRIFT", "MEAN |DIFF|", "MAX |DIFF|"],
            [[a.provider or "-", str(a.calls), usd(a.reported_usd), usd(a.computed_usd), _pct(a.drift),
              _pct(a.mean_abs_relative), _pct(a.max_abs_relative)] for a in result])
    if view == "trend":
        return format_table(["DAY", "CALLS", "COST USD", "CHANGE"],
                            [[d.day.isoformat(), str(d.calls), usd(d.cost_usd), _pct(d.change)] for d in result])
    rows = [[" / ".join("-" if v is None else v for v in r.group.values()) or "(all)", str(r.calls),
             usd(r.actual_cost_usd), usd(r.baseline_cost_usd), usd(r.saving_usd)]
            for r in (*result.rows, result.total)]
    table = format_table(["GROUP", "CALLS", "ACTUAL USD", f"ON {result.baseline_model} USD", "SAVING USD"], rows)
    note = f"\n{result.excluded_calls} calls without a known cost or token counts left out" \
        if result.excluded_calls else ""
    return _titled(result, table) + note


def _titled(result: Any, body: str) -> str:
    return f"{result.start:%Y-%m-%d %H:%M} .. {result.end:%Y-%m-%d %H:%M} UTC\n{body}"


def _format_report(report: Any, *, tokens: bool) -> str:
    group = " / ".join(d.upper() for d in report.by) or "ALL"
    header = (["PERIOD"] if report.period != "all" else []) + [group, "CALLS", "UNPRICED", "COST USD"]
    header += ["INPUT", "CACHED", "OUTPUT", "REASONING"] if tokens else ["TOKENS IN", "TOKENS OUT"]
    rows = []
    for r in (*report.rows, report.total):
        period = [] if report.period == "all" else [
            "total" if r is report.total else f"{r.period:{'%Y-%m' if report.period == 'month' else '%Y-%m-%d'}}"]
        cells = period + [("total" if r is report.total else r.label()), str(r.calls), str(r.unpriced_calls),
                          usd(r.cost_usd), str(r.input_tokens)]
        cells += [str(r.cached_input_tokens), str(r.output_tokens), str(r.reasoning_tokens)] if tokens \
            else [str(r.output_tokens)]
        rows.append(cells)
    if not report.rows:
        return _titled(report, "no calls in this interval")
    source = "raw rows" if report.source == "raw" else "rollups"
    return f"costs {_titled(report, '')[:-1]} (from {source})\n{format_table(header, rows)}"
