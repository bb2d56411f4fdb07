"""The latency histogram of the rollups, in Python: same buckets as the SQL functions.

Bucket 0 holds values below :data:`MIN_MS`; bucket ``i >= 1`` holds
``[MIN_MS * RATIO**(i-1), MIN_MS * RATIO**i)`` and stands for its geometric midpoint.
With ``RATIO = 1.04`` a percentile read from a histogram is within
``sqrt(1.04) - 1 = 1.98 %`` of the exact (nearest-rank) percentile. The SQL twins are
``hist_bucket`` and ``hist_value`` in migration 0002; tests hold the two together.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

#: Lower edge of bucket 1, in milliseconds.
MIN_MS = 0.01
#: Ratio between consecutive bucket edges.
RATIO = 1.04
#: Largest bucket index (values beyond it, and NaN, land here).
MAX_BUCKET = 32767
#: Worst-case relative error of a value represented by its bucket.
MAX_RELATIVE_ERROR = math.sqrt(RATIO) - 1

#: Natural log of :data:`RATIO` (bucket arithmetic; the SQL twin divides by ln(1.04) too).
LOG_RATIO = math.log(RATIO)


def bucket(value_ms: float) -> int:
    """Bucket index of ``value_ms``."""
    if value_ms < MIN_MS:
        return 0
    if not math.isfinite(value_ms):
        return MAX_BUCKET
    return min(1 + math.floor(math.log(value_ms / MIN_MS) / LOG_RATIO), MAX_BUCKET)


def bucket_value(index: int) -> float:
    """The value bucket ``index`` stands for (its geometric midpoint; 0 for bucket 0)."""
    if index <= 0:
        return 0.0
    return MIN_MS * RATIO ** (index - 0.5)


def percentiles(idx: Sequence[int] | np.ndarray, cnt: Sequence[int] | np.ndarray,
                qs: Iterable[float]) -> list[float | None]:
    """Nearest-rank percentiles ``qs`` (0..1) of a sparse histogram; ``None`` when empty.

    ``idx`` need not be sorted nor unique (merged histograms may repeat a bucket).
    """
    qs = list(qs)
    idx_a = np.asarray(idx, dtype=np.int64)
    cnt_a = np.asarray(cnt, dtype=np.int64)
    if idx_a.size == 0 or int(cnt_a.sum()) == 0:
        return [None] * len(qs)
    buckets, inverse = np.unique(idx_a, return_inverse=True)
    counts = np.bincount(inverse, weights=cnt_a).astype(np.int64)
    cum = np.cumsum(counts)
    total = int(cum[-1])
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q * total))
        pos = int(np.searchsorted(cum, rank, side="left"))
        out.append(bucket_value(int(buckets[min(pos, len(buckets) - 1)])))
    return out


def exact_percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    """Nearest-rank percentile (PostgreSQL's ``percentile_disc``) of ``values``."""
    arr = np.sort(np.asarray(values, dtype=np.float64))
    if arr.size == 0:
        return None
    rank = max(1, math.ceil(q * arr.size))
    return float(arr[rank - 1])
