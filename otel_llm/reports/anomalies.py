"""Anomalies: what changed unusually in the window under test, per agent and per route.

The window under test (default the last hour) is compared with a trailing baseline
(default the 7 days before it) that never includes it. The baseline is cut into slots
as long as the window (whole hours, at least one), read from the hourly rollup, so a
1 h window is judged against 168 hourly values, a 24 h window against 7 daily ones.
The window itself is read from raw rows when short (up to 6 h, exact), else from the
rollup (whole hours). One query answers every agent and route at once.

- **Latency spikes** (p50 and p95 of successful calls): on log-latency, a robust
  z-score ``z = (ln x - median) / (1.4826 * MAD)`` of the window's value ``x`` against
  the baseline slots' values (median and median absolute deviation; 1.4826 makes MAD
  estimate the standard deviation of normal data). Log, because latency is skewed and
  a spike is a ratio. Baseline values are percentiles of the rollup histograms,
  interpolated within their bucket. The spread is the larger of the scaled MAD and
  ``IQR / 1.349`` (see :func:`robust_z`), floored at ``ln 1.04``, the width of one
  bucket: a baseline steadier than that resolution is not evidence that a 5 % change
  is unusual. A spike is ``z >= z_threshold`` (default 3.5).
- **Success-rate drops**: the window's success rate against the baseline's pooled
  rate. The reported ``z`` is the two-proportion z, ``(p1 - p0) / sqrt(p (1 - p)
  (1/n1 + 1/n0))`` with ``p`` the rate of both together. The decision uses the exact
  binomial tail of the window's failures at the baseline failure rate (``p_value``),
  compared with the normal tail of ``z_threshold``: with few expected failures (2 %
  of 60 calls is 1.2) the normal approximation calls ordinary bad luck significant.
  A drop must also be at least ``min_drop`` (default 2 percentage points), so that a
  significant but negligible dip in heavy traffic is not reported. Traffic whose
  failure rate varies from hour to hour more than chance will be flagged more often.
- **Confidence degradation**, per agent and model, from the confidence report
  (:mod:`otel_llm.reports.confidence`, fed by recorded feedback): its score over the
  last 7 days against the 7 days before, reported when that report calls the trend
  ``degrading`` (a fall of at least 0.05) and each week holds ``min_feedback``
  pieces of feedback. Its ``z`` is the fall in units of the standard error of a
  proportion, ``sqrt(s (1 - s) (1/n1 + 1/n0))`` at the pooled score ``s``: the score
  is a weighted mean of shares in 0..1, so this bounds its noise from above. Those
  periods are the confidence report's own, not ``window`` and ``baseline``.

Minimum samples: the window needs ``min_events`` calls (successful ones for latency;
for a percentile also enough calls beyond it, 100 for p95, see :func:`tail_minimum`),
each baseline slot as many (``min_slot_events`` for slots) to count as a value, and the baseline
``min_baseline_points`` such values; otherwise that key is not judged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence

import numpy as np
import psycopg

from exporters.postgres.histogram import MIN_MS, RATIO
from exporters.postgres.route_stats import RAW_WINDOW_LIMIT
from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path

#: Scale that makes the MAD estimate a normal standard deviation.
MAD_SCALE = 1.4826
#: Interquartile range of a standard normal distribution.
IQR_SCALE = 1.349
#: Smallest spread assumed for log-latency: one rollup histogram bucket.
MIN_LOG_SPREAD = math.log(RATIO)
DEFAULT_Z = 3.5
#: Calls a latency percentile needs beyond it before it is judged (see :func:`tail_minimum`).
TAIL_EVENTS = 5

_QUANTILES = {"p50": 0.5, "p95": 0.95}

Kind = Literal["latency_spike", "success_rate_drop", "confidence_drop"]
Dimension = Literal["agent", "route"]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding, with the figures that explain it."""

    kind: Kind
    dimension: Dimension
    #: The agent or route (``None``: calls without one).
    key: str | None
    #: ``latency_p50_ms``, ``latency_p95_ms``, ``success_rate`` or ``confidence``.
    metric: str
    start: datetime
    end: datetime
    #: The window's value of ``metric``.
    value: float
    #: Median of the baseline slots' values of ``metric``.
    baseline_median: float
    #: Median absolute deviation of the baseline values (of log-latency for latency).
    mad: float
    z: float
    #: Events in the window (successful ones for latency).
    n: int
    #: Events in the baseline (successful ones for latency).
    baseline_n: int
    #: Baseline slots that counted as values.
    baseline_points: int
    #: For success-rate drops: the pooled baseline rate the test used.
    baseline_rate: float | None = None
    #: For success-rate drops: chance of at least this many failures at the baseline rate.
    p_value: float | None = None
    #: For confidence drops: the model the agent's confidence is about.
    model: str | None = None

    @property
    def explanation(self) -> str:
        """One line saying what was found and why."""
        what = "p50 latency" if self.metric == "latency_p50_ms" else (
            "p95 latency" if self.metric == "latency_p95_ms" else "success rate")
        who = f"{self.dimension} {self.key if self.key is not None else '(none)'}"
        if self.kind == "confidence_drop":
            return (f"{who} on {self.model or '(unknown model)'}: confidence score {self.value:.2f} in the last 7 days "
                    f"vs {self.baseline_median:.2f} the 7 days before (z {self.z:.1f}; "
                    f"{self.n} vs {self.baseline_n} pieces of feedback)")
        if self.kind == "latency_spike":
            return (f"{who}: {what} {self.value:.0f} ms vs baseline median {self.baseline_median:.0f} ms "
                    f"(x{self.value / self.baseline_median:.2f}; MAD of log-latency {self.mad:.3f}, "
                    f"z {self.z:.1f}; {self.n} calls, {self.baseline_points} baseline slots)")
        return (f"{who}: {what} {100 * self.value:.1f} % vs baseline {100 * (self.baseline_rate or 0):.1f} % "
                f"(slot median {100 * self.baseline_median:.1f} %, MAD {100 * self.mad:.1f} pp; z {self.z:.1f}, "
                f"p {self.p_value:.1e}; {self.n} calls vs {self.baseline_n})")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["explanation"] = self.explanation
        return out


@dataclass(frozen=True, slots=True)
class _Slot:
    n: int
    n_ok: int
    p50: float | None
    p95: float | None


def find_anomalies(conn: psycopg.Connection, *, window: timedelta = _HOUR, baseline: timedelta = timedelta(days=7),
                   now: datetime | None = None, schema: str | None = None, z_threshold: float = DEFAULT_Z,
                   min_events: int = 20, min_slot_events: int = 10, min_baseline_points: int = 6,
                   min_drop: float = 0.02, min_feedback: int = 10) -> list[Anomaly]:
    """Anomalies of the ``window`` ending at ``now`` against the ``baseline`` before it,
    and degrading confidence, strongest first (see the module docstring for the tests
    and their thresholds)."""
    if window <= timedelta(0) or baseline <= window:
        raise ValueError("window must be positive and the baseline longer than the window")
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    test_start = end - window
    from_raw = window <= RAW_WINDOW_LIMIT
    if not from_raw:
        test_start = test_start.replace(minute=0, second=0, microsecond=0)
    slot = max(1, math.ceil(window / _HOUR)) * _HOUR
    base_end = test_start.replace(minute=0, second=0, microsecond=0)
    base_start = base_end - baseline
    params = {"test_start": test_start, "end": end, "test_from_raw": from_raw, "base_start": base_start,
              "base_end": base_end}
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        # Binary results: the histogram arrays are long, and parsing them as text is slow.
        rows = conn.cursor(binary=True).execute(load_sql("anomalies"), params).fetchall()
    tests, bases = _slots(rows, base_end, slot, whole=baseline // slot)
    found: list[Anomaly] = []
    for (dim, key), test in tests.items():
        base = bases.get((dim, key), [])
        common = dict(dimension=dim, key=key, start=test_start, end=end)
        for metric in ("p50", "p95"):
            hit = latency_spike(test, base, metric, z_threshold=z_threshold, min_events=min_events,
                                min_slot_events=min_slot_events, min_baseline_points=min_baseline_points)
            if hit is not None:
                found.append(Anomaly(kind="latency_spike", metric=f"latency_{metric}_ms", **hit, **common))
        hit = success_drop(test, base, z_threshold=z_threshold, min_events=min_events,
                           min_slot_events=min_slot_events, min_baseline_points=min_baseline_points,
                           min_drop=min_drop)
        if hit is not None:
            found.append(Anomaly(kind="success_rate_drop", metric="success_rate", **hit, **common))
    found.extend(confidence_drops(conn, now=end, schema=schema, min_feedback=min_feedback))
    found.sort(key=lambda a: (-abs(a.z), a.dimension, a.key or "", a.metric))
    return found


def _slots(rows: Sequence[tuple[Any, ...]], base_end: datetime, slot: timedelta, whole: int
           ) -> tuple[dict[tuple[str, str | None], _Slot], dict[tuple[str, str | None], list[_Slot]]]:
    """The window's figures and the baseline's slots per (dimension, key), from the rows
    of ``anomalies.sql``: hourly rollup rows are added up per agent and per route into
    slots of length ``slot`` counted back from ``base_end`` (or into the window under
    test, for rows from ``base_end`` on), their histograms merged by concatenation.
    Only the ``whole`` slots that fit in the baseline count (a partial one is dropped)."""
    tests: dict[tuple[str, str | None], _Slot] = {}
    sums: dict[tuple[str, str | None, int], list[Any]] = {}
    for part, dim, ts, agent, route, n, n_ok, p50, p95, idx, cnt in rows:
        if part == "test":
            key = agent if dim == "agent" else route
            tests[(dim, key)] = _Slot(int(n), int(n_ok), _float(p50), _float(p95))
            continue
        number = -1 if ts >= base_end else math.ceil((base_end - ts) / slot) - 1
        if number >= whole:
            continue
        for dim, key in (("agent", agent or None), ("route", route or None)):
            acc = sums.get((dim, key, number))
            if acc is None:
                acc = sums[(dim, key, number)] = [0, 0, [], []]
            acc[0] += n
            acc[1] += n_ok
            acc[2].extend(idx)
            acc[3].extend(cnt)
    bases: dict[tuple[str, str | None], list[_Slot]] = {}
    for (dim, key, number), (n, n_ok, idx, cnt) in sums.items():
        p50, p95 = interpolated_percentiles(idx, cnt, (0.5, 0.95))
        value = _Slot(int(n), int(n_ok), p50, p95)
        if number < 0:
            tests[(dim, key)] = value
        else:
            bases.setdefault((dim, key), []).append(value)
    return tests, bases


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def confidence_drops(conn: psycopg.Connection, *, now: datetime, schema: str | None = None,
                     min_feedback: int = 10) -> list[Anomaly]:
    """Agents and models whose confidence report says ``degrading``, with at least
    ``min_feedback`` pieces of feedback in each of the two weeks compared."""
    from otel_llm.reports.confidence import TREND_PERIOD, confidence_by_agent_model

    out = []
    for c in confidence_by_agent_model(conn, now=now, schema=schema, window=2 * TREND_PERIOD):
        if c.trend != "degrading" or min(c.recent_count, c.previous_count) < min_feedback:
            continue
        recent, previous = float(c.recent_score or 0.0), float(c.previous_score or 0.0)
        out.append(Anomaly(
            kind="confidence_drop", dimension="agent", key=c.agent, metric="confidence", model=c.model,
            start=now - TREND_PERIOD, end=now, value=recent, baseline_median=previous, mad=0.0,
            z=score_drop_z(recent, c.recent_count, previous, c.previous_count),
            n=c.recent_count, baseline_n=c.previous_count, baseline_points=1))
    return out


def score_drop_z(recent: float, n1: int, previous: float, n0: int) -> float:
    """The change of a 0..1 score in units of a proportion's standard error at the
    pooled score (0 when that error is 0)."""
    pooled = (recent * n1 + previous * n0) / (n1 + n0)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0))
    return 0.0 if se == 0.0 else (recent - previous) / se


def robust_z(value: float, baseline: Sequence[float] | np.ndarray, *,
             min_spread: float = 0.0) -> tuple[float, float, float]:
    """``(z, median, mad)`` of ``value`` against ``baseline``: ``(value - median) / spread``.

    ``spread`` is the larger of ``1.4826 * MAD`` and ``IQR / 1.349`` (both estimate a
    normal standard deviation, both ignore outliers) and ``min_spread``. Percentiles
    read from sparse histogram tails (a p95 of 60 calls) cluster on a few values inside
    their buckets, which shrinks the MAD but not the interquartile range. ``z`` is
    infinite when the spread is 0 and ``value`` differs from the median.
    """
    values = np.asarray(baseline, dtype=np.float64)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    q1, q3 = np.percentile(values, [25.0, 75.0])
    spread = max(MAD_SCALE * mad, float(q3 - q1) / IQR_SCALE, min_spread)
    if spread == 0.0:
        return (0.0 if value == median else math.copysign(math.inf, value - median)), median, mad
    return (value - median) / spread, median, mad


def two_proportion_z(ok1: int, n1: int, ok0: int, n0: int) -> float:
    """z of the difference ``ok1/n1 - ok0/n0`` with the pooled standard error (0 when
    both samples are all successes or all failures)."""
    return score_drop_z(ok1 / n1, n1, ok0 / n0, n0)


def interpolated_percentiles(idx: Sequence[int] | np.ndarray, cnt: Sequence[int] | np.ndarray,
                             qs: Sequence[float]) -> list[float | None]:
    """Percentiles ``qs`` of a sparse histogram (bucket indexes in any order, possibly
    repeated), each interpolated log-linearly inside the bucket that holds rank
    ``q * total``; ``None`` for an empty histogram.

    Unlike a bucket's representative value, this moves smoothly with the data, so the
    spread of hourly values is not rounded to whole buckets (which would understate
    their MAD and overstate z-scores).
    """
    if len(idx) == 0:
        return [None] * len(qs)
    buckets, inverse = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
    counts = np.bincount(inverse, weights=np.asarray(cnt, dtype=np.float64), minlength=len(buckets))
    cum = np.cumsum(counts)
    total = float(cum[-1])
    if total <= 0:
        return [None] * len(qs)
    out: list[float | None] = []
    for q in qs:
        rank = q * total
        pos = min(int(np.searchsorted(cum, rank, side="left")), len(cum) - 1)
        before = float(cum[pos - 1]) if pos else 0.0
        fraction = min(max((rank - before) / counts[pos], 0.0), 1.0) if counts[pos] else 1.0
        index = int(buckets[pos])
        out.append(MIN_MS * fraction if index <= 0 else MIN_MS * RATIO ** (index - 1 + fraction))
    return out


def binomial_upper_tail(failures: int, n: int, rate: float) -> float:
    """``P(X >= failures)`` for ``X ~ Binomial(n, rate)``, summed exactly in log space.

    Terms beyond the mean decrease, so the sum stops once they no longer matter.
    """
    if failures <= 0:
        return 1.0
    if rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    if failures <= n * rate:
        return 1.0 - binomial_upper_tail(n - failures + 1, n, 1.0 - rate)
    log_rate, log_rest = math.log(rate), math.log1p(-rate)
    base = math.lgamma(n + 1)
    total = 0.0
    for k in range(failures, n + 1):
        term = math.exp(base - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_rate + (n - k) * log_rest)
        total += term
        if term < total * 1e-15:
            break
    return min(total, 1.0)


def tail_minimum(q: float) -> int:
    """Fewest calls whose percentile ``q`` rests on at least :data:`TAIL_EVENTS` calls
    beyond it: 10 for the median, 100 for p95. With fewer, a p95 is its two or three
    slowest calls, too skewed a figure for a z-score."""
    return math.ceil(TAIL_EVENTS / (1.0 - q) - 1e-9)


def latency_spike(test: _Slot, base: Sequence[_Slot], metric: str, *, z_threshold: float, min_events: int,
                  min_slot_events: int, min_baseline_points: int) -> dict[str, Any] | None:
    """The fields of a latency spike of ``metric`` (``p50``/``p95``), or ``None``."""
    tail = tail_minimum(_QUANTILES[metric])
    value = getattr(test, metric)
    points = [getattr(s, metric) for s in base if s.n_ok >= max(min_slot_events, tail) and getattr(s, metric)]
    if value is None or value <= 0 or test.n_ok < max(min_events, tail) or len(points) < min_baseline_points:
        return None
    z, median, mad = robust_z(math.log(value), np.log(points), min_spread=MIN_LOG_SPREAD)
    if z < z_threshold:
        return None
    return dict(value=value, baseline_median=math.exp(median), mad=mad, z=z, n=test.n_ok,
                baseline_n=sum(s.n_ok for s in base), baseline_points=len(points))


def success_drop(test: _Slot, base: Sequence[_Slot], *, z_threshold: float, min_events: int,
                 min_slot_events: int, min_baseline_points: int, min_drop: float) -> dict[str, Any] | None:
    """The fields of a success-rate drop, or ``None``."""
    counted = [s for s in base if s.n >= min_slot_events]
    if test.n < min_events or len(counted) < min_baseline_points:
        return None
    n0, ok0 = sum(s.n for s in base), sum(s.n_ok for s in base)
    rate, baseline_rate = test.n_ok / test.n, ok0 / n0
    if baseline_rate - rate < min_drop:
        return None
    z = two_proportion_z(test.n_ok, test.n, ok0, n0)
    # Half a failure added to the baseline, so that a spotless baseline still allows some.
    failure_rate = (n0 - ok0 + 0.5) / (n0 + 1)
    p_value = binomial_upper_tail(test.n - test.n_ok, test.n, failure_rate)
    if p_value > normal_tail(z_threshold):
        return None
    rates = np.array([s.n_ok / s.n for s in counted])
    median = float(np.median(rates))
    return dict(value=rate, baseline_median=median, mad=float(np.median(np.abs(rates - median))), z=z,
                n=test.n, baseline_n=n0, baseline_points=len(counted), baseline_rate=baseline_rate,
                p_value=p_value)


def normal_tail(z: float) -> float:
    """``P(Z >= z)`` for a standard normal ``Z``."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))
