"""SLO checks: observed latency and success against each objective, error budget, burn rates.

:func:`check_slos` answers for every objective of every SLO (see
:mod:`otel_llm.reports.slo_file` for the file format) with two aggregate queries, one
for all SLOs together:

- windows up to :data:`~exporters.postgres.route_stats.RAW_WINDOW_LIMIT` (the 5 m,
  30 m, 1 h, 2 h and 6 h alert windows) from raw rows: good events counted exactly;
- longer windows (1 d, 3 d and the SLO window itself) from the rollups, read at minute
  resolution (whole hours plus the edge minutes). Latency is kept there as a histogram
  of 4 %-wide buckets, so the bucket holding a latency threshold is ambiguous: its
  events are split by log-linear interpolation (the share of the bucket's log-width
  below the threshold, as if latencies were spread evenly in log space inside it).
  The error of that count is at most the bucket's events times the larger of the two
  shares (every one of them could lie on the other side), reported as
  ``good_error_bound``; the bucket spans 4 % of latency, so it holds few events unless
  the threshold sits in the thick of the distribution, and events spread smoothly
  through it make the interpolation nearly exact. Short windows, where an alert needs
  precision most, are counted exactly from raw rows.

The burn-rate rows and their thresholds are those of :mod:`otel_llm.reports.burn`.
An objective is *breached* when any of its rows fires or when its compliance over
the SLO window is below the target; a window with fewer than ``min_events`` events
gets no verdict (status ``too few events``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence

import psycopg

from exporters.postgres.durations import format_duration
from exporters.postgres.histogram import MIN_MS, RATIO, bucket, percentiles
from exporters.postgres.route_stats import RAW_WINDOW_LIMIT
from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path
from otel_llm.reports.burn import (
    DEFAULT_MIN_EVENTS,
    DEFAULT_RULES,
    BurnRow,
    BurnRule,
    budget_remaining,
    evaluate_rule,
    window_burn,
)
from otel_llm.reports.slo_file import SLO, Objective, SLOFileError, load_slo_file, parse_slos
from otel_llm.reports.slo_series import LatencyPoint, latency_series

__all__ = [
    "SLO", "Objective", "SLOFileError", "load_slo_file", "parse_slos", "check_slos", "SLOReport",
    "SLOResult", "ObjectiveResult", "WindowEvents", "LatencyPoint", "latency_series",
    "boundary_share", "good_below",
]

Status = Literal["ok", "breach", "no data", "too few events"]

_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class WindowEvents:
    """Events of one selection in one window ending at the check's time."""

    window: timedelta
    total: int
    good: float
    #: Largest possible error of ``good`` (0 from raw rows; the interpolated bucket's
    #: uncertainty from the rollups).
    good_error_bound: float = 0.0
    source: Literal["raw", "rollup"] = "raw"

    @property
    def bad(self) -> float:
        """Events that were not good."""
        return self.total - self.good


@dataclass(frozen=True, slots=True)
class ObjectiveResult:
    """One objective checked: compliance and budget over the SLO window, burn-rate rows."""

    objective: Objective
    #: Events over the SLO window.
    events: WindowEvents
    #: Share of good events over the SLO window (``None`` without events).
    compliance: float | None
    met: bool | None
    #: Share of the window's error budget left (1 untouched, below 0 overspent).
    budget_remaining: float | None
    burn_rows: tuple[BurnRow, ...]
    warnings: tuple[str, ...]
    status: Status

    @property
    def firing(self) -> tuple[BurnRow, ...]:
        """The rows that fire."""
        return tuple(r for r in self.burn_rows if r.fires)


@dataclass(frozen=True, slots=True)
class SLOResult:
    """An SLO checked: what was observed over its window, and each objective."""

    slo: SLO
    total: int
    ok: int
    success_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    objectives: tuple[ObjectiveResult, ...]

    @property
    def status(self) -> Status:
        """``breach`` if any objective is breached, else ``ok`` if any is ok, else the
        objectives' ``too few events`` or ``no data``."""
        states = {o.status for o in self.objectives}
        for state in ("breach", "ok", "too few events"):
            if state in states:
                return state  # type: ignore[return-value]
        return "no data"


@dataclass(frozen=True, slots=True)
class SLOReport:
    """Every SLO of a check, at one point in time."""

    now: datetime
    min_events: int
    results: tuple[SLOResult, ...] = field(default_factory=tuple)

    @property
    def breached(self) -> bool:
        """Whether any objective is breached (the command exits 1)."""
        return any(r.status == "breach" for r in self.results)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every objective's warnings, prefixed with its SLO's name."""
        return tuple(f"{r.slo.name}: {w}" for r in self.results for o in r.objectives for w in o.warnings)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (durations as ``15m``-style text)."""
        return _jsonable({"now": self.now, "min_events": self.min_events, "breached": self.breached,
                          "results": [{**asdict(r), "status": r.status} for r in self.results]})


def check_slos(conn: psycopg.Connection, slos: Sequence[SLO], *, now: datetime | None = None,
               schema: str | None = None, min_events: int = DEFAULT_MIN_EVENTS,
               rules: Sequence[BurnRule] = DEFAULT_RULES) -> SLOReport:
    """Check ``slos`` at ``now`` (default: the current time).

    ``min_events``: fewest events each window of a burn-rate row needs for the row to
    fire. ``conn`` may be any connection; the queries run in one transaction with a
    local ``search_path``.
    """
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    schema = resolve_schema(schema)
    selections = [(slo, objective) for slo in slos for objective in slo.objectives]
    windows = sorted({w for rule in rules for w in (rule.long_window, rule.short_window)}
                     | {slo.window for slo in slos})
    raw_windows = [w for w in windows if w <= RAW_WINDOW_LIMIT]
    long_windows = [w for w in windows if w > RAW_WINDOW_LIMIT]
    with conn.transaction():
        set_local_search_path(conn, schema)
        raw = _read_raw(conn, selections, raw_windows, now) if selections and raw_windows else {}
        rolled, latency = _read_rollup(conn, selections, long_windows, now) if selections and long_windows else ({}, {})
    events = {**raw, **rolled}
    results = []
    sel = 0
    for slo in slos:
        first = sel
        objective_results = []
        for objective in slo.objectives:
            found = {w: e for (s, w), e in events.items() if s == sel}
            objective_results.append(_objective_result(slo, objective, found, rules, min_events))
            sel += 1
        total, ok, quantiles = latency.get(first, (0, 0, [None, None, None]))
        results.append(SLOResult(
            slo=slo, total=total, ok=ok, success_rate=ok / total if total else None,
            latency_p50_ms=quantiles[0], latency_p95_ms=quantiles[1], latency_p99_ms=quantiles[2],
            objectives=tuple(objective_results)))
    return SLOReport(now=now, min_events=min_events, results=tuple(results))


def _objective_result(slo: SLO, objective: Objective, found: dict[timedelta, WindowEvents],
                      rules: Sequence[BurnRule], min_events: int) -> ObjectiveResult:
    def get(window: timedelta) -> WindowEvents:
        source: Literal["raw", "rollup"] = "raw" if window <= RAW_WINDOW_LIMIT else "rollup"
        return found.get(window) or WindowEvents(window, 0, 0.0, 0.0, source)

    target = objective.target
    rows = []
    warnings = []
    for rule in rules:
        long_events, short_events = get(rule.long_window), get(rule.short_window)
        row = evaluate_rule(rule, slo.window, target,
                            window_burn(rule.long_window, long_events.total, long_events.bad, target, min_events),
                            window_burn(rule.short_window, short_events.total, short_events.bad, target, min_events))
        rows.append(row)
        if not row.can_fire:
            warnings.append(
                f"{objective.name}: target {target:g} is too loose for the {rule.severity} row "
                f"{format_duration(rule.long_window)}/{format_duration(rule.short_window)} to fire "
                f"(threshold {row.threshold:.3g} x error budget {1 - target:.3g} >= 1: "
                "even 100 % errors stay below it)")
    events = get(slo.window)
    compliance = events.good / events.total if events.total else None
    # Like a burn-rate window, the SLO window needs min_events for a verdict: one
    # failed call out of three is no breach of a 99 % objective yet.
    met = None if compliance is None or events.total < min_events else compliance >= target
    breached = (met is False) or any(r.fires for r in rows)
    status: Status = "breach" if breached else (
        "no data" if events.total == 0 else ("too few events" if met is None else "ok"))
    return ObjectiveResult(objective=objective, events=events, compliance=compliance, met=met,
                           budget_remaining=budget_remaining(events.bad, events.total, target),
                           burn_rows=tuple(rows), warnings=tuple(warnings), status=status)


def _selection_params(selections: Sequence[tuple[SLO, Objective]]) -> dict[str, list[Any]]:
    return {
        "sel_id": list(range(len(selections))),
        "sel_agent": [slo.agent for slo, _ in selections],
        "sel_route": [slo.route for slo, _ in selections],
        "sel_threshold": [o.threshold_ms for _, o in selections],
    }


def _read_raw(conn: psycopg.Connection, selections: Sequence[tuple[SLO, Objective]],
              windows: Sequence[timedelta], now: datetime) -> dict[tuple[int, timedelta], WindowEvents]:
    starts = [now - w for w in windows]
    params = {**_selection_params(selections), "win_id": list(range(len(windows))), "win_start": starts,
              "start": min(starts), "end": now}
    out = {}
    for sel, win, n, good in conn.execute(load_sql("slo_raw"), params).fetchall():
        out[(sel, windows[win])] = WindowEvents(windows[win], int(n), float(good), 0.0, "raw")
    return out


def _read_rollup(conn: psycopg.Connection, selections: Sequence[tuple[SLO, Objective]],
                 windows: Sequence[timedelta], now: datetime
                 ) -> tuple[dict[tuple[int, timedelta], WindowEvents], dict[int, tuple[int, int, list[float | None]]]]:
    # One histogram per calls selected (agent, route) and window, shared by the
    # objectives that select the same calls: each objective counts its own threshold.
    keys = list(dict.fromkeys((slo.agent, slo.route) for slo, _ in selections))
    users: dict[int, list[int]] = {}
    for i, (slo, _) in enumerate(selections):
        users.setdefault(keys.index((slo.agent, slo.route)), []).append(i)
    starts = [_floor(now - w, _MINUTE) for w in windows]
    hours = [_ceil_hour(s) for s in starts]
    params = {"sel_id": list(range(len(keys))), "sel_agent": [k[0] for k in keys], "sel_route": [k[1] for k in keys],
              "win_id": list(range(len(windows))), "win_start": starts, "win_hour": hours,
              "hour_from": min(hours), "end_hour": _floor(now, _HOUR), "end": now}
    events: dict[tuple[int, timedelta], WindowEvents] = {}
    latency: dict[int, tuple[int, int, list[float | None]]] = {}
    for key, win, n, n_ok, idx, cnt in conn.execute(load_sql("slo_rollup"), params).fetchall():
        window = windows[win]
        idx, cnt = idx or [], cnt or []
        for sel in users[key]:
            slo, objective = selections[sel]
            threshold = objective.threshold_ms
            good, bound = (float(n_ok), 0.0) if threshold is None else good_below(idx, cnt, threshold)
            events[(sel, window)] = WindowEvents(window, int(n), good, bound, "rollup")
            if window == slo.window:
                latency[sel] = (int(n), int(n_ok), percentiles(idx, cnt, (0.5, 0.95, 0.99)))
    return events, latency


def good_below(idx: Sequence[int], cnt: Sequence[int], threshold_ms: float) -> tuple[float, float]:
    """``(count, error bound)`` of the histogram's events at or below ``threshold_ms``:
    whole buckets below the threshold's, plus :func:`boundary_share` of its own; the
    bound is that bucket's events times the larger of the two shares."""
    at = bucket(threshold_ms)
    below = float(sum(c for b, c in zip(idx, cnt) if b < at))
    boundary = float(sum(c for b, c in zip(idx, cnt) if b == at))
    share = boundary_share(threshold_ms)
    return below + share * boundary, boundary * max(share, 1.0 - share)


def boundary_share(threshold_ms: float) -> float:
    """Share of the histogram bucket holding ``threshold_ms`` that lies at or below it.

    Log-linear within the bucket ``[lo, lo * 1.04)``: ``ln(threshold / lo) / ln(1.04)``;
    linear in bucket 0 (below 0.01 ms).
    """
    index = bucket(threshold_ms)
    if index == 0:
        return min(max(threshold_ms / MIN_MS, 0.0), 1.0)
    low = MIN_MS * RATIO ** (index - 1)
    return min(max(math.log(threshold_ms / low) / math.log(RATIO), 0.0), 1.0)


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def _ceil_hour(t: datetime) -> datetime:
    floor = _floor(t, _HOUR)
    return floor if floor == t else floor + _HOUR


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
