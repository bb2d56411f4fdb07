"""Collector mode: OTLP trace receivers (gRPC, HTTP) and their durable pipeline into route
observations (``otel-llm collect``). See :mod:`processor.collector.service`."""
