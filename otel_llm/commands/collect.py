"""``otel-llm collect``: receive OTLP traces, write route observations.

Listens for OTLP/gRPC (port 4317) and OTLP/HTTP (port 4318, /v1/traces, protobuf or
JSON, gzip) on 127.0.0.1 unless told otherwise, derives route observations from the
provider-call spans of any supported instrumentation (with what the rest of each trace
tells) and writes them to PostgreSQL. Every acknowledged request is in a local
write-ahead log first, so a crash or restart loses nothing that was acknowledged.
Logs a one-line summary every --summary-interval seconds; SIGTERM or Ctrl-C stops
accepting, writes everything acknowledged, and exits.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from otel_llm.commands.db import add_database_arguments

#: Environment variable holding the bearer token senders must present.
ENV_TOKEN = "OTEL_LLM_COLLECT_TOKEN"
_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

logger = logging.getLogger("otel_llm.collector")


def register(subparsers: Any) -> None:
    """Add ``collect``."""
    parser = subparsers.add_parser("collect", help="OTLP trace receiver: spans in, route observations out",
                                   description=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC port, -1 for none (default 4317)")
    parser.add_argument("--http-port", type=int, default=4318, help="OTLP/HTTP port, -1 for none (default 4318)")
    add_database_arguments(parser)
    parser.add_argument("--wal-dir", type=Path,
                        help="write-ahead log directory (default: <data dir>/collect/<schema>)")
    parser.add_argument("--max-wal-bytes", type=int, default=256 * 1024 * 1024,
                        help="bytes logged but not yet written before senders are told to retry (default 256 MiB)")
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024,
                        help="largest request body, compressed or not (default 16 MiB)")
    parser.add_argument("--token", help=f"bearer token senders must present (default: {ENV_TOKEN}, else none)")
    parser.add_argument("--forward", metavar="URL",
                        help="also send every received request, unchanged, to this OTLP/HTTP traces URL")
    parser.add_argument("--capture-content", action="store_true",
                        help=f"keep message content in attributes (default: off, unless {_CAPTURE_ENV}=true)")
    parser.add_argument("--trace-hold", type=float, default=5.0, metavar="SECONDS",
                        help="how long a trace's spans wait for the rest of the trace (default 5)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes deriving observations (traces split by trace id; default 1)")
    parser.add_argument("--summary-interval", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between summary lines, 0 for none (default 10)")
    parser.set_defaults(handler=_collect)


def _collect(args: argparse.Namespace) -> int:
    from exporters.postgres.embedded import data_dir, redact_dsn, resolve_dsn
    from exporters.postgres.exporter import PostgresExporter
    from exporters.postgres.schema import resolve_schema
    from processor.collector.service import Collector, CollectorOptions
    from processor.pricing import default_pricer

    _log_to_stderr()
    schema = resolve_schema(args.schema)
    options = CollectorOptions(
        wal_dir=args.wal_dir or data_dir() / "collect" / schema,  # one log per schema written to
        host=args.host,
        grpc_port=None if args.grpc_port < 0 else args.grpc_port,
        http_port=None if args.http_port < 0 else args.http_port,
        max_body_bytes=args.max_body_bytes,
        max_wal_bytes=args.max_wal_bytes,
        token=args.token or os.environ.get(ENV_TOKEN) or None,
        forward_url=args.forward,
        capture_content=args.capture_content
        or os.environ.get(_CAPTURE_ENV, "").strip().lower() in ("true", "1", "yes"),
        trace_hold_s=args.trace_hold,
        workers=max(1, args.workers),
    )
    dsn = args.dsn or resolve_dsn()  # once, here: workers must not each start a server
    exporter_factory = functools.partial(PostgresExporter.from_env, dsn=dsn, schema=schema)
    collector = Collector(options, exporter_factory, pricer_factory=default_pricer)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    collector.start()
    for line in collector.where():
        logger.warning("otel-llm collect: %s", line)
    logger.warning("otel-llm collect: writing route observations to %s, schema %s (%d worker %s)",
                   redact_dsn(dsn), schema, options.workers, "process" if options.workers == 1 else "processes")
    interval = args.summary_interval if args.summary_interval > 0 else float("inf")
    next_summary = time.monotonic() + interval
    while not stop.wait(min(1.0, max(0.0, next_summary - time.monotonic()))):
        if collector.failure is not None:
            logger.error("otel-llm collect: %s", collector.failure)
            collector.stop(timeout_s=10)
            return 2
        if time.monotonic() >= next_summary:
            logger.warning("otel-llm collect: %s", collector.summary())
            next_summary += interval
    logger.warning("otel-llm collect: stopping: writing what was acknowledged")
    drained = collector.stop()
    logger.warning("otel-llm collect: stopped; %s", collector.summary())
    if not drained:
        logger.warning("otel-llm collect: not everything could be written; the rest is kept in %s "
                       "and written by the next run", options.wal_dir)
    return 0


def _log_to_stderr() -> None:
    """The collector's own lines go to stderr whatever the command line's log level."""
    log = logging.getLogger("otel_llm.collector")
    if not any(getattr(h, "_otel_llm_collect", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        handler._otel_llm_collect = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO if logging.getLogger().level <= logging.INFO else logging.WARNING)
