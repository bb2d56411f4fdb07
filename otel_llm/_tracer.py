"""The tracer and meter otel-llm writes with, taken from the global providers.

The API's proxy objects follow a provider installed later, so an application may call
``otel_llm.configure()`` (or install its own provider) after importing otel-llm.
"""

from __future__ import annotations

from functools import lru_cache

from opentelemetry import metrics, trace

from otel_llm import semconv

try:
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("otel-llm")
except Exception:  # pragma: no cover - running from a source tree without metadata
    VERSION = "0.0.0"


@lru_cache(maxsize=1)
def tracer() -> trace.Tracer:
    """The otel-llm tracer (a proxy until a real provider is set)."""
    return trace.get_tracer(semconv.INSTRUMENTATION_NAME, VERSION)


@lru_cache(maxsize=1)
def meter() -> metrics.Meter:
    """The otel-llm meter (a proxy until a real provider is set)."""
    return metrics.get_meter(semconv.INSTRUMENTATION_NAME, VERSION)
