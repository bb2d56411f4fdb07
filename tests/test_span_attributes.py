"""A call's response attributes stored directly in the SDK's span: the same result as
``span.set_attributes``, whatever the values, limits or span state."""

from __future__ import annotations

import enum
import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan

from otel_llm import llm_span, semconv
from otel_llm import _span_attributes as span_attributes
from otel_llm._span_attributes import _set_directly, direct_path_enabled, set_span_attributes


class Colour(str, enum.Enum):
    RED = "red"


START = {"gen_ai.request.model": "m", "probe.kept": 1}

CASES: dict[str, dict[str, Any]] = {
    "plain values": {"a.str": "x", "a.int": 7, "a.float": 0.25, "a.bool": False, "a.zero": 0},
    "lists of plain values become tuples": {"a.reasons": ["stop"], "a.names": ["f", "g"], "a.empty": []},
    "tuples and mixed plain lists": {"a.tuple": ("x", 1), "a.mixed": [1, "b", 2.5, True]},
    "nested and mapping values": {"a.nested": [1, [2, 3]], "a.map": {"k": "v"}, "a.plain": "p"},
    "bytes, None inside a list, str subclasses": {"a.bytes": b"\x00", "a.none_in": ["x", None], "a.enum": Colour.RED},
    "an object the SDK turns into its str": {"a.obj": 3 + 4j, "a.int": 1},
    "a start attribute set again": {"probe.kept": 2, "a.new": "n"},
}


def _twins(limits: SpanLimits | None = None) -> tuple[Any, Any, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits) if limits is not None else TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    return tracer.start_span("direct", attributes=START), tracer.start_span("public", attributes=START), exporter


def _same_as_public(direct: Any, public: Any, exporter: InMemorySpanExporter) -> None:
    direct.end()
    public.end()
    got, want = (s for s in sorted(exporter.get_finished_spans(), key=lambda s: s.name))
    assert dict(got.attributes) == dict(want.attributes)
    assert {k: type(v) for k, v in got.attributes.items()} == {k: type(v) for k, v in want.attributes.items()}
    assert got.dropped_attributes == want.dropped_attributes


def test_the_installed_sdk_passes_the_probe():
    # The direct path is what the instrumentation's overhead figures are measured with.
    assert direct_path_enabled()


def test_the_probe_does_not_depend_on_limits_set_in_the_environment(monkeypatch):
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    monkeypatch.setattr(span_attributes, "_direct_class", False)  # probe again
    assert direct_path_enabled()


@pytest.mark.parametrize("values", list(CASES.values()), ids=list(CASES))
def test_direct_store_gives_what_set_attributes_gives(values):
    direct, public, exporter = _twins()
    assert _set_directly(direct, values)  # taken, not handed back whole
    public.set_attributes(values)
    _same_as_public(direct, public, exporter)


READY_CASES: dict[str, dict[str, Any]] = {
    "plain values": {"a.str": "x", "a.int": 7, "a.float": 0.25, "a.bool": False},
    "tuples of str": {"a.reasons": ("stop",), "a.names": ("f", "g")},
    "a start attribute set again": {"probe.kept": 2, "a.new": "n"},
}


@pytest.mark.parametrize("values", list(READY_CASES.values()), ids=list(READY_CASES))
def test_a_ready_mapping_is_stored_as_set_attributes_stores_it(values):
    direct, public, exporter = _twins()
    assert _set_directly(direct, values, True)
    public.set_attributes(values)
    _same_as_public(direct, public, exporter)


@pytest.mark.parametrize("limits", [SpanLimits(max_span_attribute_length=1), SpanLimits(max_span_attributes=3)])
def test_a_ready_mapping_still_meets_the_limits_in_force(limits):
    values = {"a.long": "truncated", "a.longs": ("abc", "de"), "a.int": 1}
    direct, public, exporter = _twins(limits)
    set_span_attributes(direct, values, True)
    public.set_attributes(values)
    _same_as_public(direct, public, exporter)


def test_values_an_application_sets_are_cleaned_though_the_rest_is_ready(spans):
    """A list (or any value not plain) set by the application takes the SDK's cleaning,
    not the one-step store of otel-llm's own ready values."""
    with llm_span(provider="openai", model="m") as call:
        call.set_response(model="m-1", finish_reasons="stop")
        call.set_attribute("app.tags", ["a", "b"])
        call.set_attributes({"app.ids": [1, 2]})
        call.add_tool_call("lookup", "call-1")
    (span,) = spans.get_finished_spans()
    a = span.attributes
    assert a["app.tags"] == ("a", "b") and type(a["app.tags"]) is tuple
    assert a["app.ids"] == (1, 2) and type(a["app.ids"]) is tuple
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert a[semconv.OTEL_LLM_TOOL_CALL_NAMES] == ("lookup",) and a[semconv.OTEL_LLM_TOOL_CALL_IDS] == ("call-1",)


def test_otel_llms_own_values_are_stored_as_the_sdk_stores_them(spans):
    with llm_span(provider="openai", model="m") as call:
        call.set_response(model="m-1", id="r", finish_reasons=["stop", "length"])
        call.set_usage(input_tokens=3, output_tokens=2, cache_read_input_tokens=1)
        call.add_tool_call("lookup", "call-1")
        call.set_http_status(200)
        call.set_cost(0.5)
    (span,) = spans.get_finished_spans()
    a = span.attributes
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "length")
    assert type(a[semconv.GEN_AI_RESPONSE_FINISH_REASONS]) is tuple
    assert type(a[semconv.OTEL_LLM_TOOL_CALL_NAMES]) is tuple and type(a[semconv.OTEL_LLM_TOOL_CALL_IDS]) is tuple
    assert a[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 3 and a[semconv.HTTP_RESPONSE_STATUS_CODE] == 200
    assert a[semconv.OTEL_LLM_COST_USD] == 0.5


@pytest.mark.parametrize("values", list(CASES.values()), ids=list(CASES))
def test_value_length_limit_is_applied_as_by_the_sdk(values):
    direct, public, exporter = _twins(SpanLimits(max_span_attribute_length=1))
    set_span_attributes(direct, {**values, "a.long": "truncated", "a.longs": ["abc", "de"]})
    public.set_attributes({**values, "a.long": "truncated", "a.longs": ["abc", "de"]})
    _same_as_public(direct, public, exporter)


def test_attribute_count_limit_drops_as_the_sdk_does():
    values = {f"a.{i}": i for i in range(6)}
    direct, public, exporter = _twins(SpanLimits(max_span_attributes=4))
    set_span_attributes(direct, values)
    public.set_attributes(values)
    _same_as_public(direct, public, exporter)
    (one, _) = exporter.get_finished_spans()
    assert one.dropped_attributes == 4  # two start attributes and six more, four kept


def test_an_ended_span_is_left_as_it_was(caplog):
    direct, public, exporter = _twins()
    direct.end()
    public.end()
    with caplog.at_level(logging.WARNING):
        set_span_attributes(direct, {"a.late": 1})
    public.set_attributes({"a.late": 1})
    assert "a.late" not in direct.attributes
    assert dict(direct.attributes) == dict(public.attributes)
    assert "ended span" in caplog.text  # the SDK's own warning, as for any late attribute


@pytest.mark.parametrize("span", [INVALID_SPAN, NonRecordingSpan(INVALID_SPAN.get_span_context())])
def test_other_span_classes_take_their_own_method(span):
    set_span_attributes(span, {"a.str": "x", "a.list": ["y"]})  # no error, nothing recorded
    assert not span.is_recording()


def test_a_call_records_odd_names_and_values_as_the_sdk_would(spans, caplog):
    with caplog.at_level(logging.WARNING):
        with llm_span(provider="openai", model="m") as call:
            call.set_response(model="m-1", id="r-1", finish_reasons=["stop", "length"])
            call.set_attribute("app.colour", Colour.RED)
            call.set_attribute("app.nested", [1, [2]])
            call.set_attribute("", "dropped")
            call.set_attributes({7: "dropped", "app.ok": "kept", "app.none": None})
    (span,) = spans.get_finished_spans()
    a = span.attributes
    assert a[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "length")
    assert a[semconv.GEN_AI_RESPONSE_MODEL] == "m-1" and a[semconv.GEN_AI_RESPONSE_ID] == "r-1"
    assert a["app.colour"] == "red" and type(a["app.colour"]) is not str  # the SDK keeps it as given
    assert a["app.nested"] == (1, (2,))
    assert a["app.ok"] == "kept"
    assert "" not in a and 7 not in a and "app.none" not in a
    assert "invalid key" in caplog.text  # said by the SDK, the call went on
