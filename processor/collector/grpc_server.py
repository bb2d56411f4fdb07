"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The request arrives as raw bytes (no deserializer registered) and goes through the same
:class:`~processor.collector.receiver.Receiver` as HTTP bodies, so both transports decode,
log and count alike. Status codes, as the OTLP specification asks: OK with a partial
success for refused spans; INVALID_ARGUMENT for a body that does not decode;
UNAUTHENTICATED without the bearer token; RESOURCE_EXHAUSTED while the write-ahead log is
full and UNAVAILABLE while stopping or when the disk fails — both retryable, with a
``google.rpc.RetryInfo`` delay in the trailing metadata, which OTLP exporters honour.
Messages over ``max_body_bytes`` are refused by gRPC itself (RESOURCE_EXHAUSTED), and
at most ``max_concurrent_rpcs`` calls are served at once.
"""

from __future__ import annotations

import hmac
import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo

from processor.collector.otlp import MalformedBody, UnsupportedMediaType, response
from processor.collector.receiver import RETRY_AFTER_S, Receiver
from processor.collector.wal import WalClosed, WalFull

logger = logging.getLogger("otel_llm.collector")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
_RETRY_INFO = RetryInfo(retry_delay=Duration(seconds=RETRY_AFTER_S)).SerializeToString()


class OtlpGrpcServer:
    """The OTLP/gRPC receiver; :meth:`start` serves on gRPC's own threads."""

    def __init__(self, receiver: Receiver, host: str = "127.0.0.1", port: int = 4317, *,
                 max_body_bytes: int = 16 * 1024 * 1024, token: str | None = None,
                 max_workers: int = 8, max_concurrent_rpcs: int = 64) -> None:
        self._receiver = receiver
        self._expected_auth = f"Bearer {token}" if token else None
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otel-llm-collect-grpc"),
            maximum_concurrent_rpcs=max_concurrent_rpcs,
            options=[("grpc.max_receive_message_length", max_body_bytes)],
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self._export, request_deserializer=None, response_serializer=lambda m: m.SerializeToString())
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = self._server.add_insecure_port(target)
        if not self.port:
            raise OSError(f"cannot listen on {target} (gRPC)")
        self.host = host

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float = 10.0) -> None:
        """Refuse new calls; calls under way get ``grace_s`` to finish."""
        self._server.stop(grace_s).wait(grace_s + 1.0)

    def _export(self, body: bytes, context: grpc.ServicerContext) -> Any:
        if self._expected_auth is not None:
            metadata = dict(context.invocation_metadata())
            if not hmac.compare_digest(str(metadata.get("authorization", "")).strip().encode(),
                                       self._expected_auth.encode()):
                self._receiver.refused()
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        try:
            parsed = self._receiver.receive(body, "application/x-protobuf")
        except (MalformedBody, UnsupportedMediaType) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except WalFull as exc:
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", _RETRY_INFO),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except (WalClosed, OSError) as exc:
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", _RETRY_INFO),))
            context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot take data now: {exc}")
        return response(parsed.rejected, parsed.error_message())
