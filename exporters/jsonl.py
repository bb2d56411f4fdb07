"""Route observations as JSON lines: a codec, and an exporter that appends them to a file.

The codec is shared with the PostgreSQL exporter's spool, so an observation written to
disk and read back is the same value: timestamps as ISO 8601 with their offset, money
as decimal strings (never floats), everything else as plain JSON. Values JSON cannot
express (inside ``tags``/``attributes``) are written as their text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from exporters.base import ExportResult
from processor.observation import COLUMNS, RouteObservation

logger = logging.getLogger("otel_llm.jsonl")

_FIELDS = frozenset(COLUMNS)
_DECIMAL_FIELDS = frozenset(("cost_usd", "computed_cost_usd"))
_TIME_FIELDS = frozenset(("started_at",))


def to_json_dict(obs: RouteObservation) -> dict[str, Any]:
    """A JSON-ready dict of ``obs`` (field order kept)."""
    if not isinstance(obs, RouteObservation):
        raise TypeError(f"not a RouteObservation: {type(obs).__name__}")
    out: dict[str, Any] = {}
    for name, value in zip(COLUMNS, obs):
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[name] = value
    return out


def dumps(obs: RouteObservation) -> str:
    """One JSON line (no newline) for ``obs``."""
    return json.dumps(to_json_dict(obs), default=str, separators=(",", ":"), ensure_ascii=False)


def from_json_dict(data: Mapping[str, Any]) -> RouteObservation:
    """The observation :func:`to_json_dict` wrote. Unknown keys are ignored (a newer
    writer), missing optional ones take their defaults (an older writer)."""
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _FIELDS:
            continue
        if value is not None and name in _TIME_FIELDS:
            value = datetime.fromisoformat(value)
        elif value is not None and name in _DECIMAL_FIELDS:
            value = Decimal(str(value))
        kwargs[name] = value
    return RouteObservation(**kwargs)


def loads(line: str) -> RouteObservation:
    """The observation on one JSON line; ``ValueError``/``TypeError`` if it is not one."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return from_json_dict(data)


class JsonlExporter:
    """Appends every observation as one JSON line to a file (or a stream such as stdout).

    For inspection, piping into other tools, and environments without a database. Each
    batch is written with one ``write`` and flushed; ``fsync=True`` also syncs it to disk.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, stream: IO[str] | None = None,
                 fsync: bool = False) -> None:
        if (path is None) == (stream is None):
            raise ValueError("give exactly one of path or stream")
        self._path = Path(path) if path is not None else None
        self._stream = stream
        self._fsync = fsync
        self._lock = threading.Lock()
        self._closed = False
        self.exported = 0
        self.skipped_malformed = 0
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - held until shutdown

    def export(self, batch: Sequence[RouteObservation]) -> ExportResult:
        """Append ``batch``; an observation that cannot be encoded is skipped and counted."""
        lines = []
        skipped = 0
        for obs in batch:
            try:
                lines.append(dumps(obs))
            except Exception as exc:  # noqa: BLE001 - one bad object must not sink the batch
                skipped += 1
                logger.warning("otel-llm: observation not written as JSON: %s: %s", type(exc).__name__, exc)
        with self._lock:
            if self._closed or self._stream is None:
                return ExportResult.FAILED
            try:
                if lines:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
                    if self._fsync:
                        os.fsync(self._stream.fileno())
            except OSError as exc:
                logger.warning("otel-llm: cannot write observations to %s: %s", self._path or "stream", exc)
                return ExportResult.RETRY
            self.exported += len(lines)
            self.skipped_malformed += skipped
        return ExportResult.ACCEPTED

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Every accepted batch is already flushed; nothing is buffered."""
        return True

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Close the file (a stream given by the caller is left open)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._path is not None and self._stream is not None:
                self._stream.close()

    def stats(self) -> dict[str, int]:
        """Observations written and skipped (read by the processor, like the PostgreSQL exporter's)."""
        with self._lock:
            return {"exported": self.exported, "skipped_malformed": self.skipped_malformed}


def stdout_exporter() -> JsonlExporter:
    """A :class:`JsonlExporter` writing to standard output."""
    return JsonlExporter(stream=sys.stdout)
