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
import math

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from operator import itemgetter
from typing import Any, Sequence

from exporters.postgres.histogram import LOG_RATIO, MIN_MS, bucket

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
_N_SUMS = len(_SUM_NAMES)
#: JSON with no NaN/Infinity (PostgreSQL's JSON has none): such a batch raises here and
#: goes the careful way, where SQL aggregates the stored rows.
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def rollup_params(rows: Sequence[Sequence[Any]], idx: Sequence[int]) -> dict[str, str]:
    """Parameters of ``write_rollups.sql`` for ``rows`` (COPY rows; ``idx`` locates
    :data:`ROLLUP_COLUMNS` in them): per level (``minute``, ``hour``, ``route_hour``) a
    JSON array of rollup rows, each ``[minute since the epoch, *key, *sums, lat_idx,
    lat_cnt, ttft_idx, ttft_cnt]``. Raises ``TypeError``/``ValueError`` for values the
    rollups cannot key or add up; the writer then takes the careful way."""
    # One C call a row for the values, unpacked into names: cheaper than a subscript each
    # (an observation is a tuple subclass, which subscripts the slow way).
    values = itemgetter(*idx)
    # key -> [10 sums (see _SUM_NAMES), latency bins {bucket: count}, TTFT bins]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    log, min_ms, log_ratio, inf = math.log, MIN_MS, LOG_RATIO, math.inf
    epoch, minute_delta = _EPOCH, _MINUTE
    # The minute of the previous row and its bounds: rows of a batch mostly share minutes,
    # and two comparisons cost less than working the minute out again.
    minute, minute_start, minute_end = 0, _EPOCH, _EPOCH
    for r in rows:
        (started, route, agent, model, provider, op, ok, fallback, duration, ttft,
         tokens_in, tokens_out, tokens_cached, tokens_reasoning, cost) = values(r)
        # Minutes since the epoch (an aware time of any zone; a naive one raises).
        if not minute_start <= started < minute_end:
            minute = (started - epoch) // minute_delta
            minute_start = epoch + minute * minute_delta
            minute_end = minute_start + minute_delta
        key = (minute,
               "" if route is None else route, "" if agent is None else agent,
               "" if model is None else model, "" if provider is None else provider,
               "" if op is None else op)
        acc = groups.get(key)
        if acc is None:
            if any(type(k) is not str for k in key[1:]):
                raise TypeError(f"rollup key values must be text: {key[1:]!r}")
            acc = groups[key] = [0, 0, 0, 0, 0, 0, 0, Decimal(0), 0, 0.0, {}, {}]
        acc[0] += 1
        if fallback:
            acc[2] += 1
        if tokens_in is not None:
            acc[3] += tokens_in
        if tokens_out is not None:
            acc[4] += tokens_out
        if tokens_cached is not None:
            acc[5] += tokens_cached
        if tokens_reasoning is not None:
            acc[6] += tokens_reasoning
        if cost is not None:
            acc[7] += cost
            acc[8] += 1
        if ok:
            acc[1] += 1
            acc[9] += duration
            # histogram.bucket inlined for the usual finite value (same arithmetic)
            b = 1 + int(log(duration / min_ms) / log_ratio) if min_ms <= duration < inf else bucket(duration)
            hist = acc[10]
            hist[b] = hist.get(b, 0) + 1
            if ttft is not None:
                b = 1 + int(log(ttft / min_ms) / log_ratio) if min_ms <= ttft < inf else bucket(ttft)
                hist = acc[11]
                hist[b] = hist.get(b, 0) + 1
    # The hour and route-hour levels add up the minute groups (far fewer than rows).
    hours: dict[tuple[Any, ...], list[Any]] = {}
    routes: dict[tuple[Any, ...], list[Any]] = {}
    for key, acc in groups.items():
        hour = key[0] // 60 * 60
        _add(hours, (hour, *key[1:]), acc)
        _add(routes, (hour, key[1]), acc)
    return {level: _dumps([_json_row(key, acc) for key, acc in level_groups.items()])
            for level, level_groups in (("minute", groups), ("hour", hours), ("route_hour", routes))}


def _json_row(key: tuple[Any, ...], acc: list[Any]) -> list[Any]:
    """One rollup row of ``write_rollups.sql``: key, sums (cost as exact text), histograms."""
    row = [*key, *acc[:_N_SUMS]]
    row[len(key) + _COST_POS] = str(acc[_COST_POS])
    for hist in (acc[_N_SUMS], acc[_N_SUMS + 1]):
        if hist:
            buckets = sorted(hist)
            row.append("{" + ",".join(map(str, buckets)) + "}")
            row.append("{" + ",".join([str(hist[b]) for b in buckets]) + "}")
        else:
            row.append("{}")
            row.append("{}")
    return row


def _add(into: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], acc: list[Any]) -> None:
    total = into.get(key)
    if total is None:
        into[key] = [*acc[:_N_SUMS], dict(acc[_N_SUMS]), dict(acc[_N_SUMS + 1])]
        return
    for i in range(_N_SUMS):
        total[i] += acc[i]
    for i in (_N_SUMS, _N_SUMS + 1):
        merged = total[i]
        for b, c in acc[i].items():
            merged[b] = merged.get(b, 0) + c
