"""OTLP/HTTP receiver: ``POST /v1/traces``, protobuf or JSON, optionally gzip-compressed.

Answers, as the OTLP specification asks:

- 200 with an ``ExportTraceServiceResponse`` (in the request's encoding), carrying a
  partial success (rejected span count and reason) when some spans were refused;
- 400 with a ``google.rpc.Status`` naming the problem for a body that does not decode;
- 401 without the bearer token (when one is configured), 404 for other paths,
  405 for other methods, 411 without ``Content-Length``;
- 413 for a body (or its decompressed form) over ``max_body_bytes``;
- 415 for an unknown content type or content encoding;
- 429 with ``Retry-After`` while the write-ahead log is full, 503 with ``Retry-After``
  while stopping or when the disk fails or all connection slots are taken.

The server is the standard library's threading HTTP/1.1 server with keep-alive; the
number of connections served at once is bounded, and each socket has a timeout, so
memory stays bounded whatever clients do.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.rpc import status_pb2

from processor.collector.otlp import (
    JSON_TYPES, MalformedBody, UnsupportedMediaType, media_type, response, response_json,
)
from processor.collector.receiver import RETRY_AFTER_S, Receiver
from processor.collector.wal import WalClosed, WalFull

logger = logging.getLogger("otel_llm.collector")

TRACES_PATH = "/v1/traces"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64
SOCKET_TIMEOUT_S = 30.0
_GRPC_INVALID_ARGUMENT = 3
_GRPC_RESOURCE_EXHAUSTED = 8
_GRPC_UNAVAILABLE = 14
_GRPC_UNAUTHENTICATED = 16


class TooLarge(ValueError):
    """A body over the limit, compressed or not."""


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"body is not valid gzip: {exc}") from None
    if len(out) > limit:
        raise TooLarge(f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise MalformedBody("gzip body is truncated")
    return out


class OtlpHttpServer:
    """The OTLP/HTTP receiver; :meth:`start` serves on a background thread."""

    def __init__(self, receiver: Receiver, host: str = "127.0.0.1", port: int = 4318, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, token: str | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        handler = type("Handler", (_Handler,), {
            "receiver": receiver, "max_body_bytes": max_body_bytes,
            "expected_auth": f"Bearer {token}".encode() if token else None,
        })
        self._server = _Server((host, port), handler, max_connections)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="otel-llm-collect-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; requests being served finish first."""
        self._server.shutdown()
        self._server.server_close()
        self._server.end_reading()
        self._server.wait_idle(SOCKET_TIMEOUT_S)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self._slots = threading.BoundedSemaphore(max_connections)
        self._active: set[Any] = set()
        self._idle = threading.Condition()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._idle:
            self._active.add(request)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
            with self._idle:
                self._active.discard(request)
                self._idle.notify_all()

    def end_reading(self) -> None:
        """No further requests on open connections: a connection waiting for its next
        request ends at once; one whose body is not fully read is not acknowledged; a
        request being answered still gets its answer."""
        with self._idle:
            for sock in self._active:
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass

    def wait_idle(self, timeout_s: float) -> None:
        with self._idle:
            self._idle.wait_for(lambda: not self._active, timeout_s)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otel-llm-collect"
    timeout = SOCKET_TIMEOUT_S
    # One segment per response, sent at once: headers and body buffered together and
    # flushed after the request (no Nagle / delayed-ACK stall of 40 ms on small answers).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    receiver: Receiver
    max_body_bytes: int
    expected_auth: bytes | None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("otel-llm collect http: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "use POST " + TRACES_PATH, close=False)

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != TRACES_PATH:
            self._discard_body()
            self._plain(HTTPStatus.NOT_FOUND, f"not found: traces are received at {TRACES_PATH}")
            return
        content_type = self.headers.get("Content-Type", "")
        is_json = media_type(content_type) in JSON_TYPES
        if self.expected_auth is not None and not hmac.compare_digest(
                (self.headers.get("Authorization") or "").strip().encode(), self.expected_auth):
            self.receiver.refused()
            self._discard_body()
            self._status(HTTPStatus.UNAUTHORIZED, _GRPC_UNAUTHENTICATED, "missing or wrong bearer token",
                         is_json, extra={"WWW-Authenticate": "Bearer"})
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.strip().isdigit():
            self.receiver.refused()
            self._plain(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required", close=True)
            return
        length = int(length_header)
        if length > self.max_body_bytes:
            self.receiver.refused()
            self._status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _GRPC_INVALID_ARGUMENT,
                         f"body of {length} bytes exceeds the limit of {self.max_body_bytes} bytes",
                         is_json, close=True)
            return
        original = self.rfile.read(length)
        if len(original) < length:
            self.close_connection = True
            return  # the client went away mid-body
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower() or None
        try:
            if encoding == "gzip":
                body = gunzip(original, self.max_body_bytes)
            elif encoding in (None, "identity"):
                body = original
            else:
                self.receiver.refused()
                raise UnsupportedMediaType(f"unsupported content encoding {encoding!r}: send gzip or none")
            parsed = self.receiver.receive(body, content_type, original=original, content_encoding=encoding)
        except TooLarge as exc:
            self.receiver.refused()
            self._status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _GRPC_INVALID_ARGUMENT, str(exc), is_json)
        except UnsupportedMediaType as exc:
            self._plain(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, str(exc))
        except MalformedBody as exc:
            self._status(HTTPStatus.BAD_REQUEST, _GRPC_INVALID_ARGUMENT, str(exc), is_json)
        except WalFull as exc:
            self._status(HTTPStatus.TOO_MANY_REQUESTS, _GRPC_RESOURCE_EXHAUSTED, str(exc), is_json,
                         extra={"Retry-After": str(RETRY_AFTER_S)})
        except (WalClosed, OSError) as exc:
            self._status(HTTPStatus.SERVICE_UNAVAILABLE, _GRPC_UNAVAILABLE, f"cannot take data now: {exc}",
                         is_json, extra={"Retry-After": str(RETRY_AFTER_S)})
        else:
            message = parsed.error_message()
            if is_json:
                self._send(HTTPStatus.OK, "application/json", response_json(parsed.rejected, message))
            else:
                self._send(HTTPStatus.OK, "application/x-protobuf",
                           response(parsed.rejected, message).SerializeToString())

    # -- responses -------------------------------------------------------------------------
    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) <= self.max_body_bytes:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _status(self, status: HTTPStatus, code: int, message: str, is_json: bool, *,
                extra: dict[str, str] | None = None, close: bool = False) -> None:
        """An error as a ``google.rpc.Status`` in the request's encoding."""
        if is_json:
            body = json.dumps({"code": code, "message": message}).encode()
            self._send(status, "application/json", body, extra=extra, close=close)
        else:
            body = status_pb2.Status(code=code, message=message).SerializeToString()
            self._send(status, "application/x-protobuf", body, extra=extra, close=close)

    def _plain(self, status: HTTPStatus, message: str, *, close: bool = False) -> None:
        self._send(status, "text/plain; charset=utf-8", message.encode(), close=close)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, *,
              extra: dict[str, str] | None = None, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
