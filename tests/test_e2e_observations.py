"""End to end: decorated calls -> spans -> processor -> PostgreSQL rows, exactly once.

The real SDK, the real processor and the real PostgreSQL exporter, writing into a
schema of this test's own; an outage test stops a real server and starts it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from opentelemetry import trace

from exporters.postgres.exporter import PostgresExporter
from exporters.postgres.schema import connect
from otel_llm import fallback_chain, llm_span, scope, semconv
from otel_llm.decorator import llm_call
from otel_llm.fallback import AllAttemptsFailed, Target
from processor.span_processor import RouteObservationProcessor
from tests.pg import (  # noqa: F401 - fixtures
    ScratchServer,
    count_rows,
    fresh_schema,
    pg_dsn,
    scratch_server,
)


class UpstreamBusy(Exception):
    pass


def _response(model: str, prompt: int = 10, completion: int = 5) -> dict:
    return {
        "id": f"chatcmpl-{model}", "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }


@llm_call(provider="openai")
def chat(model: str, prompt: int = 10) -> dict:
    return _response(model, prompt)


@llm_call(provider="openai")
def busy(model: str) -> dict:
    raise UpstreamBusy("429 from upstream")


@llm_call(provider="ollama", server_address="localhost", server_port=11434)
def stream(model: str) -> Iterator[dict]:
    yield {"model": model, "message": {"role": "assistant", "content": "he"}, "done": False}
    yield {"model": model, "message": {"role": "assistant", "content": "llo"}, "done": True,
           "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 2}


@pytest.fixture
def attached(tracer_provider, pg_dsn, fresh_schema, tmp_path):
    """A processor writing to this test's schema, attached to the global provider."""
    exporters: list[PostgresExporter] = []
    processors: list[RouteObservationProcessor] = []

    def attach(dsn: str = pg_dsn, **exporter_options) -> tuple[RouteObservationProcessor, PostgresExporter]:
        exporter = PostgresExporter(dsn, schema=fresh_schema, spool_dir=tmp_path / f"spool{len(exporters)}",
                                    **exporter_options)
        processor = RouteObservationProcessor(exporter)
        tracer_provider.add_span_processor(processor)
        exporters.append(exporter)
        processors.append(processor)
        return processor, exporter

    yield attach
    active = tracer_provider._active_span_processor
    active._span_processors = tuple(p for p in active._span_processors if p not in processors)
    for processor in processors:
        processor.shutdown()


def _rows(dsn: str, schema: str) -> list[dict]:
    with connect(dsn, schema) as conn:
        cur = conn.execute(
            "SELECT agent, session_id, provider, request_model, route, attempt, fallback, stream, ok, "
            "error_type, input_tokens, output_tokens, logical_call_id, cost_basis, trace_id, span_id "
            "FROM route_observations ORDER BY started_at, attempt"
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _workload() -> int:
    """Decorated calls, a fallback chain (two failures, then success), a stream, a failure."""
    with scope(agent="support", session="s-1"):
        for i in range(5):
            chat("gpt-4o-mini", prompt=10 + i)
        chain = fallback_chain("answer", [
            Target(provider="openai", model="big-1", route="primary", call=lambda: busy("big-1")),
            Target(provider="openai", model="big-2", route="secondary", call=lambda: busy("big-2")),
            Target(provider="openai", model="small", route="last", call=lambda: chat("small")),
        ])
        chain.run()
        assert "".join(c["message"]["content"] for c in stream("llama3.2")) == "hello"
        with pytest.raises(UpstreamBusy):
            busy("gpt-4o")
    return 5 + 3 + 1 + 1


def test_n_decorated_calls_give_exactly_n_observations_with_the_right_fields(attached, pg_dsn, fresh_schema):
    processor, _ = attached()
    n = _workload()
    assert processor.force_flush(30_000)
    rows = _rows(pg_dsn, fresh_schema)
    assert len(rows) == n
    assert all(r["agent"] == "support" and r["session_id"] == "s-1" for r in rows)

    attempts = [r for r in rows if r["route"] in ("primary", "secondary", "last")]
    assert [(r["attempt"], r["fallback"], r["ok"]) for r in attempts] == [
        (0, False, False), (1, True, False), (2, True, True)]
    assert {r["error_type"] for r in attempts[:2]} == {"UpstreamBusy"}
    assert len({r["logical_call_id"] for r in attempts}) == 1  # one logical call, three attempts

    (streamed,) = [r for r in rows if r["stream"]]
    assert (streamed["provider"], streamed["input_tokens"], streamed["output_tokens"]) == ("ollama", 7, 2)
    assert streamed["cost_basis"] == "local"

    (failed,) = [r for r in rows if r["request_model"] == "gpt-4o"]
    assert failed["ok"] is False and failed["error_type"] == "UpstreamBusy"
    assert failed["input_tokens"] is None  # unknown stays NULL, never 0

    plain = [r for r in rows if r["request_model"] == "gpt-4o-mini"]
    assert sorted(r["input_tokens"] for r in plain) == [10, 11, 12, 13, 14]


def test_the_same_spans_exported_twice_still_count_once(attached, spans, pg_dsn, fresh_schema):
    processor, _ = attached()
    n = _workload()
    assert processor.force_flush(30_000)
    finished = spans.get_finished_spans()

    replay = RouteObservationProcessor(PostgresExporter(pg_dsn, schema=fresh_schema,
                                                        spool_dir=Path(processor_spool_dir(fresh_schema))))
    try:
        for span in finished:  # a resent batch: the same spans again
            replay.on_end(span)
        assert replay.force_flush(30_000)
    finally:
        replay.shutdown()
    assert len(_rows(pg_dsn, fresh_schema)) == n


def processor_spool_dir(schema: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix=f"otel-llm-replay-{schema}-")


def test_a_span_in_another_instrumentations_naming_is_derived_the_same(attached, pg_dsn, fresh_schema):
    processor, _ = attached()
    tracer = trace.get_tracer("opentelemetry.instrumentation.openai")  # OpenLLMetry-style names
    with tracer.start_as_current_span("openai.chat", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({
            "gen_ai.system": "OpenAI",
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.prompt_tokens": 21,
            "gen_ai.usage.completion_tokens": 4,
            "llm.is_streaming": False,
        })
    with llm_span(provider="openai", model="gpt-4o-mini", stream=False) as call:
        call.set_response(model="gpt-4o-mini-2024-07-18")
        call.set_usage(input_tokens=21, output_tokens=4)
    assert processor.force_flush(30_000)
    theirs, ours = _rows(pg_dsn, fresh_schema)
    for key in ("provider", "request_model", "route", "input_tokens", "output_tokens", "ok", "stream"):
        assert theirs[key] == ours[key], key
    assert theirs["provider"] == "openai"


def test_database_stopped_mid_run_then_back_every_observation_lands_once(
    attached, scratch_server: ScratchServer, fresh_schema
):
    processor, exporter = attached(scratch_server.dsn, retry_initial_s=0.2, retry_max_s=0.5, replay_interval_s=0.2)
    for i in range(20):
        chat("before-outage")
    assert processor.force_flush(30_000)

    scratch_server.stop()
    for i in range(30):  # the application keeps calling while the database is down
        result = chat("during-outage")
        assert result["model"] == "during-outage"
    # The flush cannot reach the database, so it reports False; but the processor's
    # queue is empty: every observation was accepted into the on-disk spool.
    assert processor.force_flush(5_000) is False
    assert processor.stats().queued == 0
    assert exporter.stats()["spilled"] == 30

    scratch_server.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        exporter.force_flush(5)
        with connect(scratch_server.dsn, fresh_schema) as conn:
            if count_rows(conn) >= 50:
                break
        time.sleep(0.2)
    with connect(scratch_server.dsn, fresh_schema) as conn:
        total = count_rows(conn)
        distinct = conn.execute("SELECT count(DISTINCT (trace_id, span_id)) FROM route_observations").fetchone()[0]
    assert (total, distinct) == (50, 50)
    stats = processor.stats()
    assert stats.dropped == 0 and stats.skipped_malformed == 0
