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
  a spike is a ratio. The scaled MAD is floored at ``ln 1.04``, the width of one
  rollup histogram bucket: a baseline steadier than that resolution is not evidence
  that a 5 % change is unusual. A spike is ``z >= z_threshold`` (default 3.5).
- **Success-rate drops**: a one-sided two-proportion z-test of the window's success
  rate against the baseline's pooled rate, ``z = (p1 - p0) / sqrt(p (1 - p) (1/n1 +
  1/n0))`` with ``p`` the rate of both together; a drop is ``z <= -z_threshold`` and at
  least ``min_drop`` (default 2 percentage points) below the baseline, so that a
  significant but negligible dip in heavy traffic is not reported.
- **Confidence degradation** is not computed here yet (see the confidence report).

Minimum samples: the window needs ``min_events`` calls (successful ones for latency),
each baseline slot ``min_slot_events`` to count as a value, and the baseline
``min_baseline_points`` such values; otherwise that key is not judged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence

import numpy as np
import psycopg

from exporters.postgres.histogram import RATIO, bucket, bucket_value
from exporters.postgres.route_stats import RAW_WINDOW_LIMIT
from exporters.postgres.schema import load_sql, resolve_schema, set_local_search_path

#: Scale that makes the MAD estimate a normal standard deviation.
MAD_SCALE = 1.4826
#: Smallest spread assumed for log-latency: one rollup histogram bucket.
MIN_LOG_SPREAD = math.log(RATIO)
DEFAULT_Z = 3.5

Kind = Literal["latency_spike", "success_rate_drop"]
Dimension = Literal["agent", "route"]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding, with the figures that explain it."""

    kind: Kind
    dimension: Dimension
    #: The agent or route (``None``: calls without one).
    key: str | None
    #: ``latency_p50_ms``, ``latency_p95_ms`` or ``success_rate``.
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

    @property
    def explanation(self) -> str:
        """One line saying what was found and why."""
        what = "p50 latency" if self.metric == "latency_p50_ms" else (
            "p95 latency" if self.metric == "latency_p95_ms" else "success rate")
        who = f"{self.dimension} {self.key if self.key is not None else '(none)'}"
        if self.kind == "latency_spike":
            return (f"{who}: {what} {self.value:.0f} ms vs baseline median {self.baseline_median:.0f} ms "
                    f"(x{self.value / self.baseline_median:.2f}; MAD of log-latency {self.mad:.3f}, "
                    f"z {self.z:.1f}; {self.n} calls, {self.baseline_points} baseline slots)")
        return (f"{who}: {what} {100 * self.value:.1f} % vs baseline {100 * (self.baseline_rate or 0):.1f} % "
                f"(slot median {100 * self.baseline_median:.1f} %, MAD {100 * self.mad:.1f} pp; z {self.z:.1f}; "
                f"{self.n} calls vs {self.baseline_n})")

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
                   min_drop: float = 0.02) -> list[Anomaly]:
    """Anomalies of the ``window`` ending at ``now`` against the ``baseline`` before it,
    strongest first (see the module docstring for the tests and their thresholds)."""
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
              "base_end": base_end, "slot_seconds": slot.total_seconds()}
    with conn.transaction():
        set_local_search_path(conn, resolve_schema(schema))
        rows = conn.execute(load_sql("anomalies"), params).fetchall()
    tests: dict[tuple[str, str | None], _Slot] = {}
    bases: dict[tuple[str, str | None], list[_Slot]] = {}
    for part, dim, key, _slot, n, n_ok, p50, p95 in rows:
        value = _Slot(int(n), int(n_ok), None if p50 is None else float(p50), None if p95 is None else float(p95))
        if part == "test":
            tests[(dim, key)] = value
        else:
            bases.setdefault((dim, key), []).append(value)
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
    found.sort(key=lambda a: (-abs(a.z), a.dimension, a.key or "", a.metric))
    return found


def robust_z(value: float, baseline: Sequence[float] | np.ndarray, *, min_spread: float = 0.0) -> tuple[float, float, float]:
    """``(z, median, mad)`` of ``value`` against ``baseline``: ``(value - median) /
    max(1.4826 * MAD, min_spread)``. Infinite when both spreads are 0 and value differs."""
    values = np.asarray(baseline, dtype=np.float64)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    spread = max(MAD_SCALE * mad, min_spread)
    if spread == 0.0:
        return (0.0 if value == median else math.copysign(math.inf, value - median)), median, mad
    return (value - median) / spread, median, mad


def two_proportion_z(ok1: int, n1: int, ok0: int, n0: int) -> float:
    """z of the difference ``ok1/n1 - ok0/n0`` with the pooled standard error (0 when
    both samples are all successes or all failures)."""
    pooled = (ok1 + ok0) / (n1 + n0)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0))
    return 0.0 if se == 0.0 else (ok1 / n1 - ok0 / n0) / se


def latency_spike(test: _Slot, base: Sequence[_Slot], metric: str, *, z_threshold: float, min_events: int,
                  min_slot_events: int, min_baseline_points: int) -> dict[str, Any] | None:
    """The fields of a latency spike of ``metric`` (``p50``/``p95``), or ``None``."""
    value = getattr(test, metric)
    points = [getattr(s, metric) for s in base if s.n_ok >= min_slot_events and getattr(s, metric)]
    if value is None or value <= 0 or test.n_ok < min_events or len(points) < min_baseline_points:
        return None
    # The baseline values are histogram buckets' representative values; the window's
    # value is put on the same grid, so that exact and bucketed figures never differ
    # by the bucketing alone.
    z, median, mad = robust_z(math.log(bucket_value(bucket(value))), np.log(points), min_spread=MIN_LOG_SPREAD)
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
    z = two_proportion_z(test.n_ok, test.n, ok0, n0)
    if z > -z_threshold or baseline_rate - rate < min_drop:
        return None
    rates = np.array([s.n_ok / s.n for s in counted])
    median = float(np.median(rates))
    return dict(value=rate, baseline_median=median, mad=float(np.median(np.abs(rates - median))), z=z,
                n=test.n, baseline_n=n0, baseline_points=len(counted), baseline_rate=baseline_rate)
