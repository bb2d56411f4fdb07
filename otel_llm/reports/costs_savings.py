"""What these calls would have cost on another model: :func:`savings`.

The stored token counts of every call with a known cost are priced with the baseline
model's price at the call's date (the pricer's prices: the library's plus the user's
file). Pricing is linear in the token counts within one input-size tier, so the query
sums counts per day, group and the baseline's tier, and each sum is priced once — the
same figure as pricing every call, without reading millions of rows into Python. (A
price that changes with the time of day is taken at the day's start.)

``saving_usd = actual_cost_usd - baseline_cost_usd``: positive when the baseline would
have been cheaper (what switching would save), negative when it would have cost more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

import psycopg

from exporters.postgres.schema import load_sql
from otel_llm.reports.costs import (ROW_DIMENSIONS, grouping_params, parse_dimensions, prepare_transaction,
                                    resolve_interval)
from processor.pricing import REASONING_EXCLUDED, PriceBook

class UnknownBaseline(LookupError):
    """The baseline model has no price in the interval."""


@dataclass(frozen=True, slots=True)
class SavingsRow:
    """One group's calls: their actual cost and their cost on the baseline model."""

    group: dict[str, str | None]
    calls: int
    actual_cost_usd: Decimal
    baseline_cost_usd: Decimal

    @property
    def saving_usd(self) -> Decimal:
        return self.actual_cost_usd - self.baseline_cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {**self.group, "calls": self.calls, "actual_cost_usd": str(self.actual_cost_usd),
                "baseline_cost_usd": str(self.baseline_cost_usd), "saving_usd": str(self.saving_usd)}


@dataclass(frozen=True, slots=True)
class SavingsReport:
    start: datetime
    end: datetime
    baseline_provider: str | None
    baseline_model: str
    by: tuple[str, ...]
    rows: tuple[SavingsRow, ...]
    total: SavingsRow
    #: Calls left out: no known cost, or no token counts to price.
    excluded_calls: int

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "baseline_provider": self.baseline_provider, "baseline_model": self.baseline_model,
                "by": list(self.by), "rows": [r.as_dict() for r in self.rows], "total": self.total.as_dict(),
                "excluded_calls": self.excluded_calls}


def savings(conn: psycopg.Connection, baseline_model: str, *, baseline_provider: str | None = None,
            by: str | Iterable[str] | None = ("model",), since: str | date | datetime | None = None,
            until: str | date | datetime | None = None, window: str | timedelta | None = None,
            pricer: PriceBook | None = None, schema: str | None = None,
            now: datetime | None = None) -> SavingsReport:
    """Actual cost against ``baseline_model``'s, per group, over ``[since, until)``.

    Raises :class:`UnknownBaseline` when the baseline has no price in the interval.
    """
    pricer = pricer or PriceBook()
    dims = parse_dimensions(by)
    start, end = resolve_interval(since, until, window, now=now)
    periods = pricer.periods(baseline_provider, baseline_model, None)
    if periods.dynamic is None and all(card is None for card in periods.cards):
        raise UnknownBaseline(f"no price known for baseline model {baseline_model!r}"
                              f"{'' if baseline_provider is None else f' of {baseline_provider}'}")
    thresholds = sorted({t for card in periods.cards if card is not None for t in card.thresholds})
    params = {"start": start, "end": end, "thresholds": thresholds,
              "reasoning_excluded": sorted(REASONING_EXCLUDED), **grouping_params(dims)}
    with conn.transaction():
        prepare_transaction(conn, schema)
        fetched = conn.execute(load_sql("cost_savings"), params).fetchall()
    groups: dict[tuple, list[Any]] = {}
    excluded = 0
    for row in fetched:
        day, values, comparable, tier = row[0], row[1:9], row[9], row[10]
        calls, cost, inp, cache_read, cache_write, outp, reasoning = row[11:18]
        if not comparable:
            excluded += int(calls)
            continue
        card = periods.at(day)
        if card is None:
            raise UnknownBaseline(f"no price known for baseline model {baseline_model!r} on {day:%Y-%m-%d}")
        tier_input = thresholds[tier - 1] + 1 if tier else 0
        baseline = card.cost(int(inp), int(cache_read), int(cache_write), int(outp), int(reasoning),
                             calls=int(calls), tier_input=tier_input)
        dims_by_name = dict(zip(ROW_DIMENSIONS, values))
        key = tuple(dims_by_name["tag" if d.startswith("tag:") else d] for d in dims)
        acc = groups.setdefault(key, [0, Decimal(0), Decimal(0)])
        acc[0] += int(calls)
        acc[1] += cost
        acc[2] += baseline
    rows = sorted((SavingsRow(dict(zip(dims, key)), n, actual, base) for key, (n, actual, base) in groups.items()),
                  key=lambda r: (-r.saving_usd, [v or "" for v in r.group.values()]))
    total = SavingsRow({}, sum(r.calls for r in rows), sum((r.actual_cost_usd for r in rows), Decimal(0)),
                       sum((r.baseline_cost_usd for r in rows), Decimal(0)))
    return SavingsReport(start, end, baseline_provider, baseline_model, dims, tuple(rows), total, excluded)
