"""The derivation compiled per attribute layout gives exactly the general path's observation.

:mod:`processor.derive_compiled` is a shortcut for the usual span; here every span is
derived twice, once as it is and once with the compiled path switched off, and the two
observations must be equal field by field: for the recorded spans of other
instrumentations, for spans of our own SDK, and for attribute sets generated from every
alias name with usable, blank and unusable values.
"""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import processor.derive as derive_module
from otel_llm import LLMCall, semconv
from processor import aliases
from processor.collector.otlp import parse_request, span_records
from processor.derive import derive, derive_from_parts
from processor.observation import RouteObservation
from processor.pricing import default_pricer
from processor.trace_inference import derive_trace

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
START_NS = 1_796_000_000_123_456_789


@contextlib.contextmanager
def general_path_only() -> Iterator[None]:
    """Derivation with no compiled layout: every span goes the general way."""
    saved_compile, saved_layouts = derive_module.compile_fast_path, derive_module._LAYOUTS
    derive_module.compile_fast_path = lambda *args: None
    derive_module._LAYOUTS = {}
    try:
        yield
    finally:
        derive_module.compile_fast_path = saved_compile
        derive_module._LAYOUTS = saved_layouts


@contextlib.contextmanager
def fresh_layouts() -> Iterator[None]:
    saved = derive_module._LAYOUTS
    derive_module._LAYOUTS = {}
    try:
        yield
    finally:
        derive_module._LAYOUTS = saved


def both_ways(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    with fresh_layouts():
        fn(*args, **kwargs)  # a layout is compiled when first seen: the second call uses it
        compiled = fn(*args, **kwargs)
    with general_path_only():
        general = fn(*args, **kwargs)
    return compiled, general


def assert_same(compiled: RouteObservation | None, general: RouteObservation | None) -> None:
    if general is None:
        assert compiled is None
        return
    assert compiled is not None
    assert compiled._asdict() == general._asdict()
    # Equal values of the same types (a Decimal cost stays a Decimal, 0 stays an int).
    assert [type(v) for v in compiled] == [type(v) for v in general]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
@pytest.mark.parametrize("pricer", [None, "library"])
def test_recorded_spans_of_other_instrumentations_derive_the_same(path: Path, pricer: Any) -> None:
    records = span_records(parse_request(path.read_bytes(), "application/json").payload)
    price = default_pricer() if pricer else None
    compiled, general = both_ways(derive_trace, records, pricer=price)
    assert len(compiled.observations) == len(general.observations)
    for a, b in zip(compiled.observations, general.observations):
        assert_same(a, b)
    assert compiled.malformed == general.malformed


def our_span(spans: Any, **changes: Any) -> Any:
    if changes.pop("parent", False):
        with trace.get_tracer("tests").start_as_current_span("invoke_agent support"):
            return our_span(spans, **changes)
    call = LLMCall(provider=changes.pop("provider", "openai"), model=changes.pop("model", "gpt-4o-mini"),
                   agent="support", route=changes.pop("route", None), server_address="api.openai.com",
                   server_port=443, attempt=1, tools=changes.pop("tools_offered", None))
    call.set_response(model="gpt-4o-mini-2024-07-18", id="resp-1", finish_reasons=["stop"])
    call.set_usage(input_tokens=120, output_tokens=30, cache_read_input_tokens=20)
    if changes.pop("fail", False):
        call.fail("RateLimitError")
    if changes.pop("exception", False):  # an ERROR status named only by its exception event
        call.span.record_exception(TimeoutError("provider timed out"))
        call.span.set_status(Status(StatusCode.ERROR))
    for key, value in changes.items():
        call.span.set_attribute(key, value)
    call.end()
    return next(s for s in reversed(spans.get_finished_spans()) if s.context.span_id == call.span.get_span_context().span_id)


def _raising_pricer(observation: RouteObservation) -> Decimal:
    raise LookupError("no price for this model")


@pytest.mark.parametrize("changes", [
    {},
    {"fail": True},
    {"exception": True},
    {"parent": True},
    {"route": "support-primary", "tools_offered": 3},
    {"provider": "ollama", "model": "llama3.2"},
    {semconv.OTEL_LLM_TAGS_PREFIX + "team": "billing", semconv.OTEL_LLM_TAGS_PREFIX + "tier": ["a", "b"]},
    {"gen_ai.request.temperature": 0.2, "app.blob": "x" * 5000, "app.nan": float("nan")},
    {semconv.GEN_AI_USAGE_INPUT_TOKENS: "many"},  # unusable: the general path reports it
    {semconv.GEN_AI_USAGE_INPUT_TOKENS: " "},  # blank: absent
    {semconv.OTEL_LLM_COST_USD: 0.25},  # a reported cost: the general path's branch
    {semconv.SERVICE_NAME: "from-span"},
])
@pytest.mark.parametrize("pricer", [None, "library", "callable", "raising"])
def test_our_own_spans_derive_the_same(spans: Any, changes: dict[str, Any], pricer: Any) -> None:
    span = our_span(spans, **changes)
    price = {None: None, "library": default_pricer(), "callable": lambda obs: Decimal("0.5"),
             "raising": _raising_pricer}[pricer]
    compiled, general = both_ways(derive, span, pricer=price)
    assert_same(compiled, general)


def test_the_usual_span_takes_the_compiled_path_and_is_priced(spans: Any) -> None:
    span = our_span(spans)
    with fresh_layouts():
        derive(span, pricer=default_pricer())
        (layout,) = derive_module._LAYOUTS.values()
        calls = []
        compiled = layout.fast_span
        layout.fast_span = lambda *args: calls.append(args) or compiled(*args)
        observation = derive(span, pricer=default_pricer())
    assert layout.fast is not None and len(calls) == 1
    assert observation is not None
    assert observation.cost_basis == semconv.COST_BASIS_COMPUTED
    assert observation.cost_usd is not None and observation.cost_usd > 0
    assert observation.computed_cost_usd == observation.cost_usd


def test_a_raising_pricer_on_the_compiled_path_leaves_the_cost_unknown_and_says_so(spans: Any, caplog: Any) -> None:
    from otel_llm._safety import reset_for_tests

    span = our_span(spans)
    with fresh_layouts():
        derive(span)  # compiles the layout
        reset_for_tests()
        with caplog.at_level(logging.WARNING, logger="otel_llm"):
            observation = derive(span, pricer=_raising_pricer)
    assert observation is not None
    assert (observation.cost_usd, observation.cost_basis, observation.computed_cost_usd) == (None, "unknown", None)
    assert "no price for this model" in caplog.text


# --- generated attribute sets ---------------------------------------------------------------
ALIAS_NAMES = sorted({name for pairs in derive_module._FIELDS.values() for name, _conv in pairs}
                     | {semconv.GEN_AI_OPERATION_NAME, aliases.TL_LLM_REQUEST_TYPE, aliases.OI_SPAN_KIND,
                        semconv.OTEL_LLM_TAGS_PREFIX + "team", "app.other", "gen_ai.prompt.0.content"})
VALUES = st.one_of(
    st.sampled_from(["chat", "openai", "ollama", "gpt-4o-mini", "LLM", "localhost", "http://127.0.0.1:11434",
                     "", "  ", "true", "0", "<class 'openai.RateLimitError'>", "12", "-3", "many"]),
    st.integers(min_value=-5, max_value=10_000),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.sampled_from(["stop", "length", ""]), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attributes=st.dictionaries(st.sampled_from(ALIAS_NAMES), VALUES, max_size=14),
    operation=st.sampled_from(["chat", "embeddings", "text_completion"]),
    status=st.sampled_from([StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR]),
    parent=st.sampled_from([None, 7, b"\x00" * 8, "not-an-id"]),
    capture_content=st.booleans(),
    priced=st.booleans(),
)
def test_generated_attribute_sets_derive_the_same(attributes: dict[str, Any], operation: str, status: Any,
                                                  parent: Any, capture_content: bool, priced: bool) -> None:
    attributes = {semconv.GEN_AI_OPERATION_NAME: operation, **attributes}
    parts = dict(trace_id=0x1234, span_id=0x5678, parent_span_id=parent, start_time_ns=START_NS,
                 end_time_ns=START_NS + 2_500_000, attributes=attributes, status_code=status,
                 resource_attributes={semconv.SERVICE_NAME: "svc"},
                 events=[("exception", {semconv.EXCEPTION_TYPE: "ValueError"})],
                 capture_content=capture_content, pricer=default_pricer() if priced else None)
    compiled, general = both_ways(derive_from_parts, **parts)
    assert_same(compiled, general)
