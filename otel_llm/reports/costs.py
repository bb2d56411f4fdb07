"""What the calls cost: totals and breakdowns over any period, per day or month (UTC).

:func:`cost_report` groups by any of :data:`DIMENSIONS` (``agent``, ``model``,
``provider``, ``route``, ``operation``, ``session``, ``user``, ``tag:<key>``). Groupings
the rollups keep (agent, model, provider, route, operation) are read from them — whole
hours from the hourly rollup, edge minutes from the per-minute one — so a month of
traffic costs one small aggregate; the interval is then taken to whole minutes (the
report's ``start``/``end`` say which). Session, user and tag need the raw rows. Either
way the figures are the same sums: ``cost_usd`` adds the known costs, ``priced_calls``
counts them, and ``calls - priced_calls`` calls have no known cost (basis ``unknown``).

``model`` is the requested model (the rollups' key). Money stays ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Literal, Sequence

import psycopg

from exporters.postgres.durations import parse_duration
from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path

Period = Literal["day", "month", "all"]
Source = Literal["auto", "raw", "rollup"]

#: Groupings every report accepts; ``tag:<key>`` groups by one tag's value.
DIMENSIONS: tuple[str, ...] = ("agent", "model", "provider", "route", "operation", "session", "user")
#: The ones the rollups keep.
ROLLUP_DIMENSIONS = frozenset({"agent", "model", "provider", "route", "operation"})
TAG_PREFIX = "tag:"
#: Window used when neither ``since`` nor ``window`` is given.
DEFAULT_WINDOW = timedelta(days=30)

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)


# --- the interval ------------------------------------------------------------------------
def parse_when(value: str | date | datetime, *, now: datetime | None = None) -> datetime:
    """A point in time from what a user types: a date (midnight UTC), an ISO time (UTC
    unless it names a zone), or a duration (``30d`` means 30 days before ``now``)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    text = str(value).strip()
    try:
        return parse_when(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        delta = parse_duration(text)
    except ValueError:
        raise ValueError(f"invalid time {value!r}: use a date (2026-11-01), an ISO time "
                         "(2026-11-01T12:00) or a duration back from now (30d, 24h)") from None
    return (now or datetime.now(timezone.utc)) - delta


def resolve_interval(since: str | date | datetime | None = None, until: str | date | datetime | None = None,
                     window: str | timedelta | None = None, *,
                     now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC from ``since``/``until`` or ``window`` (back from ``until``,
    default now); with neither, the last :data:`DEFAULT_WINDOW`."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    end = parse_when(until, now=now).astimezone(timezone.utc) if until is not None else now
    if since is not None and window is not None:
        raise ValueError("give either since or window, not both")
    if since is not None:
        start = parse_when(since, now=now).astimezone(timezone.utc)
    else:
        span = DEFAULT_WINDOW if window is None else (
            window if isinstance(window, timedelta) else parse_duration(window))
        start = end - span
    if start >= end:
        raise ValueError(f"empty interval: {start.isoformat()} is not before {end.isoformat()}")
    return start, end


def parse_dimensions(by: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"agent,model"`` or ``["agent", "tag:team"]`` -> validated dimension names."""
    if by is None:
        return ()
    items = [p.strip() for p in by.split(",")] if isinstance(by, str) else [str(p).strip() for p in by]
    out: list[str] = []
    tags = 0
    for item in filter(None, items):
        if item.startswith(TAG_PREFIX) and len(item) > len(TAG_PREFIX):
            tags += 1
        elif item not in DIMENSIONS:
            raise ValueError(f"unknown grouping {item!r}: use {', '.join(DIMENSIONS)} or tag:<key>")
        if item not in out:
            out.append(item)
    if tags > 1:
        raise ValueError("group by at most one tag")
    return tuple(out)


# --- the answer --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CostRow:
    """The calls of one group in one period.

    ``group`` maps each requested dimension to its value (``None``: not recorded).
    ``period`` is the UTC start of the day or month, ``None`` for the whole interval.
    ``cache_creation_input_tokens`` is ``None`` when read from the rollups (they do not
    keep it). ``input_tokens`` includes cached input tokens.
    """

    period: datetime | None
    group: dict[str, str | None]
    calls: int
    priced_calls: int
    cost_usd: Decimal
    input_tokens: int
    cached_input_tokens: int
    cache_creation_input_tokens: int | None
    output_tokens: int
    reasoning_tokens: int

    @property
    def unpriced_calls(self) -> int:
        """Calls whose cost is not known (basis ``unknown``): not in ``cost_usd``."""
        return self.calls - self.priced_calls

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens

    def label(self) -> str:
        """The group's values joined by `` / `` (``-`` for unknown), for tables."""
        return " / ".join("-" if v is None else v for v in self.group.values()) or "(all)"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (money as a string, to keep its precision)."""
        return {
            "period": None if self.period is None else self.period.date().isoformat(),
            **self.group,
            "calls": self.calls, "priced_calls": self.priced_calls, "unpriced_calls": self.unpriced_calls,
            "cost_usd": str(self.cost_usd),
            "input_tokens": self.input_tokens, "cached_input_tokens": self.cached_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "output_tokens": self.output_tokens, "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(frozen=True, slots=True)
class CostReport:
    """Cost rows for ``[start, end)``, grouped ``by`` and ``period``, with their total."""

    start: datetime
    end: datetime
    by: tuple[str, ...]
    period: Period
    source: Literal["raw", "rollup"]
    rows: tuple[CostRow, ...]
    total: CostRow = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "by": list(self.by),
            "period": self.period, "source": self.source,
            "rows": [r.as_dict() for r in self.rows], "total": self.total.as_dict(),
        }


# --- the query ---------------------------------------------------------------------------
def _ceil(t: datetime, step: timedelta) -> datetime:
    floor = _floor(t, step)
    return floor if floor == t else floor + step


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((t - epoch) // step) * step


def rollup_bounds(start: datetime, end: datetime) -> dict[str, datetime]:
    """The rollup query's bounds: ``[start, end)`` to whole minutes (rounded down), and
    the whole hours inside it (``hour_start == hour_end`` when there is none)."""
    start, end = _floor(start, _MINUTE), _floor(end, _MINUTE)
    hour_start, hour_end = _ceil(start, _HOUR), _floor(end, _HOUR)
    if hour_start >= hour_end:
        hour_start = hour_end = end
    return {"start": start, "end": end, "hour_start": hour_start, "hour_end": hour_end}


def prepare_transaction(conn: psycopg.Connection, schema: str | None) -> None:
    """``search_path`` and a UTC time zone for the current transaction only (days and
    months are UTC ones; the connection may be borrowed)."""
    set_local_search_path(conn, resolve_schema(schema))
    conn.execute("SET LOCAL TIME ZONE 'UTC'")


def grouping_params(by: Sequence[str]) -> dict[str, Any]:
    """The ``g_<dimension>`` flags and ``tag_key`` parameters of the cost queries."""
    flags: dict[str, Any] = {f"g_{d}": d in by for d in DIMENSIONS}
    tag = next((d[len(TAG_PREFIX):] for d in by if d.startswith(TAG_PREFIX)), None)
    flags["tag_key"] = tag
    return flags


#: The dimension columns of every cost query, in order (``tag`` for ``tag:<key>``).
ROW_DIMENSIONS = ("agent", "model", "provider", "route", "operation", "session", "user", "tag")


def _row(values: Sequence[Any], by: Sequence[str]) -> CostRow:
    period = values[0]
    dims = dict(zip(ROW_DIMENSIONS, values[1:9]))
    group = {d: dims["tag" if d.startswith(TAG_PREFIX) else d] for d in by}
    n, n_cost, cost, tin, tcached, tcreate, tout, treason = values[9:17]
    return CostRow(period=period, group=group, calls=int(n), priced_calls=int(n_cost),
                   cost_usd=Decimal(cost or 0), input_tokens=int(tin or 0),
                   cached_input_tokens=int(tcached or 0),
                   cache_creation_input_tokens=None if tcreate is None else int(tcreate),
                   output_tokens=int(tout or 0), reasoning_tokens=int(treason or 0))


def _total(rows: Sequence[CostRow], from_rollup: bool) -> CostRow:
    def add(name: str) -> int:
        return sum(getattr(r, name) for r in rows)

    return CostRow(period=None, group={}, calls=add("calls"), priced_calls=add("priced_calls"),
                   cost_usd=sum((r.cost_usd for r in rows), Decimal(0)),
                   input_tokens=add("input_tokens"), cached_input_tokens=add("cached_input_tokens"),
                   cache_creation_input_tokens=None if from_rollup else add("cache_creation_input_tokens"),
                   output_tokens=add("output_tokens"), reasoning_tokens=add("reasoning_tokens"))


def cost_report(conn: psycopg.Connection, *, by: str | Iterable[str] | None = ("agent",),
                period: Period = "all", since: str | date | datetime | None = None,
                until: str | date | datetime | None = None, window: str | timedelta | None = None,
                schema: str | None = None, now: datetime | None = None,
                source: Source = "auto") -> CostReport:
    """Cost and tokens per group (``by``) and ``period`` over ``[since, until)`` (or the
    ``window`` ending at ``until``/now; default the last 30 days).

    ``source="auto"`` reads the rollups when every grouping is one they keep, raw rows
    otherwise; ``"raw"`` forces raw rows (exact to the microsecond). ``conn`` may be any
    connection: the query runs in its own transaction with a local ``search_path``.
    """
    dims = parse_dimensions(by)
    if period not in ("day", "month", "all"):
        raise ValueError(f"invalid period {period!r}: use day, month or all")
    start, end = resolve_interval(since, until, window, now=now)
    use = source
    if use == "auto":
        use = "rollup" if ROLLUP_DIMENSIONS.issuperset(dims) else "raw"
    elif use == "rollup" and not ROLLUP_DIMENSIONS.issuperset(dims):
        raise ValueError(f"the rollups do not keep {', '.join(sorted(set(dims) - ROLLUP_DIMENSIONS))}")
    params: dict[str, Any] = {"period": None if period == "all" else period, **grouping_params(dims)}
    if use == "rollup":
        bounds = rollup_bounds(start, end)
        start, end = bounds["start"], bounds["end"]
        params.update(bounds)
        query = load_sql("cost_rollup")
    else:
        params.update(start=start, end=end)
        query = load_sql("cost_raw")
    with conn.transaction():
        prepare_transaction(conn, schema)
        fetched = conn.execute(query, params).fetchall() if start < end else []
    rows = tuple(_row(r, dims) for r in fetched)
    return CostReport(start=start, end=end, by=dims, period=period, source=use, rows=rows,
                      total=_total(rows, use == "rollup"))


# --- daily trend ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DayCost:
    """One UTC day's cost; ``change`` is against the day before (``None`` for the first
    day, or when the day before cost nothing)."""

    day: date
    calls: int
    cost_usd: Decimal
    change: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "calls": self.calls, "cost_usd": str(self.cost_usd),
                "change": self.change}


def daily_trend(conn: psycopg.Connection, *, since: str | date | datetime | None = None,
                until: str | date | datetime | None = None, window: str | timedelta | None = None,
                schema: str | None = None, now: datetime | None = None) -> tuple[DayCost, ...]:
    """Total cost per UTC day over the interval (from the rollups), every day listed —
    days without calls as 0 — with the relative change from the day before."""
    report = cost_report(conn, by=(), period="day", since=since, until=until, window=window,
                         schema=schema, now=now)
    found = {r.period.date(): r for r in report.rows if r.period is not None}
    out: list[DayCost] = []
    day, last = report.start.date(), (report.end - timedelta(microseconds=1)).date()
    previous: Decimal | None = None
    while day <= last:
        row = found.get(day)
        cost = row.cost_usd if row else Decimal(0)
        change = float((cost - previous) / previous) if previous else None
        out.append(DayCost(day, row.calls if row else 0, cost, change))
        previous = cost
        day += timedelta(days=1)
    return tuple(out)
