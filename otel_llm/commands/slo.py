"""``otel-llm slo check --file slo.yaml``: SLOs against the stored route observations.

For each objective: compliance and error budget over the SLO window, and the
multiwindow burn-rate rows (page 1h/5m and 6h/30m, ticket 1d/2h and 3d/6h). Exit
status 0 when every objective is met and no row fires, 1 on a breach, 2 on an error
(a bad SLO file, no database), so cron jobs and CI can act on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from otel_llm.commands.db import add_database_arguments, open_database

if TYPE_CHECKING:
    from otel_llm.reports.burn import WindowBurn
    from otel_llm.reports.slo import ObjectiveResult, SLOReport, SLOResult


def register(subparsers: Any) -> None:
    """Add ``slo check``."""
    slo = subparsers.add_parser("slo", help="check SLOs: objectives, error budget, burn-rate alerts",
                                description=__doc__.split("\n\n", 1)[1].replace("``", ""))
    actions = slo.add_subparsers(dest="slo_command", metavar="ACTION")

    def _usage(args: argparse.Namespace) -> int:
        slo.print_help()
        return 2

    slo.set_defaults(handler=_usage)
    check = actions.add_parser("check", help="check the SLOs of a file (exit 0 ok, 1 breach, 2 error)")
    check.add_argument("--file", required=True, metavar="PATH", help="SLO file (OpenSLO v1 YAML subset)")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("--now", metavar="ISO", help="check as of this time (ISO 8601; default: now)")
    check.add_argument("--min-events", type=int, metavar="N",
                       help="fewest events each window of a burn-rate row needs to fire (default 20)")
    add_database_arguments(check)
    check.set_defaults(handler=_check)


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time or date (UTC when no zone is given); ``None`` for ``None``."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-22T10:00:00Z or 2026-11-22") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _check(args: argparse.Namespace) -> int:
    from exporters.postgres.migrate import migrate
    from otel_llm.reports.burn import DEFAULT_MIN_EVENTS
    from otel_llm.reports.slo import SLOFileError, check_slos, load_slo_file

    try:
        slos = load_slo_file(args.file)
        now = parse_time(args.now)
    except (SLOFileError, ValueError) as exc:
        print(f"otel-llm slo check: error: {exc}", file=sys.stderr)
        return 2
    min_events = DEFAULT_MIN_EVENTS if args.min_events is None else args.min_events
    if min_events < 1:
        print("otel-llm slo check: error: --min-events must be at least 1", file=sys.stderr)
        return 2
    with open_database(args) as (conn, schema):
        migrate(conn, schema)
        report = check_slos(conn, slos, now=now, schema=schema, min_events=min_events)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_report(report))
    return 1 if report.breached else 0


def format_report(report: "SLOReport") -> str:
    """The report as text: one block per SLO, one line per objective and burn-rate row."""
    lines = [f"SLO check at {report.now:%Y-%m-%d %H:%M:%S} UTC (rows fire with >= {report.min_events} events per window)"]
    for result in report.results:
        lines.append("")
        lines.extend(_slo_lines(result))
    if report.warnings:
        lines.append("")
        lines.extend(f"warning: {w}" for w in report.warnings)
    lines.append("")
    lines.append("BREACH" if report.breached else "OK")
    return "\n".join(lines)


def _slo_lines(result: "SLOResult") -> list[str]:
    from exporters.postgres.durations import format_duration

    slo = result.slo
    rate = "-" if result.success_rate is None else f"{100 * result.success_rate:.2f} %"
    window = f"{slo.window.days}d" if slo.window == timedelta(days=slo.window.days) else format_duration(slo.window)
    lines = [f"{slo.name} ({slo.selector}, {window}): {result.status.upper()}",
             f"  {result.total} calls, success {rate}, latency p50 {_ms(result.latency_p50_ms)} "
             f"p95 {_ms(result.latency_p95_ms)} p99 {_ms(result.latency_p99_ms)}"]
    for objective in result.objectives:
        lines.extend(_objective_lines(objective))
    return lines


def _objective_lines(result: "ObjectiveResult") -> list[str]:
    from exporters.postgres.durations import format_duration

    o = result.objective
    what = "success rate" if o.threshold_ms is None else f"latency <= {o.threshold_ms:g} ms"
    compliance = "-" if result.compliance is None else f"{100 * result.compliance:.3f} %"
    budget = "-" if result.budget_remaining is None else f"{100 * result.budget_remaining:.1f} %"
    verdict = {None: "no data" if not result.events.total else "too few events", True: "met",
               False: "MISSED"}[result.met]
    bound = f" (+/- {result.events.good_error_bound:.1f} events)" if result.events.good_error_bound else ""
    lines = [f"  - {o.name} [{what}, target {100 * o.target:g} %]: {compliance} {verdict}{bound}, "
             f"budget remaining {budget}"]
    for row in result.burn_rows:
        windows = f"{format_duration(row.long.window)}/{format_duration(row.short.window)}"
        state = "FIRES" if row.fires else ("cannot fire" if not row.can_fire else "-")
        lines.append(f"      {row.severity:<6} {windows:<7} > {row.threshold:6.3g}x   "
                     f"long {_burn(row.long)}   short {_burn(row.short)}   {state}")
    return lines


def _burn(w: "WindowBurn") -> str:
    rate = "-" if w.burn_rate is None else f"{w.burn_rate:.2f}x"
    few = "" if w.enough_events else " too few"
    return f"{rate:>8} ({w.total:g} events{few})"


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms")
