"""GenAI client metrics: operation duration, token usage, time to first chunk.

Instruments use the bucket boundaries the semantic conventions give, as advisory
boundaries, so any SDK view the user configures still wins. Every point carries the
operation, provider, model, server, agent and route, and ``error.type`` on failures.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Mapping

from opentelemetry import metrics
from opentelemetry.metrics import Histogram, NoOpMeterProvider
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.metrics._internal import _ProxyMeterProvider

from otel_llm import semconv
from otel_llm._tracer import meter

#: Span attributes copied onto every metric point (low cardinality only: never ids).
METRIC_ATTRIBUTE_KEYS: tuple[str, ...] = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
    semconv.GEN_AI_AGENT_NAME,
    semconv.OTEL_LLM_ROUTE,
    semconv.ERROR_TYPE,
)
#: Metric attributes known only when the call ends.
_END_KEYS = (semconv.GEN_AI_RESPONSE_MODEL, semconv.ERROR_TYPE)


class Instruments:
    """The three histograms, created once per process."""

    __slots__ = ("duration", "tokens", "ttfc")

    def __init__(self) -> None:
        m = meter()
        self.duration: Histogram = m.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.tokens: Histogram = m.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(semconv.TOKEN_BUCKETS),
        )
        self.ttfc: Histogram = m.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the request to the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )


@lru_cache(maxsize=1)
def instruments() -> Instruments:
    """The process-wide instruments."""
    return Instruments()


_provider_seen = False
#: A provider named in the environment is created by the API on first use: ask the API then.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_METER_PROVIDER" in os.environ


def metrics_enabled() -> bool:
    """False while no MeterProvider is installed: then there is no point building points.

    The API's global provider is a proxy until the application sets one; recording
    through it does nothing, so otel-llm skips the work of choosing attributes. A real
    provider, once set, stays set (the API allows setting it once), so that answer is
    remembered; until then each call asks again.
    """
    global _provider_seen
    if _provider_seen:
        return True
    if not _PROVIDER_FROM_ENV and _metrics_api.__dict__.get("_METER_PROVIDER", _metrics_api) is None:
        return False  # nothing set yet: the cheap answer, without the API's environment lookup
    if isinstance(metrics.get_meter_provider(), (_ProxyMeterProvider, NoOpMeterProvider)):
        return False
    _provider_seen = True
    return True


def record_call(
    start_attributes: Mapping[str, Any],
    end_attributes: Mapping[str, Any],
    duration_s: float,
    input_tokens: int | None,
    output_tokens: int | None,
    ttfc_s: float | None,
) -> None:
    """Record one finished call's points.

    Each point carries the low-cardinality subset (:data:`METRIC_ATTRIBUTE_KEYS`) of the
    span's attributes, those set at its start and those set by its end (response model,
    ``error.type``).
    """
    if not metrics_enabled():
        return
    point = {k: start_attributes[k] for k in METRIC_ATTRIBUTE_KEYS if k in start_attributes}
    for key in _END_KEYS:
        if key in end_attributes:
            point[key] = end_attributes[key]
    inst = instruments()
    inst.duration.record(duration_s, point)
    if input_tokens is not None:
        inst.tokens.record(input_tokens, {**point, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_INPUT})
    if output_tokens is not None:
        inst.tokens.record(output_tokens, {**point, semconv.GEN_AI_TOKEN_TYPE: semconv.TOKEN_TYPE_OUTPUT})
    if ttfc_s is not None:
        inst.ttfc.record(ttfc_s, point)
