"""Stored costs after a price change: :func:`reprice`, and :func:`missing_prices`.

:func:`reprice` recomputes, with today's prices (the library's and the user's file) at
each call's own time, the cost of every stored call in ``[since, until)`` that the
pricer prices: basis ``computed`` or ``unknown`` rows get the new figure (or become
``unknown``, NULL, when the model has no price any more); a ``reported`` cost is kept
and only its ``computed_cost_usd`` beside it is refreshed; ``local`` calls are left
alone. It is idempotent: only rows whose values change are written, so a second run
with the same prices changes nothing.

The rollups' cost sums (``cost_usd``, ``n_cost`` of ``route_rollup_minute``,
``route_rollup_hour`` and ``route_stats_hour``) move by exactly the raw rows'
differences in the same statement, one transaction per chunk, so reports read from the
rollups agree with the raw rows after every chunk.

Work goes slice by slice of time (:data:`SLICE`, read through the time index) and
chunk by chunk of rows (:data:`CHUNK`), so memory stays bounded at any data volume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Final

import psycopg

from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path
from otel_llm.reports.costs import resolve_interval
from processor.pricing import PriceBook

#: Time read per query.
SLICE: Final = timedelta(hours=1)
#: Rows written per transaction.
CHUNK: Final = 5000
#: Times a chunk is retried after losing a lock race with a writer.
RETRIES: Final = 3

REPORTED, COMPUTED, UNKNOWN = "reported", "computed", "unknown"


@dataclass(frozen=True, slots=True)
class RepriceResult:
    """What a reprice did over ``[start, end)``."""

    start: datetime
    end: datetime
    rows_examined: int
    rows_changed: int
    #: Rows that had no cost and have one now, and the reverse.
    newly_priced: int
    newly_unknown: int
    #: Change of the total known cost (new minus old, NULL counted as 0).
    cost_delta: Decimal
    chunks: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(start=self.start.isoformat(), end=self.end.isoformat(), cost_delta=str(self.cost_delta))
        return out


def new_costs(row: tuple, pricer: PriceBook) -> tuple[Decimal | None, str, Decimal | None]:
    """(cost_usd, cost_basis, computed_cost_usd) for a stored row (``reprice_select.sql``
    columns) with ``pricer``'s prices."""
    (_, _, started_at, provider, response_model, request_model, inp, cached, created, out, reasoning,
     cost, basis, _) = row
    price = pricer.cost(provider, response_model, request_model, started_at, inp, cached, created, out, reasoning)
    if basis == REPORTED:
        return cost, REPORTED, price
    return (None, UNKNOWN, None) if price is None else (price, COMPUTED, price)


def reprice(conn: psycopg.Connection, *, since: str | date | datetime, until: str | date | datetime | None = None,
            pricer: PriceBook | None = None, schema: str | None = None, now: datetime | None = None,
            progress: Callable[[RepriceResult], None] | None = None) -> RepriceResult:
    """Recompute stored costs in ``[since, until)`` (default until now) with ``pricer``
    (default: the library's prices plus ``OTEL_LLM_PRICES_FILE``)."""
    pricer = pricer or PriceBook()
    start, end = resolve_interval(since, until, now=now)
    schema = resolve_schema(schema)
    select, apply = load_sql("reprice_select"), load_sql("reprice_apply")
    examined = changed = newly_priced = newly_unknown = chunks = 0
    delta = Decimal(0)
    t = start
    while t < end:
        t_next = min(t + SLICE, end)
        with conn.transaction():
            set_local_search_path(conn, schema)
            rows = conn.execute(select, {"start": t, "end": t_next}).fetchall()
        examined += len(rows)
        pending = []
        for row in rows:
            cost, basis, computed = new_costs(row, pricer)
            old_cost, old_basis, old_computed = row[11], row[12], row[13]
            if (cost, basis, computed) != (old_cost, old_basis, old_computed):
                pending.append((row[0], row[1], row[2], cost, basis, computed))
                newly_priced += old_cost is None and cost is not None
                newly_unknown += old_cost is not None and cost is None
        for i in range(0, len(pending), CHUNK):
            part = pending[i:i + CHUNK]
            params = {name: [r[k] for r in part] for k, name in enumerate(
                ("trace_id", "span_id", "started_at", "cost_usd", "cost_basis", "computed_cost_usd"))}
            n, d = _apply(conn, schema, apply, params)
            changed += n
            delta += d
            chunks += 1
        t = t_next
        if progress is not None:
            progress(RepriceResult(start, t, examined, changed, newly_priced, newly_unknown, delta, chunks))
    return RepriceResult(start, end, examined, changed, newly_priced, newly_unknown, delta, chunks)


def _apply(conn: psycopg.Connection, schema: str, statement: str, params: dict[str, Any]) -> tuple[int, Decimal]:
    """One chunk in one transaction; retried when it loses a deadlock or serialization
    race with a writer updating the same rollup rows (nothing of it was applied then)."""
    for attempt in range(RETRIES + 1):
        try:
            with conn.transaction():
                set_local_search_path(conn, schema)
                n, d, _ = conn.execute(statement, params).fetchone()
            return int(n), d
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- models without a price ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MissingPrice:
    """A (provider, model) seen with basis ``unknown``: how often, when, and whether the
    prices in use now know it (then a reprice fills the old rows in)."""

    provider: str | None
    request_model: str | None
    response_model: str | None
    calls: int
    calls_with_tokens: int
    first_seen: datetime
    last_seen: datetime
    priced_now: bool

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(first_seen=self.first_seen.isoformat(), last_seen=self.last_seen.isoformat())
        return out


def missing_prices(conn: psycopg.Connection, *, since: str | date | datetime | None = None,
                   until: str | date | datetime | None = None, window: str | timedelta | None = None,
                   pricer: PriceBook | None = None, schema: str | None = None,
                   now: datetime | None = None) -> tuple[MissingPrice, ...]:
    """Models seen in ``[since, until)`` (default the last 30 days) whose calls have no
    known cost, most calls first."""
    pricer = pricer or PriceBook()
    start, end = resolve_interval(since, until, window, now=now)
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        rows = conn.execute(load_sql("cost_missing_prices"), {"start": start, "end": end}).fetchall()
    out = []
    for provider, request_model, response_model, calls, with_tokens, first, last in rows:
        priced = pricer.cost(provider, response_model, request_model, last, 1, None, None, 1, None) is not None
        out.append(MissingPrice(provider, request_model, response_model, int(calls), int(with_tokens),
                                first, last, priced))
    return tuple(out)

