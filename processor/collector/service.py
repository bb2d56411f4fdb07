"""The collector put together: log, pipeline, receivers, forwarder — started and stopped in order.

Start: the write-ahead log is opened (what a previous run logged but did not finish is
read again first), the pipeline's worker starts, then the receivers listen. Stop
(SIGTERM): the receivers stop accepting and finish the calls under way, the log refuses
appends, the pipeline drains everything acknowledged into the exporter and persists the
checkpoint, the exporter is flushed and shut down, the forwarder sends what it holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from exporters.base import ObservationExporter
from processor.collector.forward import Forwarder
from processor.collector.grpc_server import OtlpGrpcServer
from processor.collector.http_server import DEFAULT_MAX_BODY_BYTES, OtlpHttpServer
from processor.collector.pipeline import Pipeline
from processor.collector.receiver import Receiver
from processor.collector.wal import DEFAULT_MAX_BYTES, WriteAheadLog
from processor.derive import Pricer

logger = logging.getLogger("otel_llm.collector")


@dataclass(slots=True)
class CollectorOptions:
    """Everything ``otel-llm collect`` can be told (ports ``None`` = transport off)."""

    wal_dir: Path
    host: str = "127.0.0.1"
    grpc_port: int | None = 4317
    http_port: int | None = 4318
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_wal_bytes: int = DEFAULT_MAX_BYTES
    token: str | None = None
    forward_url: str | None = None
    capture_content: bool = False
    trace_hold_s: float = 5.0
    max_held_spans: int = 100_000
    workers: int = 1


class Collector:
    """See the module docstring. The factories build the exporter and the pricer in the
    process that uses them (each worker process builds its own: they must be picklable
    when ``options.workers`` > 1)."""

    def __init__(self, options: CollectorOptions, exporter_factory: Callable[[], ObservationExporter], *,
                 pricer_factory: Callable[[], Pricer | None] | None = None) -> None:
        if options.max_wal_bytes < 2 * options.max_body_bytes:
            raise ValueError("the write-ahead log bound must be at least twice the body limit")
        self.options = options
        self.wal = WriteAheadLog(options.wal_dir, max_bytes=options.max_wal_bytes)
        self.forwarder = Forwarder(options.forward_url) if options.forward_url else None
        self.receiver = Receiver(self.wal, forwarder=self.forwarder)
        self.pipeline = Pipeline(self.wal, exporter_factory, workers=options.workers, hold_s=options.trace_hold_s,
                                 max_held_spans=options.max_held_spans, capture_content=options.capture_content,
                                 pricer_factory=pricer_factory)
        self.http: OtlpHttpServer | None = None
        self.grpc: OtlpGrpcServer | None = None

    @property
    def failure(self) -> str | None:
        """Why the collector cannot go on (a worker process died), else None."""
        return self.pipeline.failure

    def start(self) -> None:
        """Start the pipeline, then listen. Raises ``OSError`` when a port cannot be bound."""
        self.pipeline.start()
        o = self.options
        try:
            if o.http_port is not None:
                self.http = OtlpHttpServer(self.receiver, o.host, o.http_port, max_body_bytes=o.max_body_bytes,
                                           token=o.token)
                self.http.start()
            if o.grpc_port is not None:
                self.grpc = OtlpGrpcServer(self.receiver, o.host, o.grpc_port, max_body_bytes=o.max_body_bytes,
                                           token=o.token)
                self.grpc.start()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop as the module docstring says; True when everything acknowledged was written."""
        if self.http is not None:
            self.http.stop()
        if self.grpc is not None:
            self.grpc.stop()
        self.wal.close()
        drained = self.pipeline.stop(timeout_s)
        self.wal.release_lock()
        if self.forwarder is not None:
            self.forwarder.close()
        return drained

    def stats(self) -> dict[str, Any]:
        """Receiver, pipeline and exporter counters in one mapping."""
        out: dict[str, Any] = {**self.receiver.stats(), **self.pipeline.stats()}
        if self.forwarder is not None:
            out.update(forwarded=self.forwarder.forwarded, forward_failed=self.forwarder.failed,
                       forward_dropped=self.forwarder.dropped)
        return out

    def summary(self) -> str:
        """One line: spans in, observations out, rejected, spilled (and what else is not zero)."""
        s = self.stats()
        line = (f"spans in {s['spans_in']}, observations out {s['observations']}, "
                f"rejected {s['spans_rejected']} spans / {s['bodies_refused']} requests, "
                f"spilled {s.get('exporter_spilled', 0)}")
        extras = [("throttled", s["throttled"]), ("held", s["spans_held"]), ("log bytes", s["log_bytes"]),
                  ("malformed", s["malformed"]), ("dropped", s.get("exporter_dropped", 0)),
                  ("forward failed", s.get("forward_failed", 0))]
        rest = ", ".join(f"{name} {value}" for name, value in extras if value)
        return f"{line}{', ' + rest if rest else ''}"

    def where(self) -> list[str]:
        """Startup lines: where it listens and where it writes."""
        lines = []
        if self.grpc is not None:
            host, port = self.grpc.address
            lines.append(f"OTLP/gRPC on {host}:{port}")
        if self.http is not None:
            host, port = self.http.address
            lines.append(f"OTLP/HTTP on http://{_url_host(host)}:{port}/v1/traces")
        lines.append(f"write-ahead log in {self.wal.directory} (bound {self.wal.max_bytes} bytes)")
        if self.forwarder is not None:
            lines.append(f"forwarding received requests to {self.forwarder.url}")
        if self.options.token:
            lines.append("bearer token required")
        return lines


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

