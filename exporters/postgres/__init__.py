"""Route observations in PostgreSQL: schema migrations, the durable writer, read queries.

- :class:`PostgresExporter` — the exporter (idempotent batches, rollups, spool while down).
- :func:`migrate` — bring a schema to the latest version (also ``otel-llm db migrate``).
- :func:`prune` — drop data older than a cutoff (also ``otel-llm db prune``).
- :func:`route_stats` — per-route stats over a window (also ``otel-llm routes``).
- :func:`resolve_dsn` — ``OTEL_LLM_DSN`` or the embedded server (also ``otel-llm db url``).
"""

from exporters.postgres.durations import parse_duration
from exporters.postgres.embedded import EmbeddedServerError, resolve_dsn, start_embedded, stop_embedded
from exporters.postgres.exporter import PostgresExporter
from exporters.postgres.migrate import migrate
from exporters.postgres.partitions import prune
from exporters.postgres.route_stats import RouteStats, RouteStatsReport, route_stats
from exporters.postgres.schema import DEFAULT_SCHEMA, connect, resolve_schema

__all__ = [
    "DEFAULT_SCHEMA",
    "EmbeddedServerError",
    "PostgresExporter",
    "RouteStats",
    "RouteStatsReport",
    "connect",
    "migrate",
    "parse_duration",
    "prune",
    "resolve_dsn",
    "resolve_schema",
    "route_stats",
    "start_embedded",
    "stop_embedded",
]
