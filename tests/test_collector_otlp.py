"""Decoding OTLP trace bodies (protobuf and OTLP/JSON) into span records, and refusing
what is not one with a clear error — never with a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from processor.collector.otlp import (
    MalformedBody, UnsupportedMediaType, parse_request, response_json, span_records,
)

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def otlp_json(spans: list[dict], resource: dict | None = None) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": v} for k, v in (resource or {
            "service.name": {"stringValue": "shop"}}).items()]},
        "scopeSpans": [{"scope": {"name": "openai.instrumentation"}, "spans": spans}],
    }]}


def chat_span(span_id: str = SPAN, trace_id: str = TRACE, **extra) -> dict:
    span = {
        "traceId": trace_id, "spanId": span_id, "parentSpanId": PARENT, "name": "chat gpt-4o",
        "kind": 3, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000250000000,
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
            {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.5}},
            {"key": "gen_ai.request.stream", "value": {"boolValue": True}},
            {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
            {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": 1}}]}}},
            {"key": "raw", "value": {"bytesValue": "AAE="}},
        ],
        "events": [{"name": "exception", "attributes": [{"key": "exception.type", "value": {"stringValue": "Timeout"}}]}],
        "status": {"code": 2},
    }
    span.update(extra)
    return span


def test_otlp_json_decodes_hex_ids_string_int64s_int_enums_and_every_value_type():
    parsed = parse_request(json.dumps(otlp_json([chat_span()])).encode(), "application/json; charset=utf-8")
    assert (parsed.spans, parsed.rejected) == (1, 0)
    [record] = span_records(parsed.payload)
    assert record.trace_id == bytes.fromhex(TRACE) and record.span_id == bytes.fromhex(SPAN)
    assert record.parent_span_id == bytes.fromhex(PARENT)
    assert (record.name, record.kind, record.status_code) == ("chat gpt-4o", 3, 2)
    assert (record.start_time_ns, record.end_time_ns) == (1700000000000000000, 1700000000250000000)
    assert record.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 120, "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stream": True, "gen_ai.response.finish_reasons": ("stop",), "nested": {"a": 1},
        "raw": b"\x00\x01",
    }
    assert record.resource_attributes == {"service.name": "shop"}
    assert record.events == (("exception", {"exception.type": "Timeout"}),)
    assert record.scope_name == "openai.instrumentation"


def test_the_same_request_as_protobuf_gives_the_same_records():
    from_json = parse_request(json.dumps(otlp_json([chat_span()])).encode(), "application/json")
    as_protobuf = ExportTraceServiceRequest.FromString(from_json.payload).SerializeToString()
    parsed = parse_request(as_protobuf, "application/x-protobuf")
    assert parsed.payload == as_protobuf
    assert span_records(parsed.payload) == span_records(from_json.payload)


def test_spans_with_unusable_ids_are_rejected_alone_with_a_reason():
    spans = [chat_span(), chat_span(span_id="not-hex"), chat_span(trace_id="00" * 16, span_id="1" * 16),
             chat_span(span_id="abcd")]
    parsed = parse_request(json.dumps(otlp_json(spans)).encode(), "application/json")
    assert (parsed.spans, parsed.rejected, parsed.accepted) == (4, 3, 1)
    assert parsed.error_message().startswith("3 of 4 spans rejected: trace_id must be 16 bytes")
    assert [r.span_id.hex() for r in span_records(parsed.payload)] == [SPAN]
    assert json.loads(response_json(parsed.rejected, parsed.error_message()))["partialSuccess"]["rejectedSpans"] == "3"


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"\x0a\x05\x0a\x03", "application/x-protobuf", "not a protobuf ExportTraceServiceRequest"),
    (b"{not json", "application/json", "body is not JSON"),
    (b"[1, 2]", "application/json", "must be a JSON object"),
    (b'{"resourceSpans": {"a": 1}}', "application/json", "not an OTLP/JSON ExportTraceServiceRequest"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', "application/json",
     "not an OTLP/JSON ExportTraceServiceRequest"),
    (b"\xff\xfe", "application/json", "body is not JSON"),
    (b"[" * 100_000, "application/json", "body is not JSON"),
])
def test_bodies_that_are_not_export_requests_get_a_clear_error(body, content_type, message):
    with pytest.raises(MalformedBody, match=message):
        parse_request(body, content_type)


def test_an_unknown_content_type_is_refused_as_such():
    with pytest.raises(UnsupportedMediaType, match="application/x-protobuf or application/json"):
        parse_request(b"{}", "text/plain")


def test_unknown_json_fields_are_ignored_as_the_specification_asks():
    doc = otlp_json([chat_span(futureField={"x": 1})])
    doc["somethingNew"] = True
    assert parse_request(json.dumps(doc).encode(), "application/json").accepted == 1


def test_deeply_nested_attribute_values_are_cut_not_followed():
    value: dict = {"stringValue": "leaf"}
    for _ in range(30):
        value = {"arrayValue": {"values": [value]}}
    parsed = parse_request(json.dumps(otlp_json([chat_span(attributes=[{"key": "deep", "value": value}])])).encode(),
                           "application/json")
    [record] = span_records(parsed.payload)
    depth, v = 0, record.attributes["deep"]
    while isinstance(v, tuple):
        depth, v = depth + 1, v[0]
    assert v is None and depth <= 9


# --- fuzzing: hostile bodies raise MalformedBody or decode into records, nothing else ----
_GOOD_JSON = json.dumps(otlp_json([chat_span(), chat_span(span_id="1" * 16)])).encode()
_GOOD_PROTOBUF = parse_request(_GOOD_JSON, "application/json").payload


def _survives(body: bytes, content_type: str) -> None:
    try:
        parsed = parse_request(body, content_type)
    except MalformedBody as exc:
        assert str(exc)
        return
    records = span_records(parsed.payload)
    assert len(records) == parsed.accepted


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=512),
    st.integers(0, len(_GOOD_PROTOBUF)).map(lambda n: _GOOD_PROTOBUF[:n]),
    st.tuples(st.integers(0, len(_GOOD_PROTOBUF) - 1), st.integers(0, 255)).map(
        lambda t: _GOOD_PROTOBUF[:t[0]] + bytes([t[1]]) + _GOOD_PROTOBUF[t[0] + 1:]),
))
def test_fuzzed_protobuf_bodies_never_crash_the_decoder(body):
    _survives(body, "application/x-protobuf")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "attributes", "key",
                         "value", "stringValue", "intValue", "arrayValue", "values", "kind", "status", "x"]),
        inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    _JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.integers(0, len(_GOOD_JSON)).map(lambda n: _GOOD_JSON[:n]),
    st.tuples(st.integers(0, len(_GOOD_JSON) - 1), st.sampled_from(b'{}[]",:0aZ-\x00\xff')).map(
        lambda t: _GOOD_JSON[:t[0]] + bytes([t[1]]) + _GOOD_JSON[t[0] + 1:]),
))
def test_fuzzed_json_bodies_never_crash_the_decoder(body):
    _survives(body, "application/json")


def test_splitting_by_trace_keeps_each_trace_whole_and_every_resource():
    from processor.collector.otlp import split_by_trace

    spans = [chat_span(span_id=f"{i + 1:016x}", trace_id=f"{t + 1:032x}") for t in range(7) for i in range(3)]
    doc = otlp_json(spans[:12])
    doc["resourceSpans"].append(otlp_json(spans[12:], {"service.name": {"stringValue": "other"}})["resourceSpans"][0])
    payload = parse_request(json.dumps(doc).encode(), "application/json").payload
    parts = split_by_trace(payload, 3)
    assert len(parts) == 3
    seen: dict[bytes, int] = {}
    total = []
    for index, part in enumerate(parts):
        if part is None:
            continue
        for record in span_records(part):
            assert seen.setdefault(record.trace_id, index) == index  # a trace never spans two parts
            total.append(record)
    assert sorted(total, key=lambda r: (r.trace_id, r.span_id)) == sorted(
        span_records(payload), key=lambda r: (r.trace_id, r.span_id))
    assert len(set(seen.values())) > 1
    assert {r.resource_attributes["service.name"] for r in total} == {"shop", "other"}
