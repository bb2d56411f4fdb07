"""Pass-through: received bodies sent on, unchanged, to another OTLP/HTTP endpoint.

So ``otel-llm collect`` can sit inline in a pipeline (sender -> collect -> the real
backend). Forwarding never slows down or fails a receive: bodies go to a queue bounded
in bytes and one thread posts them with the content type and encoding they arrived
with (a gRPC request is posted as ``application/x-protobuf``). A body the endpoint
refuses for good (4xx other than 429), or that still fails after a few tries with
backoff, or that does not fit in the queue, is counted and logged, never retried
forever: the route observations do not depend on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import requests

logger = logging.getLogger("otel_llm.collector")

DEFAULT_QUEUE_BYTES = 64 * 1024 * 1024
_ATTEMPTS = 4
_RETRYABLE = frozenset({429, 502, 503, 504})


class Forwarder:
    """Posts bodies to ``url`` (an OTLP/HTTP traces endpoint, e.g. ``http://host:4318/v1/traces``)."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None,
                 max_queue_bytes: int = DEFAULT_QUEUE_BYTES, timeout_s: float = 10.0) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.max_queue_bytes = max_queue_bytes
        self.timeout_s = timeout_s
        self._queue: deque[tuple[bytes, str, str | None]] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        self._session = requests.Session()
        self.forwarded = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="otel-llm-collect-forward", daemon=True)
        self._thread.start()

    def submit(self, body: bytes, content_type: str, content_encoding: str | None = None) -> None:
        """Queue ``body`` for forwarding; never blocks (a full queue drops and counts)."""
        with self._cond:
            if self._closed or self._queued_bytes + len(body) > self.max_queue_bytes:
                self.dropped += 1
                return
            self._queue.append((body, content_type, content_encoding))
            self._queued_bytes += len(body)
            self._cond.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within ``timeout_s``), then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout_s)
        self._session.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                body, content_type, encoding = self._queue.popleft()
                self._queued_bytes -= len(body)
            self._send(body, content_type, encoding)

    def _send(self, body: bytes, content_type: str, encoding: str | None) -> None:
        headers = {**self.headers, "Content-Type": content_type}
        if encoding:
            headers["Content-Encoding"] = encoding
        reason = ""
        for attempt in range(_ATTEMPTS):
            try:
                response = self._session.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    self.forwarded += 1
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code not in _RETRYABLE:
                    break
            if attempt + 1 < _ATTEMPTS and not self._closed:
                time.sleep(0.5 * 2 ** attempt)
        self.failed += 1
        logger.warning("otel-llm collect: forwarding a request to %s failed (%s)", self.url, reason)
