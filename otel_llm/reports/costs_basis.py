"""Where the cost figures come from, and how far they can be trusted.

- :func:`basis_mix`: how much of the cost (and how many calls) is ``reported`` (by the
  provider or the application), ``computed`` (price library at the call's time),
  ``local`` (self-hosted, 0) or ``unknown`` (no price: not in the totals).
- :func:`cost_accuracy`: per provider, reported costs against what the price library
  computes for the same calls — drift on the sums, mean and largest per-call difference.
  A large drift means the prices (or the token counts) disagree with the bill.

Both read raw rows (the rollups do not keep the basis).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path
from otel_llm.reports.costs import resolve_interval


@dataclass(frozen=True, slots=True)
class BasisShare:
    """The calls of one cost basis. ``share`` is this basis' part of the known cost."""

    basis: str
    calls: int
    priced_calls: int
    cost_usd: Decimal
    share: float
    #: Computed figures kept for these calls (beside reported ones: see :func:`cost_accuracy`).
    computed_calls: int
    computed_cost_usd: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {"basis": self.basis, "calls": self.calls, "priced_calls": self.priced_calls,
                "cost_usd": str(self.cost_usd), "share": self.share, "computed_calls": self.computed_calls,
                "computed_cost_usd": str(self.computed_cost_usd)}


@dataclass(frozen=True, slots=True)
class BasisMix:
    start: datetime
    end: datetime
    bases: tuple[BasisShare, ...]

    @property
    def calls(self) -> int:
        return sum(b.calls for b in self.bases)

    @property
    def cost_usd(self) -> Decimal:
        return sum((b.cost_usd for b in self.bases), Decimal(0))

    def get(self, basis: str) -> BasisShare | None:
        return next((b for b in self.bases if b.basis == basis), None)

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "calls": self.calls,
                "cost_usd": str(self.cost_usd), "bases": [b.as_dict() for b in self.bases]}


def basis_mix(conn: psycopg.Connection, *, since: str | date | datetime | None = None,
              until: str | date | datetime | None = None, window: str | timedelta | None = None,
              schema: str | None = None, now: datetime | None = None) -> BasisMix:
    """Calls and cost per basis over ``[since, until)`` (default the last 30 days)."""
    start, end = resolve_interval(since, until, window, now=now)
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        rows = conn.execute(load_sql("cost_basis_mix"), {"start": start, "end": end}).fetchall()
    total = sum((r[3] for r in rows), Decimal(0))
    bases = tuple(BasisShare(basis=b, calls=int(n), priced_calls=int(np), cost_usd=c,
                             share=float(c / total) if total else 0.0, computed_calls=int(nc),
                             computed_cost_usd=cc)
                  for b, n, np, c, nc, cc in rows)
    return BasisMix(start, end, bases)


@dataclass(frozen=True, slots=True)
class ProviderAccuracy:
    """Reported against computed cost for one provider's calls that have both."""

    provider: str | None
    calls: int
    reported_usd: Decimal
    computed_usd: Decimal
    #: (reported - computed) / computed on the sums; ``None`` when computed is 0.
    drift: float | None
    mean_abs_relative: float | None
    max_abs_relative: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "calls": self.calls, "reported_usd": str(self.reported_usd),
                "computed_usd": str(self.computed_usd), "drift": self.drift,
                "mean_abs_relative": self.mean_abs_relative, "max_abs_relative": self.max_abs_relative}


def cost_accuracy(conn: psycopg.Connection, *, since: str | date | datetime | None = None,
                  until: str | date | datetime | None = None, window: str | timedelta | None = None,
                  schema: str | None = None, now: datetime | None = None) -> tuple[ProviderAccuracy, ...]:
    """Per provider, how far reported costs are from computed ones over the interval."""
    start, end = resolve_interval(since, until, window, now=now)
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        rows = conn.execute(load_sql("cost_accuracy"), {"start": start, "end": end}).fetchall()
    return tuple(ProviderAccuracy(provider=p, calls=int(n), reported_usd=r, computed_usd=c,
                                  drift=float((r - c) / c) if c else None,
                                  mean_abs_relative=None if mean is None else float(mean),
                                  max_abs_relative=None if top is None else float(top))
                 for p, n, r, c, mean, top in rows)
