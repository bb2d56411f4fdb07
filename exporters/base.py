"""The exporter protocol: where a batch of route observations goes.

Modelled on OpenTelemetry's ``SpanExporter``: ``export`` takes a batch and says how it
went; ``force_flush`` and ``shutdown`` are explicit. An exporter that can be durable
(PostgreSQL with its spool) takes ownership of a batch once ``export`` returns
``ACCEPTED``: from then on losing it is the exporter's fault, and it counts it.
"""

from __future__ import annotations

import enum
from typing import Protocol, Sequence, runtime_checkable

from processor.observation import RouteObservation


class ExportResult(enum.Enum):
    """Outcome of one ``export`` call."""

    #: Written (or durably queued, e.g. spilled to the local spool) — do not resend.
    ACCEPTED = "accepted"
    #: Not taken; the caller may retry the same batch later.
    RETRY = "retry"
    #: Refused for good (e.g. after shutdown); the caller counts it as dropped.
    FAILED = "failed"


@runtime_checkable
class ObservationExporter(Protocol):
    """Receives batches of observations from the processor's background worker.

    ``export`` is called from one worker thread at a time and may block for I/O; it
    must not raise (a raising exporter is treated as ``RETRY`` and logged).

    An exporter may also offer ``prepare(batch) -> batch``, which the processor calls on
    its deriving thread while the previous batch is being exported: CPU work that does
    not need the destination (converting, sorting, aggregating) moves off the export's
    critical path. It returns what ``export`` is then given — the same observations,
    possibly carrying that work — touches no connection and must not raise (a raising
    ``prepare`` is logged and the batch exported as it is).
    """

    def export(self, batch: Sequence[RouteObservation]) -> ExportResult: ...

    def force_flush(self, timeout_s: float = 30.0) -> bool: ...

    def shutdown(self, timeout_s: float = 30.0) -> None: ...
