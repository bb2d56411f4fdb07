"""``otel-llm collect`` as a subprocess, fed by real OTLP clients, writing to the real PostgreSQL.

The OpenTelemetry SDK's own exporters (gRPC and HTTP/protobuf) and raw OTLP/JSON posts
deliver spans; the rows are read back from the database. Errors are answered as OTLP
asks; saturation is answered with "retry later"; SIGTERM writes everything acknowledged
and SIGKILL loses nothing acknowledged.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from exporters.postgres.schema import connect
from tests.pg import fresh_schema, pg_dsn, scratch_server  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collect:
    """One ``otel-llm collect`` subprocess on free ports, with its own log directory."""

    def __init__(self, dsn: str, schema: str, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.dsn, self.schema, self.workdir, self.args = dsn, schema, workdir, args
        self.env = env or {}
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    @property
    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.workdir.glob("collect-*.log")))

    def start(self) -> "Collect":
        self.starts += 1
        env = {**os.environ, "OTEL_LLM_SPOOL_DIR": str(self.workdir / "spool"), **self.env}
        env.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
        log = open(self.workdir / f"collect-{self.starts}.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otel_llm.cli", "collect", "--dsn", self.dsn, "--schema", self.schema,
             "--wal-dir", str(self.workdir / "wal"), "--http-port", str(self.http_port),
             "--grpc-port", str(self.grpc_port), "--summary-interval", "1", *self.args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log
            if "OTLP/HTTP on" in self.log:
                return self
            time.sleep(0.1)
        raise AssertionError(f"collect did not start:\n{self.log}")

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def post(self, body: bytes, content_type: str = "application/json", **headers: str) -> requests.Response:
        return requests.post(self.url, data=body, headers={"Content-Type": content_type, **headers}, timeout=30)

    def rows(self, where: str = "true") -> list[tuple[Any, ...]]:
        """The stored observations ([] before the collector created its tables)."""
        with connect(self.dsn, self.schema) as conn:
            exists = conn.execute("SELECT to_regclass('route_observations') IS NOT NULL").fetchone()[0]
            if not exists:
                return []
            return conn.execute(
                "SELECT trace_id, span_id, agent, request_model, input_tokens, attempt, fallback, ok "
                f"FROM route_observations WHERE {where} ORDER BY trace_id, span_id").fetchall()

    def wait_rows(self, n: int, timeout: float = 60) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + timeout
        rows: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline:
            rows = self.rows()
            if len(rows) >= n:
                return rows
            time.sleep(0.2)
        raise AssertionError(f"{len(rows)} of {n} rows after {timeout} s:\n{self.log}")


@pytest.fixture
def collect(pg_dsn, fresh_schema, tmp_path) -> Iterator[Any]:
    """A factory: ``collect(*args)`` starts an ``otel-llm collect`` (killed after the test)."""
    started: list[Collect] = []

    def make(*args: str) -> Collect:
        c = Collect(pg_dsn, fresh_schema, tmp_path, *args)
        started.append(c)
        return c.start()

    yield make
    for c in started:
        c.close()


# --- bodies ------------------------------------------------------------------------------
def chat_span(trace: int, span: int, parent: int | None = None, *, tokens: int = 10, **attrs: Any) -> dict:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                  "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": tokens,
                  "gen_ai.usage.output_tokens": 2, **attrs}
    return _span(trace, span, parent, "chat gpt-4o-mini", attributes)


def agent_span(trace: int, span: int, name: str) -> dict:
    return _span(trace, span, None, f"invoke_agent {name}",
                 {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name})


def _span(trace: int, span: int, parent: int | None, name: str, attributes: dict[str, Any]) -> dict:
    now = time.time_ns()
    out = {"traceId": f"{trace:032x}", "spanId": f"{span:016x}", "name": name, "kind": 3,
           "startTimeUnixNano": str(now - 300_000_000), "endTimeUnixNano": str(now),
           "attributes": [{"key": k, "value": _any(v)} for k, v in attributes.items()]}
    if parent is not None:
        out["parentSpanId"] = f"{parent:016x}"
    return out


def _any(value: Any) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": str(value)}


def otlp_json(spans: list[dict]) -> bytes:
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}]}]}).encode()


def batch(first_trace: int, traces: int) -> bytes:
    """``traces`` traces of an agent span and one chat call under it."""
    spans = []
    for t in range(first_trace, first_trace + traces):
        spans += [agent_span(t, 2 * t + 1, "support"), chat_span(t, 2 * t + 2, 2 * t + 1, tokens=t)]
    return otlp_json(spans)


# --- the tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_sdks_grpc_and_http_exporters_deliver_spans_that_become_rows(collect, workers):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    c = collect("--trace-hold", "0.2", "--workers", workers)
    exporters = {
        "grpc": GrpcExporter(endpoint=f"127.0.0.1:{c.grpc_port}", insecure=True),
        "http": HttpExporter(endpoint=c.url),
        "http-gzip": HttpExporter(endpoint=c.url, compression=Compression.Gzip),
    }
    for name, exporter in exporters.items():
        provider = TracerProvider(resource=Resource.create({"service.name": f"svc-{name}"}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracer = provider.get_tracer("tests")
        for i in range(5):
            with tracer.start_as_current_span(f"invoke_agent {name}", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}):
                with tracer.start_as_current_span("chat gpt-4o", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                        "gen_ai.usage.input_tokens": 100 + i}):
                    pass
                with tracer.start_as_current_span("GET /inventory", attributes={"http.request.method": "GET"}):
                    pass
        provider.shutdown()
    rows = c.wait_rows(15)
    assert len(rows) == 15
    by_agent: dict[str, list[int]] = {}
    for _trace, _span, agent, model, tokens, attempt, fallback, ok in rows:
        assert (model, attempt, fallback, ok) == ("gpt-4o", 0, False, True)  # model from the span name
        by_agent.setdefault(agent, []).append(tokens)
    assert {k: sorted(v) for k, v in by_agent.items()} == {name: [100, 101, 102, 103, 104] for name in exporters}
    with connect(c.dsn, c.schema) as conn:
        services = conn.execute("SELECT DISTINCT service_name FROM route_observations ORDER BY 1").fetchall()
    assert services == [("svc-grpc",), ("svc-http",), ("svc-http-gzip",)]
    assert c.terminate() == 0


def test_otlp_json_posts_land_and_resent_batches_never_count_twice(collect):
    c = collect("--trace-hold", "0.2")
    body = batch(1, 20)
    for _ in range(3):
        response = c.post(body)
        assert response.status_code == 200 and response.json() == {}
    assert c.post(gzip.compress(body), "application/json", **{"Content-Encoding": "gzip"}).status_code == 200
    assert c.post(batch(21, 5)).status_code == 200
    rows = c.wait_rows(25)
    time.sleep(1.5)
    rows = c.rows()
    assert len(rows) == 25
    assert {r[2] for r in rows} == {"support"} and sorted(r[4] for r in rows) == list(range(1, 26))
    with connect(c.dsn, c.schema) as conn:
        assert conn.execute("SELECT sum(n)::int FROM route_rollup_minute").fetchone()[0] == 25
    assert c.terminate() == 0
    assert "spans in 170, observations out" in c.log


def test_bad_requests_get_their_status_and_partial_success_names_rejected_spans(collect):
    c = collect("--max-body-bytes", "20000")
    bad = c.post(b'{"resourceSpans": 7}')
    assert bad.status_code == 400 and "not an OTLP/JSON ExportTraceServiceRequest" in bad.json()["message"]
    bad_pb = c.post(b"\x0a\x05\x0a\x03", "application/x-protobuf")
    assert bad_pb.status_code == 400
    assert "not a protobuf" in status_pb2.Status.FromString(bad_pb.content).message
    assert c.post(b"{}", "text/plain").status_code == 415
    assert c.post(b"{}", "application/json", **{"Content-Encoding": "br"}).status_code == 415
    assert c.post(b"not gzip", "application/json", **{"Content-Encoding": "gzip"}).status_code == 400
    too_big = c.post(batch(1, 60))
    assert too_big.status_code == 413 and "exceeds the limit of 20000 bytes" in too_big.json()["message"]
    bomb = gzip.compress(b" " * 1_000_000 + batch(1, 1))
    assert c.post(bomb, "application/json", **{"Content-Encoding": "gzip"}).status_code == 413
    assert requests.post(c.url.replace("/v1/traces", "/v1/metrics"), data=b"{}", timeout=10).status_code == 404

    spans = [chat_span(100, 1), chat_span(0, 2), {**chat_span(101, 3), "spanId": "zz"}]
    partial = c.post(otlp_json(spans))
    assert partial.status_code == 200
    assert partial.json()["partialSuccess"]["rejectedSpans"] == "2"
    assert "2 of 3 spans rejected" in partial.json()["partialSuccess"]["errorMessage"]

    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary(GRPC_METHOD)
    with pytest.raises(grpc.RpcError) as info:
        export(b"\x0a\x05\x0a\x03", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a protobuf" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        export(b"\x0a" + b"\x80\x80\x02" + b"x" * 40000, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    pb = _protobuf(otlp_json([chat_span(102, 4), chat_span(103, 0)]))
    reply = ExportTraceServiceResponse.FromString(export(pb, timeout=10))
    assert reply.partial_success.rejected_spans == 1
    channel.close()
    rows = c.wait_rows(2)
    assert sorted(int(r[0], 16) for r in rows) == [100, 102]
    assert c.terminate() == 0


def _protobuf(json_body: bytes) -> bytes:
    from processor.collector.otlp import parse_request

    return parse_request(json_body, "application/json").payload


def test_a_bearer_token_is_required_on_both_transports_when_configured(collect):
    c = collect("--token", "s3cret")
    assert c.post(batch(1, 1)).status_code == 401
    assert c.post(batch(1, 1), Authorization="Bearer wrong").status_code == 401
    assert c.post(batch(1, 1), Authorization="Bearer s3cret").status_code == 200
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    export = channel.unary_unary(GRPC_METHOD)
    with pytest.raises(grpc.RpcError) as info:
        export(_protobuf(batch(2, 1)), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    export(_protobuf(batch(2, 1)), timeout=10, metadata=(("authorization", "Bearer s3cret"),))
    channel.close()
    assert c.terminate() == 0
    assert sorted(int(r[0], 16) for r in c.rows()) == [1, 2]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_full_log_answers_retry_later_and_sigterm_writes_everything_acknowledged(collect, workers):
    # Traces are held for a minute, so nothing leaves the log: it fills up.
    c = collect("--trace-hold", "60", "--max-body-bytes", "30000", "--max-wal-bytes", "60000", "--workers", workers)
    acknowledged = []
    refused = None
    for i in range(20):
        response = c.post(batch(1 + 10 * i, 10))
        if response.status_code == 200:
            acknowledged += range(1 + 10 * i, 11 + 10 * i)
        else:
            refused = response
            break
    assert refused is not None and refused.status_code == 429
    assert refused.headers["Retry-After"].isdigit() and "write-ahead log full" in refused.json()["message"]
    channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
    with pytest.raises(grpc.RpcError) as info:
        channel.unary_unary(GRPC_METHOD)(_protobuf(batch(900, 10)), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("google.rpc.retryinfo-bin" in dict(info.value.trailing_metadata()))
    channel.close()
    assert c.rows() == [] or len(c.rows()) < len(acknowledged)
    assert c.terminate() == 0
    assert sorted(int(r[0], 16) for r in c.rows()) == acknowledged, c.log


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigkill_mid_stream_then_restart_loses_no_acknowledged_batch(collect, workers):
    c = collect("--trace-hold", "1", "--workers", workers)
    acknowledged: list[int] = []
    stop = threading.Event()

    def send() -> None:
        first = 1
        while not stop.is_set():
            try:
                response = c.post(batch(first, 20))
            except requests.RequestException:
                return  # the collector died under us: this batch was not acknowledged
            if response.status_code == 200:
                acknowledged.extend(range(first, first + 20))
            first += 20

    sender = threading.Thread(target=send)
    sender.start()
    while len(acknowledged) < 400:
        time.sleep(0.01)
    c.kill()
    stop.set()
    sender.join(30)
    written_before = len(c.rows())
    assert written_before < len(acknowledged), "the kill should come while traces were still held"
    c.start()
    c.wait_rows(len(acknowledged))
    assert c.terminate() == 0
    stored = [int(r[0], 16) for r in c.rows()]
    # A batch logged just before the kill may be stored without its answer having reached
    # the sender: more rows than acknowledged, never fewer, never one twice.
    assert set(acknowledged) <= set(stored) and len(stored) == len(set(stored))
    assert len(stored) - len(acknowledged) <= 20
    with connect(c.dsn, c.schema) as conn:
        assert conn.execute("SELECT sum(n)::int FROM route_rollup_minute").fetchone()[0] == len(stored)


def test_a_second_collector_on_the_same_log_refuses_to_start(collect, pg_dsn, fresh_schema, tmp_path):
    collect()
    other = Collect(pg_dsn, fresh_schema, tmp_path)
    with pytest.raises(AssertionError, match="in use by another process"):
        other.start()


def test_message_content_is_kept_only_when_enabled(pg_dsn, tmp_path):
    from tests.pg import drop_schema, unique_schema

    content = {"gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "my card 4111"}]}]',
               "gen_ai.prompt.0.content": "my card 4111", "gen_ai.response.id": "resp-1"}
    for flag, expect_content in (((), False), (("--capture-content",), True)):
        schema = unique_schema("collect_content")
        (tmp_path / schema).mkdir()
        c = Collect(pg_dsn, schema, tmp_path / schema, "--trace-hold", "0.2", *flag)
        try:
            c.start()
            assert c.post(otlp_json([chat_span(7, 7, **content)])).status_code == 200
            assert c.terminate() == 0
            with connect(pg_dsn, schema) as conn:
                [(attributes,)] = conn.execute("SELECT attributes FROM route_observations").fetchall()
            assert attributes["gen_ai.response.id"] == "resp-1" if "gen_ai.response.id" in attributes else True
            assert ("gen_ai.input.messages" in attributes) is expect_content
            assert ("gen_ai.prompt.0.content" in attributes) is expect_content
            assert ("4111" in json.dumps(attributes)) is expect_content
        finally:
            c.close()
            drop_schema(pg_dsn, schema)


def test_received_requests_are_forwarded_unchanged(collect):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[str, str | None, bytes]] = []

    class Backend(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], self.headers.get("Content-Encoding"), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    backend = HTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    try:
        c = collect("--trace-hold", "0.2", "--forward", f"http://127.0.0.1:{backend.server_port}/v1/traces")
        plain, zipped = batch(1, 2), gzip.compress(batch(3, 2))
        assert c.post(plain).status_code == 200
        assert c.post(zipped, "application/json", **{"Content-Encoding": "gzip"}).status_code == 200
        channel = grpc.insecure_channel(f"127.0.0.1:{c.grpc_port}")
        grpc_body = _protobuf(batch(5, 2))
        channel.unary_unary(GRPC_METHOD)(grpc_body, timeout=10)
        channel.close()
        assert c.post(b"{broken", "application/json").status_code == 400  # not forwarded
        assert c.terminate() == 0
    finally:
        backend.shutdown()
    assert received == [("application/json", None, plain), ("application/json", "gzip", zipped),
                        ("application/x-protobuf", None, grpc_body)]
    assert sorted(int(r[0], 16) for r in c.rows()) == [1, 2, 3, 4, 5, 6]


def test_thousands_of_hostile_bodies_neither_crash_the_collector_nor_lose_a_good_batch(collect):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    c = collect("--trace-hold", "0.2", "--max-body-bytes", "65536")
    good_json = batch(1, 2)
    good_pb = _protobuf(good_json)
    session = requests.Session()
    statuses: dict[int, int] = {}
    sent_good: list[int] = []
    examples = [0]

    def mutate(body: bytes, data: st.DataObject) -> bytes:
        cut = data.draw(st.integers(0, len(body)))
        kind = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
        if kind == "truncate":
            return body[:cut]
        junk = data.draw(st.binary(min_size=1, max_size=8))
        return body[:cut] + junk + body[cut + (len(junk) if kind == "flip" else 0):]

    @settings(max_examples=2000, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def post_hostile(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["pb", "json", "gzip", "random"]))
        if kind == "pb":
            body, headers = mutate(good_pb, data), {"Content-Type": "application/x-protobuf"}
        elif kind == "json":
            body, headers = mutate(good_json, data), {"Content-Type": "application/json"}
        elif kind == "gzip":
            body = mutate(gzip.compress(good_json), data)
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        else:
            body = data.draw(st.binary(max_size=2048))
            headers = {"Content-Type": data.draw(st.sampled_from(
                ["application/x-protobuf", "application/json", "text/plain", ""]))}
        response = session.post(c.url, data=body, headers=headers, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 413, 415), (response.status_code, response.text)
        examples[0] += 1
        if examples[0] % 50 == 0:
            first = 1000 + 10 * len(sent_good)
            assert session.post(c.url, data=batch(first, 5), headers={"Content-Type": "application/json"},
                                timeout=30).status_code == 200
            sent_good.extend(range(first, first + 5))

    post_hostile()
    assert examples[0] >= 1000 and statuses.get(400, 0) > 100
    assert c.proc is not None and c.proc.poll() is None
    assert c.terminate() == 0
    stored = {int(r[0], 16) for r in c.rows()}
    assert set(sent_good) <= stored
    assert "Traceback" not in c.log


FIXTURES = ROOT / "tests" / "fixtures" / "otlp"
_COMPARED = ("trace_id", "span_id", "parent_span_id", "logical_call_id", "service_name", "instance_id", "agent",
             "operation", "provider", "server_address", "request_model", "response_model", "route", "attempt",
             "fallback", "stream", "ok", "error_type", "http_status", "finish_reason", "input_tokens",
             "cached_input_tokens", "output_tokens", "reasoning_tokens", "tools_offered", "tool_calls",
             "cost_usd", "cost_basis")


def test_other_instrumentations_fixtures_posted_as_they_are_become_the_same_rows_as_derived_in_process(collect):
    from processor.collector.otlp import parse_request, span_records
    from processor.pricing import default_pricer
    from processor.trace_inference import derive_trace

    files = sorted(FIXTURES.glob("*.json"))
    if not files:
        pytest.skip("no OTLP fixtures recorded")
    c = collect("--trace-hold", "0.3")
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for path in files:
        body = path.read_bytes()
        response = c.post(body)
        assert response.status_code == 200 and response.json() == {}, (path.name, response.text)
        by_trace: dict[bytes, list[Any]] = {}
        for record in span_records(parse_request(body, "application/json").payload):
            by_trace.setdefault(record.trace_id, []).append(record)
        derived = [o for spans in by_trace.values() for o in derive_trace(spans, pricer=default_pricer()).observations]
        for o in derived:
            expected[(o.trace_id, o.span_id)] = {name: getattr(o, name) for name in _COMPARED}
    assert c.terminate() == 0
    with connect(c.dsn, c.schema) as conn:
        cursor = conn.execute(f"SELECT {', '.join(_COMPARED)} FROM route_observations")
        stored = {(row[0], row[1]): dict(zip(_COMPARED, row)) for row in cursor.fetchall()}
    assert len(expected) >= len(files) // 2 and stored == expected
    assert {row["provider"] for row in stored.values()} >= {"openai", "ollama"}
    assert any(not row["ok"] for row in stored.values())


def test_a_database_outage_fills_the_log_instead_of_dropping_anything_acknowledged(scratch_server, tmp_path):
    from tests.pg import unique_schema

    schema = unique_schema("collect_outage")
    c = Collect(scratch_server.dsn, schema, tmp_path, "--trace-hold", "0.1", "--max-body-bytes", "30000",
                "--max-wal-bytes", "200000", env={"OTEL_LLM_SPOOL_MAX_BYTES": "60000"})
    try:
        c.start()
        assert c.post(batch(1, 10)).status_code == 200
        c.wait_rows(10)
        scratch_server.stop()
        acknowledged = list(range(1, 11))
        throttled = False
        for i in range(1, 200):
            response = c.post(batch(1 + 10 * i, 10))
            if response.status_code == 200:
                acknowledged += range(1 + 10 * i, 11 + 10 * i)
            else:
                assert response.status_code == 429
                throttled = True
                break
            time.sleep(0.05)
        assert throttled, "the log should fill up while the database is down"
        assert len(list((tmp_path / "spool").glob("*.jsonl"))) > 0  # some went to the spool first
        scratch_server.start()
        c.wait_rows(len(acknowledged), timeout=120)
        assert c.terminate() == 0
        assert sorted(int(r[0], 16) for r in c.rows()) == acknowledged
        assert "dropped" not in c.log.rsplit("stopped;", 1)[1]
    finally:
        c.close()
