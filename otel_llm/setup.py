"""``configure()``: one call for a working OpenTelemetry set-up, or a graft onto the app's own.

Two kinds of application call it:

* one with no OpenTelemetry set-up yet gets an SDK ``TracerProvider`` and
  ``MeterProvider`` whose resource honours ``OTEL_SERVICE_NAME`` and
  ``OTEL_RESOURCE_ATTRIBUTES``, exporting over OTLP when an ``OTEL_EXPORTER_OTLP_*``
  endpoint is set (``http/protobuf`` or ``grpc`` per ``OTEL_EXPORTER_OTLP_PROTOCOL``);
* one that already installed an SDK ``TracerProvider`` keeps it — and its exporters:
  otel-llm only adds its own span processors to it, once.

Either way the result is a :class:`Telemetry` handle; calling ``configure()`` again
returns the same handle and changes nothing. Telemetry set-up never raises into the
application: a component that cannot be built (an exporter whose library is missing,
say) is logged and left out, and everything else still works.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from otel_llm import semconv
from otel_llm._safety import report
from otel_llm.scope import ScopeSpanProcessor

logger = logging.getLogger("otel_llm")

#: Endpoint variables whose presence turns OTLP export on (per signal, or for both).
TRACES_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
METRICS_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
#: ``false`` turns off route observations (spans are still emitted).
ENV_OBSERVATIONS = "OTEL_LLM_OBSERVATIONS"
_FALSE = {"false", "0", "no", "off"}
PROTOCOL_GRPC = "grpc"
PROTOCOL_HTTP = "http/protobuf"


@dataclass(frozen=True)
class ConfigureOptions:
    """The arguments of one :func:`configure` call (compared to spot a conflicting second call)."""

    service_name: str | None = None
    resource_attributes: tuple[tuple[str, Any], ...] = ()
    console: bool = False
    otlp: bool | None = None
    span_processors: tuple[SpanProcessor, ...] = ()
    exporters: tuple[SpanExporter, ...] = ()
    metric_readers: tuple[MetricReader, ...] = ()
    observations: bool | None = None
    dsn: str | None = None
    prices_file: str | None = None


@dataclass
class Telemetry:
    """What :func:`configure` set up; the same object for every call in a process."""

    #: The provider spans go to: ours, or the one the application had installed.
    tracer_provider: trace.TracerProvider
    #: The provider metrics go to: ours, or the one the application had installed.
    meter_provider: metrics.MeterProvider
    #: The resource of the providers otel-llm created (None when both were reused).
    resource: Resource | None
    #: True when the application's own tracer provider was kept.
    reused_tracer_provider: bool
    #: True when the application's own meter provider was kept.
    reused_meter_provider: bool
    #: Where spans and metrics are exported to, e.g. ``("console", "otlp-traces/grpc")``.
    exporters: tuple[str, ...]
    options: ConfigureOptions
    #: Span processors otel-llm added (to its provider or to the application's).
    span_processors: tuple[SpanProcessor, ...] = ()
    _shut_down: bool = field(default=False, repr=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything buffered now; True when every part flushed in time."""
        ok = True
        for provider in (self.tracer_provider, self.meter_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is None:
                continue
            try:
                ok = bool(flush(timeout_millis)) and ok
            except Exception as exc:  # noqa: BLE001
                report("flushing telemetry", exc)
                ok = False
        return ok

    def shutdown(self) -> None:
        """Flush and stop what otel-llm created; a reused provider is left to its owner.

        Safe to call more than once. Processors otel-llm added to the application's
        provider are shut down too (each flushes first); the provider itself keeps running.
        """
        if self._shut_down:
            return
        self._shut_down = True
        if self.reused_tracer_provider:
            for processor in self.span_processors:
                try:
                    processor.shutdown()
                except Exception as exc:  # noqa: BLE001
                    report("shutting down a span processor", exc)
        else:
            _shutdown(self.tracer_provider, "the tracer provider")
        if not self.reused_meter_provider:
            _shutdown(self.meter_provider, "the meter provider")


def _shutdown(provider: Any, what: str) -> None:
    stop = getattr(provider, "shutdown", None)
    if stop is None:
        return
    try:
        stop()
    except Exception as exc:  # noqa: BLE001
        report(f"shutting down {what}", exc)


_lock = threading.Lock()
_handle: Telemetry | None = None


def configure(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    console: bool = False,
    otlp: bool | None = None,
    span_processors: Sequence[SpanProcessor] = (),
    exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    observations: bool | None = None,
    dsn: str | None = None,
    prices_file: str | os.PathLike[str] | None = None,
) -> Telemetry:
    """Set up (or join) the OpenTelemetry pipeline once; return the :class:`Telemetry` handle.

    * ``service_name`` and ``resource_attributes`` are defaults: ``OTEL_SERVICE_NAME`` and
      ``OTEL_RESOURCE_ATTRIBUTES`` win, so operators can rename a deployed service.
    * ``console=True`` prints every span to standard output (for examples and debugging).
    * ``otlp``: None (default) exports over OTLP when an ``OTEL_EXPORTER_OTLP_*ENDPOINT``
      variable is set or ``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER`` names ``otlp``;
      True always, False never.
    * ``span_processors``, ``exporters`` (span exporters, batched) and ``metric_readers``
      are added as given.
    * ``observations``: derive one route observation per provider-call attempt and
      store it in PostgreSQL — at ``dsn``, else ``OTEL_LLM_DSN``, else an embedded
      server in a local data folder. None (default) means on unless
      ``OTEL_LLM_OBSERVATIONS=false``. The database is reached from a background
      thread: nothing here waits for it, and an unreachable one loses nothing (the
      exporter spools to disk and replays).
    * ``prices_file``: the user's prices (YAML or JSON, see :mod:`processor.pricing_file`),
      else ``OTEL_LLM_PRICES_FILE``; they override or add to the price library's, which
      prices every observation whose cost the span does not report. A file that cannot
      be read is logged and the library's prices are used alone.

    When the application already installed an SDK ``TracerProvider`` it is kept: only
    otel-llm's processors (and ``console``/``span_processors``/``exporters``) are added to
    it, never the OTLP exporters, which its own pipeline is assumed to have. A second
    call returns the first call's handle; different arguments are ignored with a warning.
    ``OTEL_SDK_DISABLED=true`` leaves the global providers alone.
    """
    global _handle
    options = ConfigureOptions(
        service_name=service_name,
        resource_attributes=tuple((resource_attributes or {}).items()),
        console=bool(console),
        otlp=otlp,
        span_processors=tuple(span_processors),
        exporters=tuple(exporters),
        metric_readers=tuple(metric_readers),
        observations=observations,
        dsn=dsn,
        prices_file=None if prices_file is None else os.fspath(prices_file),
    )
    with _lock:
        if _handle is not None:
            if options != _handle.options and options != ConfigureOptions():
                logger.warning(
                    "otel-llm: configure() was already called in this process; "
                    "the arguments of this later call are ignored"
                )
            return _handle
        _handle = _configure(options)
        return _handle


def _configure(options: ConfigureOptions) -> Telemetry:
    if _env_true("OTEL_SDK_DISABLED"):
        return Telemetry(
            tracer_provider=trace.get_tracer_provider(), meter_provider=metrics.get_meter_provider(),
            resource=None, reused_tracer_provider=True, reused_meter_provider=True,
            exporters=(), options=options,
        )
    resource: Resource | None = None
    exporter_names: list[str] = []

    existing_tp = trace.get_tracer_provider()
    reused_tp = isinstance(existing_tp, TracerProvider)
    if reused_tp:
        tracer_provider = existing_tp
    else:
        resource = build_resource(options.service_name, dict(options.resource_attributes))
        tracer_provider = TracerProvider(resource=resource)
    processors = _span_processors(options, exporter_names, with_otlp=not reused_tp)
    added = _add_processors(tracer_provider, processors)  # type: ignore[arg-type]
    if not reused_tp:
        trace.set_tracer_provider(tracer_provider)
        if trace.get_tracer_provider() is not tracer_provider:  # another thread won the race
            _shutdown(tracer_provider, "an unused tracer provider")
            tracer_provider = trace.get_tracer_provider()  # type: ignore[assignment]
            reused_tp = True
            added = []
            if isinstance(tracer_provider, TracerProvider):
                added = _add_processors(tracer_provider, [p for p in processors if isinstance(p, ScopeSpanProcessor)])

    existing_mp = metrics.get_meter_provider()
    reused_mp = isinstance(existing_mp, MeterProvider)
    if reused_mp:
        meter_provider: metrics.MeterProvider = existing_mp
        if options.metric_readers:
            logger.warning(
                "otel-llm: configure(metric_readers=...) ignored: the application's MeterProvider "
                "is kept, and readers can only be given when a MeterProvider is created"
            )
    else:
        if resource is None:
            resource = build_resource(options.service_name, dict(options.resource_attributes))
        readers = list(options.metric_readers) + _metric_readers(options, exporter_names)
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
        if metrics.get_meter_provider() is not meter_provider:
            _shutdown(meter_provider, "an unused meter provider")
            meter_provider = metrics.get_meter_provider()
            reused_mp = True

    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        resource=resource,
        reused_tracer_provider=reused_tp,
        reused_meter_provider=reused_mp,
        exporters=tuple(exporter_names),
        options=options,
        span_processors=tuple(added),
    )


# --- resource -------------------------------------------------------------------------
def build_resource(service_name: str | None = None, attributes: Mapping[str, Any] | None = None) -> Resource:
    """The service's resource: code gives defaults, the environment decides.

    ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` override ``attributes`` and
    ``service_name``; ``service.instance.id`` defaults to a fresh id per process so that
    instances of one service can be told apart.
    """
    defaults: dict[str, Any] = {semconv.SERVICE_INSTANCE_ID: str(uuid.uuid4())}
    if service_name:
        defaults[semconv.SERVICE_NAME] = service_name
    defaults.update(attributes or {})
    from_env = dict(OTELResourceDetector().detect().attributes)
    return Resource.create({**defaults, **from_env})


# --- span side ----------------------------------------------------------------------
def _extra_span_processors(options: ConfigureOptions) -> list[SpanProcessor]:
    """Extension point: span processors otel-llm adds beyond scoping and exporting.

    The route-observation processor (spans -> per-attempt observations in PostgreSQL)
    is added here, so that every application that calls ``configure()`` gets it. The
    PostgreSQL exporter is built lazily on the processor's worker thread, so starting an
    embedded server or connecting never delays the application.
    """
    wanted = options.observations
    if wanted is None:
        wanted = os.environ.get(ENV_OBSERVATIONS, "true").strip().lower() not in _FALSE
    if not wanted:
        return []
    from exporters.lazy import LazyExporter
    from exporters.postgres.exporter import PostgresExporter
    from processor.span_processor import RouteObservationProcessor

    dsn = options.dsn

    def build() -> PostgresExporter:
        return PostgresExporter.from_env(dsn=dsn) if dsn else PostgresExporter.from_env()

    pricer = _built("pricing (prices file)", lambda: _pricer(options.prices_file))
    return [RouteObservationProcessor(LazyExporter(build, name="PostgreSQL exporter"), pricer=pricer)]


def _pricer(prices_file: str | None) -> Any:
    """The default pricer (price library + the user's file); without the file when the
    file cannot be used, so that calls are still priced."""
    from processor.pricing import PriceBook, default_pricer
    from processor.pricing_file import PriceFileError

    try:
        return default_pricer(prices_file)
    except PriceFileError as exc:
        report("reading the prices file (the price library's prices are used alone)", exc)
        return PriceBook(env={})


def _span_processors(options: ConfigureOptions, names: list[str], *, with_otlp: bool) -> list[SpanProcessor]:
    processors: list[SpanProcessor] = [ScopeSpanProcessor()]
    processors.extend(_built("otel-llm span processors", lambda: _extra_span_processors(options)) or [])
    processors.extend(options.span_processors)
    for exporter in options.exporters:
        processors.append(BatchSpanProcessor(exporter))
        names.append(type(exporter).__name__)
    wanted = _wanted_exporters("OTEL_TRACES_EXPORTER", TRACES_ENDPOINT_VARS, options)
    if options.console or "console" in wanted:
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
        names.append("console")
    if with_otlp and "otlp" in wanted:
        protocol = _protocol("TRACES")
        exporter = _built(f"the OTLP span exporter ({protocol})", lambda: _otlp_span_exporter(protocol))
        if exporter is not None:
            processors.append(BatchSpanProcessor(exporter))
            names.append(f"otlp-traces/{protocol}")
    return processors


def _add_processors(provider: TracerProvider, processors: Sequence[SpanProcessor]) -> list[SpanProcessor]:
    """Add ``processors`` to ``provider``; a ScopeSpanProcessor only if it has none yet."""
    added = []
    has_scope = any(isinstance(p, ScopeSpanProcessor) for p in _installed_processors(provider))
    for processor in processors:
        if isinstance(processor, ScopeSpanProcessor) and has_scope:
            continue
        try:
            provider.add_span_processor(processor)
            added.append(processor)
        except Exception as exc:  # noqa: BLE001
            report("adding a span processor", exc)
    return added


def _installed_processors(provider: TracerProvider) -> tuple[SpanProcessor, ...]:
    """The processors a provider already has (the SDK keeps them in a private field)."""
    active = getattr(provider, "_active_span_processor", None)
    return tuple(getattr(active, "_span_processors", ()))


def _otlp_span_exporter(protocol: str) -> SpanExporter:
    if protocol == PROTOCOL_GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter()


# --- metric side ----------------------------------------------------------------------
def _metric_readers(options: ConfigureOptions, names: list[str]) -> list[MetricReader]:
    readers: list[MetricReader] = []
    wanted = _wanted_exporters("OTEL_METRICS_EXPORTER", METRICS_ENDPOINT_VARS, options)
    if "otlp" in wanted:
        protocol = _protocol("METRICS")
        exporter = _built(f"the OTLP metric exporter ({protocol})", lambda: _otlp_metric_exporter(protocol))
        if exporter is not None:
            readers.append(PeriodicExportingMetricReader(exporter))
            names.append(f"otlp-metrics/{protocol}")
    return readers


def _otlp_metric_exporter(protocol: str) -> Any:
    if protocol == PROTOCOL_GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # type: ignore[assignment]
    return OTLPMetricExporter()


# --- environment ----------------------------------------------------------------------
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _wanted_exporters(variable: str, endpoint_vars: Sequence[str], options: ConfigureOptions) -> set[str]:
    """Exporter names for one signal: ``otlp``, ``console`` (``none`` turns all off)."""
    raw = os.environ.get(variable, "").strip()
    if raw:
        names = {n.strip().lower() for n in raw.split(",") if n.strip()}
        unknown = names - {"otlp", "console", "none"}
        if unknown:
            logger.warning("otel-llm: %s names exporters otel-llm does not set up: %s", variable, sorted(unknown))
        names = set() if "none" in names else names & {"otlp", "console"}
    else:
        names = {"otlp"} if any(os.environ.get(v, "").strip() for v in endpoint_vars) else set()
    if options.otlp is True:
        names.add("otlp")
    elif options.otlp is False:
        names.discard("otlp")
    return names


def _protocol(signal: str) -> str:
    value = (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "").strip()
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        or PROTOCOL_HTTP
    ).lower()
    if value == PROTOCOL_GRPC:
        return PROTOCOL_GRPC
    if value != PROTOCOL_HTTP:
        logger.warning("otel-llm: OTLP protocol %r is not supported; using %s", value, PROTOCOL_HTTP)
    return PROTOCOL_HTTP


def _built(what: str, build: Any) -> Any:
    """``build()``, or None (logged) when it fails: set-up never raises into the app."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001
        report(f"setting up {what}", exc)
        return None


def _reset_for_tests() -> None:
    """Forget the handle (the global providers stay: they can be set once per process)."""
    global _handle
    with _lock:
        _handle = None
