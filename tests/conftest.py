"""Shared fixtures: one real OpenTelemetry SDK set-up for the whole run.

The global tracer and meter providers can be set once per process, so the session
installs an SDK TracerProvider with an in-memory span exporter and a MeterProvider with
an in-memory metric reader; each test starts from an empty exporter.
"""

from __future__ import annotations

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm.scope import ScopeSpanProcessor

_EXPORTER = InMemorySpanExporter()
_READER = InMemoryMetricReader()
_PROVIDER = TracerProvider(resource=Resource.create({"service.name": "otel-llm-tests"}))
_PROVIDER.add_span_processor(ScopeSpanProcessor())
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)
_METER_PROVIDER = MeterProvider(metric_readers=[_READER], resource=_PROVIDER.resource)
metrics.set_meter_provider(_METER_PROVIDER)


@pytest.fixture
def tracer_provider() -> TracerProvider:
    """The process-wide SDK tracer provider the tests run under."""
    return _PROVIDER


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The in-memory span exporter, emptied before the test."""
    _EXPORTER.clear()
    return _EXPORTER


@pytest.fixture
def metric_reader() -> InMemoryMetricReader:
    """The in-memory metric reader; call ``collect_points(reader)`` to read what was recorded."""
    _READER.get_metrics_data()  # drain what earlier tests recorded (delta is not used; cumulative)
    return _READER


def collect_points(reader: InMemoryMetricReader, name: str) -> list:
    """All data points of the metric ``name`` currently held by ``reader``."""
    data = reader.get_metrics_data()
    points = []
    if data is None:
        return points
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points
