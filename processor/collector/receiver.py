"""What both transports do with a request body: decode it, log it, forward it, count it.

:meth:`Receiver.receive` returns only once the accepted spans are in the write-ahead log
(fsynced), so the transport may acknowledge. It raises
:class:`~processor.collector.otlp.MalformedBody` /
:class:`~processor.collector.otlp.UnsupportedMediaType` for bodies the sender must fix,
:class:`~processor.collector.wal.WalFull` when the write path is saturated (retry later)
and :class:`~processor.collector.wal.WalClosed` or ``OSError`` when the collector cannot
take data now (stopping, disk failure): the transports map these to their status codes.
"""

from __future__ import annotations

import threading

from processor.collector.forward import Forwarder
from processor.collector.otlp import MalformedBody, ParsedRequest, UnsupportedMediaType, parse_request
from processor.collector.wal import WalFull, WriteAheadLog

#: Seconds a sender is asked to wait when the log is full or the collector is stopping.
RETRY_AFTER_S = 2


class Receiver:
    """Shared by the HTTP and gRPC servers; thread-safe."""

    def __init__(self, wal: WriteAheadLog, *, forwarder: Forwarder | None = None) -> None:
        self.wal = wal
        self.forwarder = forwarder
        self._lock = threading.Lock()
        self._counts = {"requests": 0, "spans_in": 0, "spans_rejected": 0, "bodies_refused": 0,
                        "throttled": 0, "unavailable": 0}

    def receive(self, body: bytes, content_type: str, *, original: bytes | None = None,
                content_encoding: str | None = None) -> ParsedRequest:
        """Decode ``body`` (uncompressed) and log its spans; see the module docstring.

        ``original`` (the body as received, before decompression) and its
        ``content_encoding`` are what the forwarder sends on, unchanged.
        """
        try:
            parsed = parse_request(body, content_type)
        except (MalformedBody, UnsupportedMediaType):
            self._count(requests=1, bodies_refused=1)
            raise
        if parsed.accepted:
            try:
                self.wal.append(parsed.payload)
            except WalFull:
                self._count(requests=1, throttled=1)
                raise
            except BaseException:
                self._count(requests=1, unavailable=1)
                raise
        self._count(requests=1, spans_in=parsed.accepted, spans_rejected=parsed.rejected)
        if self.forwarder is not None:
            self.forwarder.submit(original if original is not None else body, content_type, content_encoding)
        return parsed

    def refused(self) -> None:
        """Count a request refused before decoding (too large, bad encoding, no credentials)."""
        self._count(requests=1, bodies_refused=1)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                if delta:
                    self._counts[name] += delta
