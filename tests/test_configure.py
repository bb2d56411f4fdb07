"""configure(): one call for a working set-up, reusing the application's own provider.

Global OpenTelemetry providers can be set once per process, and the test session has
already set them, so every test here runs a fresh Python in a subprocess and asserts on
what it really printed or sent.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from otel_llm import semconv

ROOT = Path(__file__).resolve().parents[1]

#: Emits one LLM span inside a scope, and one span from a plain tracer (another instrumentation).
EMIT = """
import otel_llm
from opentelemetry import trace
with otel_llm.scope(agent="support", session="s-1"):
    with otel_llm.llm_span(provider="ollama", model="llama3.2") as call:
        call.set_usage(input_tokens=10, output_tokens=2)
    with trace.get_tracer("other.instrumentation").start_as_current_span("POST /v1/chat"):
        pass
"""


def run_python(*parts: str, **env: str) -> subprocess.CompletedProcess:
    """Run the code ``parts`` (each dedented on its own) in a fresh interpreter without OTEL_* settings."""
    code = "\n".join(textwrap.dedent(p) for p in parts)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean["OTEL_LLM_OBSERVATIONS"] = "false"  # these tests are about spans and metrics only
    clean.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def json_objects(text: str) -> list:
    """Every JSON value printed in ``text`` (the console exporter prints one per span)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i] in "{[":
            value, i = decoder.raw_decode(text, i)
            out.append(value)
        else:
            i += 1
    return out


def console_spans(stdout: str) -> dict:
    return {o["name"]: o for o in json_objects(stdout) if isinstance(o, dict) and "context" in o}


def test_console_spans_carry_the_service_name_and_resource_from_the_environment():
    proc = run_python(
        """
        from otel_llm.setup import configure
        handle = configure(console=True, service_name="name-in-code")
        """, EMIT, """
        handle.shutdown()
        """,
        OTEL_SERVICE_NAME="checkout-agent",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=staging,team=payments",
    )
    spans = console_spans(proc.stdout)
    assert set(spans) == {"chat llama3.2", "POST /v1/chat"}
    for span in spans.values():
        resource = span["resource"]["attributes"]
        assert resource[semconv.SERVICE_NAME] == "checkout-agent"  # the environment wins over code
        assert resource["deployment.environment"] == "staging"
        assert resource["team"] == "payments"
        assert resource[semconv.SERVICE_INSTANCE_ID]
    llm = spans["chat llama3.2"]["attributes"]
    assert llm[semconv.GEN_AI_AGENT_NAME] == "support"
    assert llm[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 10
    # the span of another instrumentation got the scope through the ScopeSpanProcessor
    assert spans["POST /v1/chat"]["attributes"][semconv.SESSION_ID] == "s-1"


def test_service_name_from_code_is_used_when_the_environment_gives_none():
    proc = run_python(
        """
        from otel_llm.setup import configure
        handle = configure(console=True, service_name="name-in-code", resource_attributes={"team": "search"})
        """, EMIT, """
        handle.shutdown()
        """,
    )
    resource = console_spans(proc.stdout)["chat llama3.2"]["resource"]["attributes"]
    assert resource[semconv.SERVICE_NAME] == "name-in-code"
    assert resource["team"] == "search"


def test_calling_configure_twice_changes_nothing():
    proc = run_python(
        """
        import json, logging, sys
        from opentelemetry import metrics, trace
        from otel_llm.setup import configure
        logging.basicConfig(stream=sys.stderr)
        first = configure(console=True)
        tp, mp = trace.get_tracer_provider(), metrics.get_meter_provider()
        again = configure(console=True)
        other = configure(console=True, service_name="something-else")
        """, EMIT, """
        summary = {
            "same_handle": first is again is other,
            "same_providers": trace.get_tracer_provider() is tp is first.tracer_provider
                              and metrics.get_meter_provider() is mp is first.meter_provider,
            "exporters": list(first.exporters),
        }
        first.shutdown()
        first.shutdown()
        print("SUMMARY" + json.dumps(summary))
        """,
    )
    summary = json.loads(proc.stdout.split("SUMMARY", 1)[1])
    assert summary == {"same_handle": True, "same_providers": True, "exporters": ["console"]}
    # one console exporter, not three: each span is printed once
    names = [o["name"] for o in json_objects(proc.stdout.split("SUMMARY", 1)[0]) if "context" in o]
    assert sorted(names) == ["POST /v1/chat", "chat llama3.2"]
    assert "already called" in proc.stderr


def test_an_application_provider_is_reused_not_replaced():
    proc = run_python(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from otel_llm.scope import ScopeSpanProcessor
        from otel_llm.setup import configure

        app_exporter = InMemorySpanExporter()
        app_provider = TracerProvider(resource=Resource.create({"service.name": "the-app"}))
        app_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
        trace.set_tracer_provider(app_provider)

        handle = configure(service_name="ignored")
        configure()
        """, EMIT, """
        handle.shutdown()  # leaves the application's provider running
        with trace.get_tracer("app").start_as_current_span("after our shutdown"):
            pass
        processors = app_provider._active_span_processor._span_processors
        print("SUMMARY" + json.dumps({
            "kept": trace.get_tracer_provider() is app_provider is handle.tracer_provider,
            "reused": handle.reused_tracer_provider,
            "scope_processors": sum(isinstance(p, ScopeSpanProcessor) for p in processors),
            "spans": {s.name: dict(s.attributes) for s in app_exporter.get_finished_spans()},
            "services": sorted({s.resource.attributes["service.name"] for s in app_exporter.get_finished_spans()}),
        }))
        """,
    )
    summary = json.loads(proc.stdout.split("SUMMARY", 1)[1])
    assert summary["kept"] and summary["reused"]
    assert summary["scope_processors"] == 1
    assert summary["services"] == ["the-app"]
    spans = summary["spans"]
    assert set(spans) == {"chat llama3.2", "POST /v1/chat", "after our shutdown"}
    assert spans["chat llama3.2"][semconv.GEN_AI_AGENT_NAME] == "support"
    assert spans["POST /v1/chat"][semconv.SESSION_ID] == "s-1"


def test_no_exporter_is_set_up_without_an_endpoint_or_console():
    proc = run_python(
        """
        from otel_llm.setup import configure
        handle = configure()
        """, EMIT, """
        handle.shutdown()
        print("EXPORTERS", list(handle.exporters))
        """,
    )
    assert proc.stdout.strip() == "EXPORTERS []"


def test_sdk_disabled_leaves_the_global_providers_alone():
    proc = run_python(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from otel_llm.setup import configure
        handle = configure(console=True)
        """, EMIT, """
        print("SDK", isinstance(trace.get_tracer_provider(), TracerProvider))
        """,
        OTEL_SDK_DISABLED="true",
    )
    assert proc.stdout.strip() == "SDK False"


# --- OTLP over real HTTP and gRPC ------------------------------------------------------------
class _Collector(BaseHTTPRequestHandler):
    received: dict

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.setdefault(self.path, []).append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def exported_spans(requests: list[bytes]) -> list[tuple[dict, str, dict]]:
    """(resource attributes, span name, span attributes) of every span in OTLP trace requests."""

    def value(v):
        kind = v.WhichOneof("value")
        return list(value(x) for x in v.array_value.values) if kind == "array_value" else getattr(v, kind)

    out = []
    for body in requests:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resource = {a.key: value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    out.append((resource, span.name, {a.key: value(a.value) for a in span.attributes}))
    return out


def test_otlp_http_exporters_send_spans_and_metrics_when_an_endpoint_is_set(http_collector):
    host, port = http_collector.server_address
    run_python(
        """
        from otel_llm.setup import configure
        handle = configure()
        assert handle.exporters == ("otlp-traces/http/protobuf", "otlp-metrics/http/protobuf"), handle.exporters
        """, EMIT, """
        handle.shutdown()
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{host}:{port}",
        OTEL_SERVICE_NAME="otlp-http-agent",
    )
    spans = exported_spans(http_collector.received["/v1/traces"])
    by_name = {name: (resource, attrs) for resource, name, attrs in spans}
    assert set(by_name) == {"chat llama3.2", "POST /v1/chat"}
    resource, attrs = by_name["chat llama3.2"]
    assert resource[semconv.SERVICE_NAME] == "otlp-http-agent"
    assert attrs[semconv.GEN_AI_AGENT_NAME] == "support"
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2

    metric_names = set()
    for body in http_collector.received["/v1/metrics"]:
        request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                metric_names.update(m.name for m in sm.metrics)
    assert {semconv.METRIC_OPERATION_DURATION, semconv.METRIC_TOKEN_USAGE} <= metric_names


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def Export(self, request, context):  # noqa: N802 - the generated service's naming
        self.requests.append(request.SerializeToString())
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_grpc_exporter_is_used_when_the_protocol_says_grpc():
    service = _TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        run_python(
            """
            from otel_llm.setup import configure
            handle = configure()
            assert handle.exporters == ("otlp-traces/grpc",), handle.exporters
            """, EMIT, """
            handle.shutdown()
            """,
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_SERVICE_NAME="otlp-grpc-agent",
        )
    finally:
        server.stop(grace=None)
    spans = exported_spans(service.requests)
    assert {name for _, name, _ in spans} == {"chat llama3.2", "POST /v1/chat"}
    assert all(resource[semconv.SERVICE_NAME] == "otlp-grpc-agent" for resource, _, _ in spans)


def test_the_console_example_prints_every_span_of_its_story():
    proc = run_python(Path(ROOT, "examples", "console_spans.py").read_text(), OTEL_SERVICE_NAME="example-under-test")
    spans = console_spans(proc.stdout)
    assert set(spans) == {"invoke_agent support", "chat gpt-4o-mini", "execute_tool lookup_order",
                          "fallback_chain answer", "chat gpt-4o", "chat llama3.2"}
    assert all(s["resource"]["attributes"][semconv.SERVICE_NAME] == "example-under-test" for s in spans.values())
    agent_id = spans["invoke_agent support"]["context"]["span_id"]
    for name in ("chat gpt-4o-mini", "execute_tool lookup_order", "fallback_chain answer"):
        assert spans[name]["parent_id"] == agent_id
    chain = spans["fallback_chain answer"]
    assert chain["attributes"][semconv.OTEL_LLM_CHAIN_SELECTED] == "local"
    fallback = spans["chat llama3.2"]["attributes"]
    assert fallback[semconv.OTEL_LLM_FALLBACK] is True
    assert fallback[semconv.OTEL_LLM_FALLBACK_REASON] == "RateLimited"
    assert fallback[semconv.OTEL_LLM_ROUTING_COMPLEXITY] == "simple"
    assert fallback[semconv.GEN_AI_AGENT_NAME] == "support"
    assert "answer: (llama3.2)" in proc.stderr
