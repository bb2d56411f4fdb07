"""Worker processes: the CPU-heavy part of the pipeline on more than one core.

Converting spans and deriving observations is Python work, bound by one interpreter
lock. With ``workers > 1`` the collector splits every logged request by trace id
(:func:`~processor.collector.otlp.split_by_trace`: a trace always goes to the same
worker, so trace-aware inference still sees whole traces) and sends the parts to worker
processes, each running a :class:`~processor.collector.stage.Stage` with its own
exporter connection. A worker reports which parts are done; the collector's process
keeps the log, the checkpoint and the receivers, so durability is unchanged: a part not
reported done is read and sent again after a restart.

Messages, parent to worker: ``(seq, payload)``, then ``None`` = drain and stop. Worker
to parent: ``("done", [seq, ...], counters, spans held)`` and finally ``("stopped", ...)``.
A worker that dies makes the collector stop without a checkpoint past its parts.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from exporters.base import ObservationExporter
from processor.collector.stage import COUNTERS, Stage
from processor.derive import Pricer
from processor.trace_inference import TraceBuffer

logger = logging.getLogger("otel_llm.collector")

#: Messages read per round before the worker derives and reports.
_READ_PER_ROUND = 64
#: Seconds between two counter reports of an otherwise quiet worker.
_REPORT_INTERVAL_S = 0.5
#: Bytes of parts a worker holds unread before it stops reading its pipe.
_INBOX_BYTES = 64 * 1024 * 1024


class WorkerDied(RuntimeError):
    """A worker process exited or its pipe broke."""


class WorkerHandle:
    """The collector's side of one worker process."""

    def __init__(self, index: int, exporter_factory: Callable[[], ObservationExporter],
                 pricer_factory: Callable[[], Pricer | None] | None, options: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.index = index
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=worker_main, name=f"otel-llm-collect-worker-{index}",
                                   args=(child, exporter_factory, pricer_factory, options), daemon=True)
        self.process.start()
        child.close()
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.held = 0
        self.stopped = False

    def send(self, seq: int, payload: bytes) -> None:
        try:
            self.conn.send((seq, payload))
        except (OSError, EOFError) as exc:
            raise WorkerDied(f"worker process {self.index} is gone ({exc})") from None

    def finish(self) -> None:
        """Ask the worker to drain and stop."""
        try:
            self.conn.send(None)
        except (OSError, EOFError) as exc:
            raise WorkerDied(f"worker process {self.index} is gone ({exc})") from None

    def receive(self) -> list[int]:
        """Read every report waiting; the seqs of parts done."""
        done: list[int] = []
        try:
            while not self.stopped and self.conn.poll():  # (after "stopped" the pipe only says EOF)
                kind, seqs, counts, held = self.conn.recv()
                done.extend(seqs)
                self.counts, self.held = counts, held
                if kind == "stopped":
                    self.stopped = True
        except (OSError, EOFError) as exc:
            raise WorkerDied(f"worker process {self.index} exited ({exc})") from None
        return done

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def worker_main(conn: Connection, exporter_factory: Callable[[], ObservationExporter],
                pricer_factory: Callable[[], Pricer | None] | None, options: dict[str, Any]) -> None:
    """The worker process: read parts, derive, export, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the collector's process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(options.get("log_level", logging.WARNING))
    stage = Stage(exporter_factory(), buffer=TraceBuffer(hold_s=options["hold_s"], max_spans=options["max_spans"]),
                  capture_content=options["capture_content"],
                  pricer=pricer_factory() if pricer_factory is not None else None)
    inbox = _Inbox(conn)
    stopping = False
    last_report = 0.0
    try:
        while True:
            wait = 0.0 if stopping else (0.05 if len(stage.buffer) else 0.25)
            for message in inbox.take(_READ_PER_ROUND, wait):
                if message is None:
                    stopping = True
                    break
                stage.add(*message)
            done = stage.step(everything=stopping)
            now = time.monotonic()
            if done or now - last_report >= _REPORT_INTERVAL_S:
                conn.send(("done", done, stage.snapshot(), len(stage.buffer)))
                last_report = now
            if stopping and not stage.open_requests:
                break
        stage.close(30.0)
        conn.send(("stopped", [], stage.snapshot(), 0))
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the collector's process is gone: what is not done stays in its log


class _Inbox:
    """Reads the pipe on a thread of its own, so the collector's process never waits for a
    worker busy deriving or writing (it would hold up the other workers too). Bounded in
    bytes: past the bound the thread stops reading and the pipe pushes back."""

    def __init__(self, conn: Connection, max_bytes: int = _INBOX_BYTES) -> None:
        self._conn = conn
        self._max_bytes = max_bytes
        self._items: deque[Any] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._run, name="otel-llm-collect-inbox", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                message = _GONE
            size = len(message[1]) if isinstance(message, tuple) else 0
            with self._cond:
                self._cond.wait_for(lambda: self._bytes < self._max_bytes)
                self._items.append(message)
                self._bytes += size
                self._cond.notify_all()
            if message is None or message is _GONE:
                return

    def take(self, most: int, timeout_s: float) -> list[Any]:
        """Up to ``most`` messages, waiting up to ``timeout_s`` for the first."""
        with self._cond:
            if not self._items and timeout_s > 0:
                self._cond.wait(timeout_s)
            out = []
            while self._items and len(out) < most:
                message = self._items.popleft()
                if message is _GONE:
                    raise EOFError("the collector's process is gone")
                if isinstance(message, tuple):
                    self._bytes -= len(message[1])
                out.append(message)
            self._cond.notify_all()
            return out


_GONE = object()
