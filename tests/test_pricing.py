"""Pricing: the price library's own figures, at the call's time, normalised tokens, the
user's price file; and through derivation into PostgreSQL (computed, local, unknown)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price
from genai_prices.data import providers as library_providers

from exporters.postgres.schema import connect
from exporters.postgres.writer import BatchWriter
from otel_llm import llm_span
from processor.derive import derive
from processor.observation import RouteObservation
from processor.pricing import PriceBook, library_counts
from processor.pricing_file import PriceFileError, load_price_file, parse_prices
from tests.pg import fresh_schema, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def obs(provider: str | None, model: str | None, when: datetime = WHEN, **fields) -> RouteObservation:
    return RouteObservation(trace_id="a" * 32, span_id="b" * 16, started_at=when, duration_ms=10.0,
                            provider=provider, request_model=model, **fields)


def library(model: str, provider_id: str, when: datetime = WHEN, **usage) -> Decimal:
    """The price library's figure, asked directly."""
    return calc_price(Usage(**usage), model, provider_id=provider_id, genai_request_timestamp=when).total_price


@pytest.fixture
def book() -> PriceBook:
    return PriceBook(env={})


# --- golden figures: the library's own ---------------------------------------------------
def test_openai_cached_input_is_part_of_input_and_priced_as_cache_reads(book) -> None:
    got = book(obs("openai", "gpt-4o-mini", input_tokens=1200, cached_input_tokens=1000, output_tokens=300))
    assert got == library("gpt-4o-mini", "openai", input_tokens=1200, cache_read_tokens=1000, output_tokens=300)
    # cached tokens really are cheaper than uncached ones
    assert got < book(obs("openai", "gpt-4o-mini", input_tokens=1200, output_tokens=300))


def test_anthropic_cache_reads_and_writes(book) -> None:
    got = book(obs("anthropic", "claude-sonnet-4-5", input_tokens=5000, cached_input_tokens=3000,
                   cache_creation_input_tokens=1500, output_tokens=400))
    assert got == library("claude-sonnet-4-5", "anthropic", input_tokens=5000, cache_read_tokens=3000,
                          cache_write_tokens=1500, output_tokens=400)


def test_anthropic_style_input_without_cache_tokens_is_made_inclusive(book) -> None:
    # Anthropic's API counts input_tokens without the cache: 100 fresh + 3000 read + 500 written
    got = book(obs("anthropic", "claude-sonnet-4-5", input_tokens=100, cached_input_tokens=3000,
                   cache_creation_input_tokens=500, output_tokens=40))
    assert got == library("claude-sonnet-4-5", "anthropic", input_tokens=3600, cache_read_tokens=3000,
                          cache_write_tokens=500, output_tokens=40)


@pytest.mark.parametrize("input_tokens", [150_000, 250_000])
def test_long_context_tier_and_google_reasoning_outside_output(book, input_tokens) -> None:
    # Gemini counts thoughts apart from candidates: the library's output includes them
    got = book(obs("gcp.gemini", "gemini-2.5-pro", input_tokens=input_tokens, cached_input_tokens=20_000,
                   output_tokens=800, reasoning_tokens=1200))
    assert got == library("gemini-2.5-pro", "google", input_tokens=input_tokens, cache_read_tokens=20_000,
                          output_tokens=2000, output_reasoning_tokens=1200)


def test_the_long_context_tier_costs_more_per_token(book) -> None:
    per_token = [book(obs("gcp.gemini", "gemini-2.5-pro", input_tokens=n, output_tokens=0)) / n
                 for n in (200_000, 200_001)]
    assert per_token[1] > per_token[0]


def test_openai_reasoning_is_inside_output(book) -> None:
    got = book(obs("openai", "o3", input_tokens=2000, output_tokens=900, reasoning_tokens=700))
    assert got == library("o3", "openai", input_tokens=2000, output_tokens=900, output_reasoning_tokens=700)


def test_priced_at_the_calls_own_time(book) -> None:
    before, after = datetime(2025, 6, 9, 23, 59, tzinfo=timezone.utc), datetime(2025, 6, 10, tzinfo=timezone.utc)
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    old = book(obs("openai", "o3", before, **usage))
    new = book(obs("openai", "o3", after, **usage))
    assert old == library("o3", "openai", before, **usage)
    assert new == library("o3", "openai", after, **usage)
    assert old != new  # the price changed on 2025-06-10


@pytest.mark.parametrize("provider_id", ["openai", "anthropic", "google"])
def test_every_text_model_of_the_big_providers_matches_the_library(book, provider_id) -> None:
    ours = {"openai": "openai", "anthropic": "anthropic", "google": "gcp.gemini"}[provider_id]
    usage = {"input_tokens": 210_000, "cache_read_tokens": 10_000, "output_tokens": 3000}
    compared = 0
    for model in next(p for p in library_providers if p.id == provider_id).models:
        prices = model.get_prices(WHEN)
        if getattr(prices, "input_mtok", None) is None:
            continue
        try:
            want = calc_price(Usage(**usage), model.id, provider_id=provider_id, genai_request_timestamp=WHEN)
        except (ValueError, LookupError):
            continue  # usage the library itself cannot price for this model
        if want.model is not model:
            continue  # the id matches an earlier model first
        got = book(obs(ours, model.id, input_tokens=210_000, cached_input_tokens=10_000, output_tokens=3000))
        assert got == want.total_price, model.id
        compared += 1
    assert compared >= 10


def test_the_response_model_is_priced_before_the_requested_one(book) -> None:
    call = obs("openai", "gpt-4o", input_tokens=1000, output_tokens=100, response_model="gpt-4o-mini")
    assert book(call) == library("gpt-4o-mini", "openai", input_tokens=1000, output_tokens=100)


def test_a_gateway_the_library_does_not_know_is_priced_by_model_name(book) -> None:
    got = book(obs("my_gateway", "gpt-4o", input_tokens=1000, output_tokens=100))
    assert got == library("gpt-4o", "openai", input_tokens=1000, output_tokens=100)


def test_unknown_models_and_unusable_counts_are_not_priced(book, caplog) -> None:
    assert book(obs("openai", "no-such-model-9000", input_tokens=10, output_tokens=1)) is None
    assert book(obs("acme", "acme-large", input_tokens=10, output_tokens=1)) is None
    assert book(obs(None, None, input_tokens=10, output_tokens=1)) is None
    assert book(obs("openai", "gpt-4o-mini")) is None  # no token counts: not $0
    with caplog.at_level(logging.WARNING, logger="otel_llm.pricing"):
        bad = obs("openai", "gpt-4o-mini", input_tokens="many", output_tokens=1)  # type: ignore[arg-type]
        assert book(bad) is None
    assert "cannot price" in caplog.text


def test_library_counts_normalisation() -> None:
    assert library_counts("openai", 1000, 200, None, 50, 30) == (1000, 200, 0, 50, 30)
    assert library_counts("anthropic", 10, 200, 100, 50, None) == (310, 200, 100, 50, 0)
    assert library_counts("gcp.vertex_ai", 10, None, None, 50, 30) == (10, 0, 0, 80, 30)
    assert library_counts("openai", 10, None, None, 5, 30) == (10, 0, 0, 35, 30)
    assert library_counts("openai", None, None, None, None, 3) is None
    assert library_counts("openai", 10, None, None, None, None) == (10, 0, 0, 0, 0)


# --- the user's price file ---------------------------------------------------------------
def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_price_file_adds_models_and_overrides_from_valid_from(tmp_path) -> None:
    path = _write(tmp_path, "prices.yaml", """
        models:
          - model: acme-large
            provider: Acme
            prices: {input_mtok: 2, output_mtok: 8, cache_read_mtok: 0.5}
          - model: gpt-4o-mini
            valid_from: 2026-02-01
            prices:
              input_mtok: 1
              output_mtok: {base: 2, tiers: [{start: 100000, price: 4}]}
        """)
    book = PriceBook(path, env={})
    acme = book(obs("acme", "acme-large", input_tokens=1_000_000, cached_input_tokens=200_000, output_tokens=1000))
    assert acme == Decimal("1.6") + Decimal("0.1") + Decimal("0.008")
    assert book(obs("other", "acme-large", input_tokens=10, output_tokens=1)) is None  # provider-specific entry
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    before = book(obs("openai", "gpt-4o-mini", datetime(2026, 1, 31, 23, tzinfo=timezone.utc), **usage))
    assert before == library("gpt-4o-mini", "openai", datetime(2026, 1, 31, 23, tzinfo=timezone.utc), **usage)
    assert book(obs("openai", "gpt-4o-mini", **usage)) == Decimal("0.001") + Decimal("0.002")
    assert book(obs("openai", "gpt-4o-mini", input_tokens=150_000, output_tokens=1000)) == (
        Decimal("0.15") + Decimal("0.004"))


def test_json_price_file_and_the_environment_variable(tmp_path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([{"model": "acme-small", "prices": {"input_mtok": "0.5", "output_mtok": 1}}]))
    book = PriceBook(env={"OTEL_LLM_PRICES_FILE": str(path)})
    assert book(obs("acme", "ACME-small", input_tokens=2_000_000, output_tokens=0)) == Decimal("1.0")


@pytest.mark.parametrize("text,message", [
    ("models: [{model: x, prices: {input_mtok: -1}}]", "finite number >= 0"),
    ("models: [{model: x, prices: {input_usd: 1}}]", "unknown price key"),
    ("models: [{model: x, prices: {cache_read_mtok: 1}}]", "at least input_mtok or output_mtok"),
    ("models: [{model: x, valid_from: someday, prices: {input_mtok: 1}}]", "valid_from must be a date"),
    ("models: [{prices: {input_mtok: 1}}]", "'model' must be a model name"),
    ("models: [{model: x, prices: {input_mtok: 1}}, {model: x, prices: {input_mtok: 2}}]", "two entries"),
    ("models: [{model: x, prices: {input_mtok: {base: 1, tiers: [{start: -5, price: 2}]}}}]", "tier 1 needs"),
    ("prices: []", "unknown top-level key"),
    ("models: [x: 1", "not valid YAML"),
])
def test_a_bad_price_file_is_refused_with_where_and_why(tmp_path, text, message) -> None:
    path = _write(tmp_path, "prices.yaml", text)
    with pytest.raises(PriceFileError, match=message) as info:
        load_price_file(path)
    assert str(path) in str(info.value)


def test_parse_prices_reads_an_empty_file_as_no_prices() -> None:
    assert parse_prices(None) == ()


# --- through derivation into PostgreSQL ---------------------------------------------------
def _derived(spans, pricer: PriceBook) -> list[RouteObservation]:
    return [o for o in (derive(s, pricer=pricer) for s in spans.get_finished_spans()) if o is not None]


def test_derived_costs_are_stored_with_their_basis(spans, book, pg_conn, pg_schema) -> None:
    with llm_span(provider="openai", model="gpt-4o-mini") as call:
        call.set_usage(input_tokens=1000, output_tokens=200, cache_read_input_tokens=400)
    with llm_span(provider="ollama", model="llama3.2") as call:
        call.set_usage(input_tokens=1000, output_tokens=200)
    with llm_span(provider="openai", model="mystery-model") as call:
        call.set_usage(input_tokens=1000, output_tokens=200)
    with llm_span(provider="anthropic", model="claude-sonnet-4-5") as call:
        call.set_usage(input_tokens=1000, output_tokens=200)
        call.set_cost(0.5)
    rows = _derived(spans, book)
    BatchWriter(pg_conn, pg_schema).write(rows)
    with pg_conn.transaction():
        stored = {r[0]: r[1:] for r in pg_conn.execute(
            "SELECT request_model, cost_usd, cost_basis, computed_cost_usd FROM route_observations "
            "WHERE span_id = ANY(%s)", ([o.span_id for o in rows],)).fetchall()}
    started = next(o.started_at for o in rows if o.request_model == "gpt-4o-mini")
    want = library("gpt-4o-mini", "openai", started, input_tokens=1000, cache_read_tokens=400, output_tokens=200)
    assert stored["gpt-4o-mini"] == (want, "computed", want)
    assert stored["llama3.2"] == (Decimal(0), "local", None)
    assert stored["mystery-model"] == (None, "unknown", None)
    reported_computed = library("claude-sonnet-4-5", "anthropic", started, input_tokens=1000, output_tokens=200)
    assert stored["claude-sonnet-4-5"] == (Decimal("0.5"), "reported", reported_computed)


def test_configure_prices_a_decorated_cloud_call_end_to_end(pg_dsn, fresh_schema, tmp_path) -> None:
    code = textwrap.dedent("""
        from otel_llm.decorator import llm_call
        from otel_llm.setup import configure

        @llm_call(provider="openai")
        def chat(model):
            return {"id": "chatcmpl-1", "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "ok"}}],
                    "usage": {"prompt_tokens": 1500, "completion_tokens": 120,
                              "prompt_tokens_details": {"cached_tokens": 1024}}}

        handle = configure(dsn=%(dsn)r)
        chat("gpt-4o-mini")
        handle.shutdown()
        """) % {"dsn": pg_dsn}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_LLM_SCHEMA=fresh_schema, OTEL_LLM_SPOOL_DIR=str(tmp_path / "spool"),
               OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    with connect(pg_dsn, fresh_schema) as conn:
        row = conn.execute("SELECT started_at, input_tokens, cached_input_tokens, output_tokens, cost_usd,"
                           " cost_basis FROM route_observations").fetchone()
    started, inp, cached, out, cost, basis = row
    assert (inp, out, basis) == (1500, 120, "computed")
    want = library("gpt-4o-mini", "openai", started, input_tokens=1500, cache_read_tokens=cached or 0,
                   output_tokens=120)
    assert cost == want
