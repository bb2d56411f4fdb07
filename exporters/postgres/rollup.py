"""A batch's rollup deltas, aggregated in Python for ``sql/write_rollups.sql``.

When the writer stores a whole batch with a plain COPY, every row is new, so the rollups
grow by exactly the batch's totals. Aggregating them here (a few dict updates per row)
and sending one row per minute group, plus its histogram bins, costs the database far
less than aggregating the raw rows in SQL. The arithmetic is that of
``sql/write_chunk.sql``: keys are the UTC minute and route/agent/model/provider/operation
with NULL as ``''``; token sums skip NULLs and are 0 when all are NULL; ``cost_usd`` sums
the known costs (0 when none) and ``n_cost`` counts them; latency and TTFT bins
(:func:`exporters.postgres.histogram.bucket`, the twin of SQL ``hist_bucket``) count
successful calls only.
"""

from __future__ import annotations

import json

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Sequence

from exporters.postgres.histogram import bucket

#: The row values the rollups read, in the order :func:`rollup_params` expects their indices.
ROLLUP_COLUMNS: tuple[str, ...] = (
    "started_at", "route", "agent", "request_model", "provider", "operation", "ok", "fallback",
    "duration_ms", "ttft_ms", "input_tokens", "output_tokens", "cached_input_tokens",
    "reasoning_tokens", "cost_usd",
)

_SUM_NAMES = ("n", "n_ok", "n_fallback", "input_tokens", "output_tokens", "cached_input_tokens",
              "reasoning_tokens", "cost_usd", "n_cost", "duration_ms_ok_sum")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MINUTE = timedelta(minutes=1)
#: Position of ``cost_usd`` among the sums (sent as text: a Decimal is not JSON).
_COST_POS = _SUM_NAMES.index("cost_usd")
#: JSON with no NaN/Infinity (PostgreSQL's JSON has none): such a batch raises here and
#: goes the careful way, where SQL aggregates the stored rows.
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def rollup_params(rows: Sequence[Sequence[Any]], idx: Sequence[int]) -> dict[str, str]:
    """Parameters of ``write_rollups.sql`` for ``rows`` (COPY rows; ``idx`` locates
    :data:`ROLLUP_COLUMNS` in them): per level (``minute``, ``hour``, ``route_hour``) a
    JSON array of rollup rows, each ``[minute since the epoch, *key, *sums, lat_idx,
    lat_cnt, ttft_idx, ttft_cnt]``. Raises ``TypeError``/``ValueError`` for values the
    rollups cannot key or add up; the writer then takes the careful way."""
    (i_st, i_route, i_agent, i_model, i_provider, i_op, i_ok, i_fallback, i_dur, i_ttft,
     i_in, i_out, i_cached, i_reasoning, i_cost) = idx
    groups: dict[tuple[Any, ...], list[Any]] = {}
    bins: dict[tuple[Any, ...], int] = {}
    for r in rows:
        # Minutes since the epoch (an aware time of any zone; a naive one raises).
        minute = (r[i_st] - _EPOCH) // _MINUTE
        route, agent, model, provider, op = r[i_route], r[i_agent], r[i_model], r[i_provider], r[i_op]
        key = (minute,
               "" if route is None else route, "" if agent is None else agent,
               "" if model is None else model, "" if provider is None else provider,
               "" if op is None else op)
        acc = groups.get(key)
        if acc is None:
            if any(type(k) is not str for k in key[1:]):
                raise TypeError(f"rollup key values must be text: {key[1:]!r}")
            acc = groups[key] = [0, 0, 0, 0, 0, 0, 0, Decimal(0), 0, 0.0]
        acc[0] += 1
        if r[i_fallback]:
            acc[2] += 1
        value = r[i_in]
        if value is not None:
            acc[3] += value
        value = r[i_out]
        if value is not None:
            acc[4] += value
        value = r[i_cached]
        if value is not None:
            acc[5] += value
        value = r[i_reasoning]
        if value is not None:
            acc[6] += value
        value = r[i_cost]
        if value is not None:
            acc[7] += value
            acc[8] += 1
        if r[i_ok]:
            acc[1] += 1
            duration = r[i_dur]
            acc[9] += duration
            b = ("lat", key, bucket(duration))
            bins[b] = bins.get(b, 0) + 1
            ttft = r[i_ttft]
            if ttft is not None:
                b = ("ttft", key, bucket(ttft))
                bins[b] = bins.get(b, 0) + 1
    # The hour and route-hour levels add up the minute groups (far fewer than rows).
    hours: dict[tuple[Any, ...], list[Any]] = {}
    routes: dict[tuple[Any, ...], list[Any]] = {}
    for key, acc in groups.items():
        hour = key[0] // 60 * 60
        _add(hours, (hour, *key[1:]), acc)
        _add(routes, (hour, key[1]), acc)
    hists: dict[str, dict[tuple[Any, ...], dict[int, int]]] = {"minute": {}, "hour": {}, "route_hour": {}}
    for (kind, key, b), c in bins.items():
        hour = key[0] // 60 * 60
        for level, level_key in (("minute", key), ("hour", (hour, *key[1:])), ("route_hour", (hour, key[1]))):
            per_kind = hists[level].setdefault((kind, level_key), {})
            per_kind[b] = per_kind.get(b, 0) + c
    params: dict[str, str] = {}
    for level, level_groups in (("minute", groups), ("hour", hours), ("route_hour", routes)):
        level_hists = hists[level]
        out = []
        for key, acc in level_groups.items():
            row = [*key, *acc]
            row[len(key) + _COST_POS] = str(acc[_COST_POS])  # exact, as text
            for kind in ("lat", "ttft"):
                hist = level_hists.get((kind, key))
                if hist:
                    buckets = sorted(hist)
                    row.append("{" + ",".join(map(str, buckets)) + "}")
                    row.append("{" + ",".join([str(hist[b]) for b in buckets]) + "}")
                else:
                    row.append("{}")
                    row.append("{}")
            out.append(row)
        params[level] = _dumps(out)
    return params


def _add(into: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], acc: list[Any]) -> None:
    total = into.get(key)
    if total is None:
        into[key] = list(acc)
    else:
        for i, value in enumerate(acc):
            total[i] += value
