"""An exporter that keeps observations in memory: for tests, examples and benchmarks.

:class:`InMemoryObservationExporter` is a complete :class:`~exporters.base.ObservationExporter`
(thread-safe, honours shutdown), so code under test runs the real processor end to end
without a database.
"""

from __future__ import annotations

import threading
from typing import Sequence

from exporters.base import ExportResult
from processor.observation import RouteObservation


class InMemoryObservationExporter:
    """Accepts every batch into a list until shut down; refuses (``FAILED``) afterwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observations: list[RouteObservation] = []
        self._batches = 0
        self._shut_down = False

    def export(self, batch: Sequence[RouteObservation]) -> ExportResult:
        with self._lock:
            if self._shut_down:
                return ExportResult.FAILED
            self._observations.extend(batch)
            self._batches += 1
            return ExportResult.ACCEPTED

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        return not self._shut_down

    def shutdown(self, timeout_s: float = 30.0) -> None:
        with self._lock:
            self._shut_down = True

    # --- inspection ------------------------------------------------------------------
    @property
    def observations(self) -> list[RouteObservation]:
        """Everything accepted so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._observations)

    @property
    def batches(self) -> int:
        """How many ``export`` calls were accepted."""
        with self._lock:
            return self._batches

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def clear(self) -> None:
        with self._lock:
            self._observations.clear()
            self._batches = 0

    def stats(self) -> dict[str, int]:
        """Nothing is ever spilled or dropped once accepted."""
        return {"spilled": 0, "dropped": 0}
