"""Collector throughput: OTLP/HTTP protobuf in, committed rows out (run by hand).

Measured in one run, on the same PostgreSQL:

* ``end to end``: ``otel-llm collect`` runs as a subprocess; a *separate sender process*
  posts OTLP/HTTP protobuf bodies (built before the clock starts: the sender's own
  span-building cost is not the collector's) as fast as the collector acknowledges
  them. The clock runs from the first post to the moment every expected row is
  committed in ``route_observations`` (polled every 50 ms). Each trace is an
  ``invoke_agent`` span with three ``chat`` calls under it (the first of them failed, so
  the second is attempt 1), attributes as the GenAI instrumentations record them; the
  collector decodes, logs (fsync per request), holds each trace ``--hold`` seconds,
  infers agent/attempts, derives, prices and writes rows and rollups.
* ``exporter ceiling``: ``PostgresExporter.export`` of the same observations, derived
  beforehand, in batches of 2048, into a fresh schema — what the write path alone can do.

Goal: end to end >= 15,000 spans/s.

    python benchmarks/collector.py [--traces 25000] [--spans-per-request 512] [--hold 0.5] [--senders 2] [--workers 1] [--dsn DSN]

The DSN defaults to ``OTEL_LLM_TEST_DSN``, else ``OTEL_LLM_DSN``, else the embedded server.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status  # noqa: E402
from psycopg import sql  # noqa: E402

from exporters.postgres.embedded import resolve_dsn  # noqa: E402
from exporters.postgres.exporter import PostgresExporter  # noqa: E402
from processor.collector.otlp import span_records  # noqa: E402
from processor.pricing import default_pricer  # noqa: E402
from processor.trace_inference import derive_trace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AGENTS = ("support", "research", "triage", "billing")
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "llama3.2")
SPANS_PER_TRACE = 4


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def make_bodies(traces: int, spans_per_request: int, seed: int) -> list[bytes]:
    """Serialized export requests: ``traces`` traces of an agent and three chat calls."""
    now = time.time_ns()
    spans: list[Span] = []
    for t in range(traces):
        trace_id = (seed << 64 | t + 1).to_bytes(16, "big")
        agent = AGENTS[t % len(AGENTS)]
        model = MODELS[t % len(MODELS)]
        start = now - 10_000_000_000 + t * 1000
        root = (4 * t + 1).to_bytes(8, "big")
        spans.append(Span(trace_id=trace_id, span_id=root, name=f"invoke_agent {agent}", kind=Span.SPAN_KIND_INTERNAL,
                          start_time_unix_nano=start, end_time_unix_nano=start + 900_000_000,
                          attributes=[_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", agent)]))
        for call in range(3):
            failed = call == 0
            begin = start + call * 300_000_000
            attrs = [
                _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", "openai"),
                _kv("gen_ai.request.model", model), _kv("gen_ai.request.temperature", 0.2),
                _kv("gen_ai.request.max_tokens", 512), _kv("server.address", "api.openai.com"),
                _kv("server.port", 443),
            ]
            if failed:
                attrs.append(_kv("error.type", "RateLimitError"))
            else:
                attrs += [_kv("gen_ai.response.model", f"{model}-2024-08-06"), _kv("gen_ai.response.id", f"chatcmpl-{t}-{call}"),
                          _kv("gen_ai.usage.input_tokens", 200 + t % 50), _kv("gen_ai.usage.output_tokens", 40 + t % 9)]
                attrs.append(KeyValue(key="gen_ai.response.finish_reasons",
                                      value=AnyValue(array_value={"values": [AnyValue(string_value="stop")]})))
            spans.append(Span(trace_id=trace_id, span_id=(4 * t + 2 + call).to_bytes(8, "big"), parent_span_id=root,
                              name=f"chat {model}", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=begin,
                              end_time_unix_nano=begin + 250_000_000, attributes=attrs,
                              status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_UNSET)))
    resource = {"attributes": [_kv("service.name", "bench"), _kv("service.instance.id", "bench-1")]}
    bodies = []
    for i in range(0, len(spans), spans_per_request):
        request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(scope={"name": "bench"}, spans=spans[i:i + spans_per_request])])])
        bodies.append(request.SerializeToString())
    return bodies


SENDER = """
import sys, time, requests
path, url = sys.argv[1:3]
data = open(path, "rb").read()
bodies, i = [], 0
while i < len(data):
    n = int.from_bytes(data[i:i + 4], "big"); bodies.append(data[i + 4:i + 4 + n]); i += 4 + n
session = requests.Session()
print("ready", flush=True)
sys.stdin.readline()
for body in bodies:
    while True:
        r = session.post(url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=60)
        if r.status_code == 200:
            break
        time.sleep(float(r.headers.get("Retry-After", "0.2")))
print("done", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process and of its child processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p: int) -> float:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children += [int(c) for c in f.read().split()]
    return one(pid), sum(one(c) for c in children)


def _count(dsn: str, schema: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(sql.SQL("SELECT count(*) FROM {}.route_observations").format(
                sql.Identifier(schema))).fetchone()[0]
    except psycopg.Error:
        return 0


def _drop(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def end_to_end(dsn: str, bodies: list[bytes], expected_rows: int, spans: int, args: argparse.Namespace,
               work: Path) -> tuple[float, tuple[float, float], str]:
    schema = f"bench_collect_{secrets.token_hex(4)}"
    port = _free_port()
    log = open(work / "collect.log", "wb")  # noqa: SIM115
    collect = subprocess.Popen(
        [sys.executable, "-m", "otel_llm.cli", "collect", "--dsn", dsn, "--schema", schema,
         "--wal-dir", str(work / f"wal-{schema}"), "--http-port", str(port), "--grpc-port", "-1",
         "--trace-hold", str(args.hold), "--summary-interval", "5", "--workers", str(args.workers)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OTEL_LLM_SPOOL_DIR": str(work / "spool")})
    try:
        while b"OTLP/HTTP on" not in (work / "collect.log").read_bytes():
            if collect.poll() is not None:
                raise SystemExit((work / "collect.log").read_text())
            time.sleep(0.1)
        # Warm up: connect, migrate, create partitions before the clock starts.
        warm = make_bodies(4, 64, seed=0xFFFF)
        import requests
        for body in warm:
            requests.post(f"http://127.0.0.1:{port}/v1/traces", data=body,
                          headers={"Content-Type": "application/x-protobuf"}, timeout=60)
        while _count(dsn, schema) < 12:
            time.sleep(0.05)
        senders = []
        for k in range(args.senders):
            path = work / f"bodies-{k}.bin"
            with open(path, "wb") as f:
                for body in bodies[k::args.senders]:
                    f.write(len(body).to_bytes(4, "big") + body)
            senders.append(subprocess.Popen([sys.executable, "-c", SENDER, str(path),
                                             f"http://127.0.0.1:{port}/v1/traces"],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for sender in senders:
            assert sender.stdout is not None and sender.stdout.readline().strip() == "ready"
        cpu_before = _cpu_s(collect.pid)
        start = time.perf_counter()
        for sender in senders:
            assert sender.stdin is not None
            sender.stdin.write("go\n")
            sender.stdin.flush()
        target = expected_rows + 12
        while _count(dsn, schema) < target:
            time.sleep(0.05)
            if collect.poll() is not None:
                raise SystemExit((work / "collect.log").read_text())
        elapsed = time.perf_counter() - start
        cpu_after = _cpu_s(collect.pid)
        for sender in senders:
            sender.wait(60)
        collect.terminate()
        collect.wait(120)
        cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
        return spans / elapsed, cpu, (work / "collect.log").read_text()
    finally:
        if collect.poll() is None:
            collect.kill()
        log.close()
        _drop(dsn, schema)


def exporter_ceiling(dsn: str, bodies: list[bytes], work: Path) -> tuple[float, int]:
    pricer = default_pricer()
    records = [r for body in bodies for r in span_records(body)]
    by_trace: dict[bytes, list] = {}
    for r in records:
        by_trace.setdefault(r.trace_id, []).append(r)
    observations = [o for spans in by_trace.values() for o in derive_trace(spans, pricer=pricer).observations]
    schema = f"bench_ceiling_{secrets.token_hex(4)}"
    exporter = PostgresExporter(dsn, schema=schema, spool_dir=work / "ceiling-spool", background=False)
    try:
        exporter.export(observations[:1])  # connect, migrate, partitions
        rest = observations[1:]
        start = time.perf_counter()
        for i in range(0, len(rest), 2048):
            exporter.export(rest[i:i + 2048])
        elapsed = time.perf_counter() - start
        assert exporter.stats()["spilled"] == 0, exporter.stats()
        return len(rest) / elapsed, len(observations)
    finally:
        exporter.shutdown()
        _drop(dsn, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=25_000)
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--hold", type=float, default=0.5, help="the collector's --trace-hold")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="the collector's --workers")
    parser.add_argument("--dsn")
    args = parser.parse_args()
    dsn = args.dsn or os.environ.get("OTEL_LLM_TEST_DSN") or resolve_dsn()
    bodies = make_bodies(args.traces, args.spans_per_request, seed=int(time.time()))
    spans = args.traces * SPANS_PER_TRACE
    with tempfile.TemporaryDirectory(prefix="otel-llm-bench-collect-") as tmp:
        work = Path(tmp)
        ceiling, observations = exporter_ceiling(dsn, bodies, work)
        rate, (cpu_main, cpu_workers), log = end_to_end(dsn, bodies, observations, spans, args, work)
    per_span_ceiling = ceiling * spans / observations
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.traces} traces, {spans} spans, {observations} observations; {len(bodies)} requests of "
          f"{args.spans_per_request} spans, {args.senders} sender processes; collector: {args.workers} workers, "
          f"trace hold {args.hold} s")
    print(f"exporter ceiling (PostgresExporter.export, pre-derived): {ceiling:,.0f} observations/s "
          f"= {per_span_ceiling:,.0f} spans/s at {observations / spans:.2f} observations per span")
    print(f"end to end (OTLP/HTTP in -> committed rows):             {rate:,.0f} spans/s "
          f"= {rate * observations / spans:,.0f} observations/s ({rate / per_span_ceiling:.0%} of the ceiling)")
    print(f"collector CPU per span: {1e6 * cpu_main / spans:.1f} us in its main process (receive, log, split) "
          f"+ {1e6 * cpu_workers / spans:.1f} us in its worker processes (convert, hold, derive, write) "
          f"= {1e6 * (cpu_main + cpu_workers) / spans:.1f} us (PostgreSQL's own work not included)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"goal >= 15,000 spans/s: {'met' if rate >= 15_000 else 'not met'}")
    print("collector's last lines:")
    print("\n".join(log.strip().splitlines()[-2:]))


if __name__ == "__main__":
    main()
