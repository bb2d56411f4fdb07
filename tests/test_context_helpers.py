"""otel_llm._context gives what the OpenTelemetry context API gives, with the standard
runtime context and with any other one."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

from otel_llm import _context


@pytest.fixture(params=["standard", "another runtime context"])
def runtime(request, monkeypatch):
    if request.param != "standard":
        monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", ContextVarsRuntimeContext())
    return request.param


def test_current_with_span_attach_and_detach_agree_with_the_api(runtime):
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    outer = otel_context.get_current()
    assert _context.current() is outer
    ctx = _context.with_span(span)
    assert type(ctx) is Context
    assert ctx == trace.set_span_in_context(span)
    token = _context.attach(ctx)
    assert otel_context.get_current() is ctx
    assert trace.get_current_span() is span
    _context.detach(token)
    assert otel_context.get_current() is outer


def test_detach_of_a_used_token_logs_as_the_api_does_and_never_raises(runtime, caplog):
    token = _context.attach(_context.with_span(trace.INVALID_SPAN))
    _context.detach(token)
    with caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
        _context.detach(token)  # a token can be used once
    assert any("Failed to detach context" in r.getMessage() for r in caplog.records)


def test_attach_span_makes_the_span_current_as_attach_with_span_does(runtime):
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    outer = otel_context.get_current()
    token = _context.attach_span(span)
    assert trace.get_current_span() is span
    assert otel_context.get_current() == trace.set_span_in_context(span, outer)
    _context.detach(token)
    assert otel_context.get_current() is outer


def test_instrumentation_mode_reads_suppression_through_either_runtime_context(runtime):
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    from otel_llm.instrumentation import _base

    assert _base.mode() == (_base.OWN, None)
    with suppress_instrumentation():
        assert _base.mode() == (_base.OFF, None)
    assert _base.mode() == (_base.OWN, None)
