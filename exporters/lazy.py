"""An exporter built on first use, on the worker thread that first exports.

Building the PostgreSQL exporter may start the embedded server (seconds, the first
time) and connect to a database; neither may happen on the application's thread while
it calls ``otel_llm.configure()``. ``LazyExporter`` defers that to the processor's
background worker. If building fails, the batch is answered ``RETRY`` (the processor
keeps it and backs off) and building is tried again later; the failure is logged.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from exporters.base import ExportResult, ObservationExporter
from otel_llm._safety import report
from processor.observation import RouteObservation

#: Seconds to wait before trying again to build an exporter that failed to build.
REBUILD_INTERVAL_S = 5.0


class LazyExporter:
    """Wraps ``factory() -> ObservationExporter``; see the module docstring."""

    def __init__(self, factory: Callable[[], ObservationExporter], *, name: str = "exporter") -> None:
        self._factory = factory
        self._name = name
        self._lock = threading.Lock()
        self._exporter: ObservationExporter | None = None
        self._next_try = 0.0
        self._closed = False

    @property
    def exporter(self) -> ObservationExporter | None:
        """The built exporter, or None before the first successful build."""
        return self._exporter

    def _get(self) -> ObservationExporter | None:
        if self._exporter is not None:
            return self._exporter
        with self._lock:
            if self._exporter is None and not self._closed and time.monotonic() >= self._next_try:
                try:
                    self._exporter = self._factory()
                except Exception as exc:  # noqa: BLE001 - reported; retried later
                    self._next_try = time.monotonic() + REBUILD_INTERVAL_S
                    report(f"starting the {self._name}", exc)
            return self._exporter

    def export(self, batch: Sequence[RouteObservation]) -> ExportResult:
        if self._closed:
            return ExportResult.FAILED
        exporter = self._get()
        if exporter is None:
            return ExportResult.RETRY
        return exporter.export(batch)

    def prepare(self, batch: Sequence[RouteObservation]) -> Sequence[RouteObservation]:
        """The built exporter's ``prepare`` (see :mod:`exporters.base`), when it has one."""
        prepare = getattr(self._exporter, "prepare", None)
        return prepare(batch) if callable(prepare) else batch

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        exporter = self._exporter
        return True if exporter is None else exporter.force_flush(timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self._closed = True
        exporter = self._exporter
        if exporter is not None:
            exporter.shutdown(timeout_s)

    def stats(self) -> dict[str, Any]:
        """The built exporter's counters (empty before it is built)."""
        stats = getattr(self._exporter, "stats", None)
        return dict(stats()) if callable(stats) else {}
