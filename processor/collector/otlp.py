"""OTLP trace bodies -> :class:`~processor.trace_inference.SpanRecord`.

Two steps, because they run at different times. :func:`parse_request` runs on the
receiving thread before a batch is acknowledged: it turns a body (OTLP protobuf, or
OTLP/JSON) into an ``ExportTraceServiceRequest``, says which spans it rejects (ids of
the wrong length, or all zero) and yields the protobuf bytes the write-ahead log keeps,
so the log holds one format whatever the sender spoke. Anything it cannot read raises
:class:`MalformedBody` with a message fit for the sender. :func:`span_records` runs later
on the pipeline's worker: it converts the accepted spans into plain records, converting
each ``AnyValue`` once and sharing one resource mapping between the spans of a resource.

OTLP/JSON is the protobuf JSON mapping with three differences the decoder honours:
trace and span ids are hex (not base64), 64-bit integers may be strings or numbers, and
enums are integers (names are accepted too). Unknown fields are ignored, as the
specification asks of receivers. Protobuf decoding uses the C runtime (upb) when it is
installed; the per-span Python work is what :func:`span_records` keeps small.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from processor.trace_inference import SpanRecord

#: Content types of OTLP/HTTP bodies (parameters such as ``charset`` are ignored).
PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPES = frozenset({"application/json"})

#: Nesting depth of array/kvlist attribute values kept; deeper values become None.
MAX_VALUE_DEPTH = 8
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_REJECT_REASON = "trace_id must be 16 bytes and span_id 8 bytes, neither all zero"


class MalformedBody(ValueError):
    """A body that is not an OTLP trace export request; the message says why."""


class UnsupportedMediaType(ValueError):
    """A content type the receiver does not speak."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A body that decoded: what to log, and what to tell the sender."""

    #: Serialized ``ExportTraceServiceRequest`` (the body itself when it was protobuf).
    payload: bytes
    #: Spans in the request.
    spans: int
    #: Spans refused (unusable ids); the others are accepted.
    rejected: int

    @property
    def accepted(self) -> int:
        return self.spans - self.rejected

    def error_message(self) -> str:
        """The partial-success message, empty when nothing was rejected."""
        return f"{self.rejected} of {self.spans} spans rejected: {_REJECT_REASON}" if self.rejected else ""


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_request(body: bytes, content_type: str = "application/x-protobuf") -> ParsedRequest:
    """Decode an (uncompressed) body; raises :class:`MalformedBody` or
    :class:`UnsupportedMediaType`."""
    kind = media_type(content_type)
    if kind in PROTOBUF_TYPES:
        request = parse_protobuf(body)
        payload = bytes(body)
    elif kind in JSON_TYPES:
        request = parse_json(body)
        payload = request.SerializeToString()
    else:
        raise UnsupportedMediaType(
            f"unsupported content type {kind or '(none)'!r}: send application/x-protobuf or application/json")
    spans, rejected = count_spans(request)
    return ParsedRequest(payload, spans, rejected)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """A protobuf ``ExportTraceServiceRequest``; :class:`MalformedBody` when it is not one."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise MalformedBody(f"body is not a protobuf ExportTraceServiceRequest: {exc or type(exc).__name__}") from None
    return request


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP/JSON ``ExportTraceServiceRequest``; :class:`MalformedBody` when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedBody(f"body is not JSON: {exc or type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise MalformedBody(f"body must be a JSON object, got {type(document).__name__}")
    _ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise MalformedBody(f"body is not an OTLP/JSON ExportTraceServiceRequest: {_short(exc)}") from None
    return request


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


_ID_KEYS = (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))


def _ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite the hex ids of OTLP/JSON in place into the base64 the JSON mapping reads.

    An id that is not hex becomes empty, so its span is rejected rather than the batch.
    Anything not shaped as expected is left for the parser to report.
    """
    for resource_spans in _list(document.get("resourceSpans", document.get("resource_spans"))):
        if not isinstance(resource_spans, dict):
            continue
        for scope_spans in _list(resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))):
            if not isinstance(scope_spans, dict):
                continue
            for span in _list(scope_spans.get("spans")):
                if isinstance(span, dict):
                    _rewrite_ids(span)
                    for link in _list(span.get("links")):
                        if isinstance(link, dict):
                            _rewrite_ids(link)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _rewrite_ids(obj: dict[str, Any]) -> None:
    for camel, snake in _ID_KEYS:
        for key in (camel, snake):
            value = obj.get(key)
            if isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raw = b""
                obj[key] = base64.b64encode(raw).decode("ascii")


def count_spans(request: ExportTraceServiceRequest) -> tuple[int, int]:
    """(spans, spans with unusable ids) of a request."""
    spans = rejected = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans += 1
                if not _valid_ids(span.trace_id, span.span_id):
                    rejected += 1
    return spans, rejected


def _valid_ids(trace_id: bytes, span_id: bytes) -> bool:
    return (len(trace_id) == _TRACE_ID_BYTES and len(span_id) == _SPAN_ID_BYTES
            and trace_id != b"\0" * _TRACE_ID_BYTES and span_id != b"\0" * _SPAN_ID_BYTES)


def response(rejected: int = 0, message: str = "") -> ExportTraceServiceResponse:
    """An export response, with a partial success when spans were rejected."""
    out = ExportTraceServiceResponse()
    if rejected or message:
        out.partial_success.rejected_spans = rejected
        out.partial_success.error_message = message
    return out


def response_json(rejected: int = 0, message: str = "") -> bytes:
    """The OTLP/JSON form of :func:`response` (int64 written as a string, as protobuf JSON does)."""
    if not (rejected or message):
        return b"{}"
    return json.dumps({"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}).encode()


def split_by_trace(payload: bytes, parts: int) -> list[bytes | None]:
    """A logged payload cut into ``parts`` requests by trace id (None where a part gets no
    span); every span of a trace lands in the same part. Resources and scopes are kept."""
    request = parse_protobuf(payload)
    out = [ExportTraceServiceRequest() for _ in range(parts)]
    used = [False] * parts
    for resource_spans in request.resource_spans:
        targets: dict[int, Any] = {}
        for scope_spans in resource_spans.scope_spans:
            groups: dict[int, list[Any]] = {}
            for span in scope_spans.spans:
                trace_id = span.trace_id
                groups.setdefault(int.from_bytes(trace_id[-4:], "big") % parts if trace_id else 0, []).append(span)
            for part, spans in groups.items():
                target = targets.get(part)
                if target is None:
                    target = targets[part] = out[part].resource_spans.add()
                    target.resource.CopyFrom(resource_spans.resource)
                    target.schema_url = resource_spans.schema_url
                    used[part] = True
                scope = target.scope_spans.add()
                scope.scope.CopyFrom(scope_spans.scope)
                scope.schema_url = scope_spans.schema_url
                scope.spans.extend(spans)
    return [out[i].SerializeToString() if used[i] else None for i in range(parts)]


# --- conversion to span records ------------------------------------------------------------
def span_records(payload: bytes) -> list[SpanRecord]:
    """The spans of a logged payload with usable ids, as :class:`SpanRecord` values."""
    request = parse_protobuf(payload)
    out: list[SpanRecord] = []
    append = out.append
    for resource_spans in request.resource_spans:
        # One read-only view shared by the resource's spans: derivation reads a resource it
        # knows cannot change once, not once per span.
        resource = MappingProxyType(attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name or None
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if not _valid_ids(trace_id, span_id):
                    continue
                parent = span.parent_span_id
                events = span.events
                append(SpanRecord(
                    trace_id, span_id,
                    parent if len(parent) == _SPAN_ID_BYTES and parent != b"\0" * _SPAN_ID_BYTES else None,
                    span.name, span.kind, span.start_time_unix_nano, span.end_time_unix_nano,
                    attributes(span.attributes), span.status.code, resource,
                    tuple((e.name, attributes(e.attributes) or None) for e in events) if events else (),
                    scope_name,
                ))
    return out


def attributes(key_values: Any) -> dict[str, Any]:
    """``repeated KeyValue`` -> dict (a later duplicate key wins, as in the SDK)."""
    if not key_values:
        return {}
    out: dict[str, Any] = {}
    scalars = _SCALAR_CASES
    for kv in key_values:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = getattr(value, kind) if kind in scalars else _compound(value, kind, 0)
    return out


def _compound(value: Any, kind: str | None, depth: int) -> Any:
    if kind is None or depth >= MAX_VALUE_DEPTH:
        return None
    if kind == "array_value":
        return tuple(_any(v, depth + 1) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _any(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def _any(value: Any, depth: int) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in _SCALAR_CASES else _compound(value, kind, depth)


#: The ``AnyValue`` cases that are plain values, read as the attribute of that name.
_SCALAR_CASES = frozenset({"string_value", "int_value", "double_value", "bool_value", "bytes_value"})
