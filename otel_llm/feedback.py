"""``record_feedback``: tell otel-llm how a call turned out, from application code.

The outcome (``success``, ``fallback``, ``timeout``, ``error``, ``user_rejected``) and
optional quality and satisfaction scores (0 to 10) are tied to one call — named by its
trace and span ids, by its :class:`~otel_llm.LLMCall` handle or span, or, with neither,
by the span current when ``record_feedback`` is called. They are stored in PostgreSQL
and read back as confidence per (agent, model) (``otel-llm confidence``).

Arguments are checked at once: a score of 11 or an unknown outcome is a programming
error and raises ``ValueError``. Everything after that happens on a background thread
(:mod:`exporters.postgres.feedback`, imported on first use): an unreachable database
never raises into the caller nor makes it wait; feedback waits in a bounded queue and
what exceeds the bound is counted as dropped (:func:`feedback_stats`).

The database is the one :func:`otel_llm.configure` was given (``dsn=``), else
``OTEL_LLM_DSN``, else the embedded server; the schema ``OTEL_LLM_SCHEMA`` (default
``otel_llm``). :func:`set_feedback_database` chooses another before the first call.
"""

from __future__ import annotations

import math
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace

from otel_llm import semconv
from otel_llm._safety import report

#: The outcomes feedback can report.
OUTCOMES = ("success", "fallback", "timeout", "error", "user_rejected")
#: Scores are on this closed range.
SCORE_RANGE = (0.0, 10.0)

#: Feedback held while the writer is being started; more than this is counted as dropped.
MAX_WAITING = 10_000

_database: tuple[str | None, str | None] | None = None


class NoCallError(LookupError):
    """There is no traced call to attach the feedback to (tracing off, or no span current).

    Not a programming error — the same code runs with tracing turned off — so
    :func:`record_feedback` logs it and counts the feedback as dropped instead of raising.
    """


@dataclass(frozen=True, slots=True)
class Feedback:
    """One piece of feedback, validated; what is stored."""

    feedback_id: str
    trace_id: str | None
    span_id: str | None
    recorded_at: datetime
    outcome: str
    quality: float | None = None
    satisfaction: float | None = None
    agent: str | None = None
    model: str | None = None
    comment: str | None = None

    def row(self) -> tuple[Any, ...]:
        """Values in the writer's column order."""
        return (self.feedback_id, self.trace_id, self.span_id, self.recorded_at, self.outcome,
                self.quality, self.satisfaction, self.agent, self.model, self.comment)


def record_feedback(
    outcome: str,
    *,
    call: Any = None,
    trace_id: int | str | None = None,
    span_id: int | str | None = None,
    quality: float | None = None,
    satisfaction: float | None = None,
    agent: str | None = None,
    model: str | None = None,
    comment: str | None = None,
    time: datetime | None = None,
    feedback_id: str | None = None,
) -> str:
    """Record feedback on one call; returns its ``feedback_id``.

    * ``call``: an :class:`~otel_llm.LLMCall`, an OpenTelemetry span or span context; or
      give ``trace_id`` and ``span_id`` (ints or hex strings); with none of them the
      current span is used.
    * ``agent`` / ``model``: when not given, taken from the call's span if it carries
      them, else later from the call's route observation.
    * ``time``: when the feedback was given (default now; naive means UTC).
    * ``feedback_id``: recording the same id again stores it once (default: a new UUID).

    Raises ``ValueError`` for invalid arguments only; never for the database. With no
    traced call to attach to (tracing off, no current span) the feedback is logged and
    counted as dropped, and the returned id is ``feedback_id`` or ``""``.
    """
    try:
        feedback = build_feedback(outcome, call=call, trace_id=trace_id, span_id=span_id, quality=quality,
                                  satisfaction=satisfaction, agent=agent, model=model, comment=comment,
                                  time=time, feedback_id=feedback_id)
    except NoCallError as exc:
        _starter.count_dropped()
        report("recording feedback (dropped)", exc)
        return feedback_id or ""
    try:
        _starter.submit(feedback)
    except Exception as exc:  # noqa: BLE001 - telemetry never raises into the application
        report("recording feedback", exc)
    return feedback.feedback_id


def build_feedback(outcome: str, *, call: Any = None, trace_id: int | str | None = None,
                   span_id: int | str | None = None, quality: float | None = None,
                   satisfaction: float | None = None, agent: str | None = None,
                   model: str | None = None, comment: str | None = None,
                   time: datetime | None = None, feedback_id: str | None = None) -> Feedback:
    """The validated :class:`Feedback` that :func:`record_feedback` would store."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown feedback outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
    quality = _score("quality", quality)
    satisfaction = _score("satisfaction", satisfaction)
    for name, value in (("agent", agent), ("model", model), ("comment", comment), ("feedback_id", feedback_id)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a str, got {type(value).__name__}")
    if feedback_id is not None and not feedback_id:
        raise ValueError("feedback_id must not be empty")
    span_attrs: Any = None
    if call is not None or (trace_id is None and span_id is None):
        if trace_id is not None or span_id is not None:
            raise ValueError("give either call or trace_id/span_id, not both")
        trace_id, span_id, span_attrs = _ids_of(call)
    trace_hex = _hex_id("trace_id", trace_id, 32)
    span_hex = _hex_id("span_id", span_id, 16)
    if span_attrs:
        agent = agent or _str_or_none(span_attrs.get(semconv.GEN_AI_AGENT_NAME))
        model = model or _str_or_none(span_attrs.get(semconv.GEN_AI_REQUEST_MODEL))
    return Feedback(
        feedback_id=feedback_id or str(uuid.uuid4()), trace_id=trace_hex, span_id=span_hex,
        recorded_at=_utc(time), outcome=outcome, quality=quality, satisfaction=satisfaction,
        agent=agent, model=model, comment=comment,
    )


def set_feedback_database(dsn: str | None = None, *, schema: str | None = None) -> None:
    """Where feedback goes, for a process that does not want configure()'s database.

    Takes effect for the writer created by the next :func:`record_feedback` (call
    :func:`shutdown_feedback` first to replace one already running).
    """
    global _database
    _database = (dsn, schema)


def flush_feedback(timeout_s: float = 10.0) -> bool:
    """Wait until feedback recorded so far is stored; True if it was within ``timeout_s``."""
    _starter.wait(timeout_s)
    writer = _existing_writer()
    return not _starter.waiting if writer is None else writer.flush(timeout_s)


def shutdown_feedback(timeout_s: float = 10.0) -> bool:
    """Flush and stop the background writer; the next :func:`record_feedback` starts a new one."""
    if "exporters.postgres.feedback" not in sys.modules:
        return True
    from exporters.postgres.feedback import shutdown_default

    return shutdown_default(timeout_s)


def feedback_stats() -> dict[str, int]:
    """The writer's counters: accepted, written, duplicates, dropped, rejected, failures, pending."""
    writer = _existing_writer()
    stats = writer.stats() if writer is not None else {}
    with _starter.lock:
        stats["dropped"] = stats.get("dropped", 0) + _starter.dropped
        stats["pending"] = stats.get("pending", 0) + len(_starter.waiting)
    return stats


# --- helpers ---------------------------------------------------------------------------
class _Starter:
    """Hands feedback to the background writer, starting it without making the caller wait.

    Loading the writer's module loads the database driver, which takes a noticeable
    moment; so the first call starts a thread that loads it and creates the writer, and
    feedback recorded meanwhile waits here (at most :data:`MAX_WAITING` pieces; more are
    counted as dropped).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: list[Feedback] = []
        self.dropped = 0
        self.thread: threading.Thread | None = None

    def submit(self, feedback: Feedback) -> None:
        writer = _existing_writer()
        if writer is None:
            with self.lock:
                writer = _existing_writer()
                if writer is None:
                    if len(self.waiting) >= MAX_WAITING:
                        self.dropped += 1
                        return
                    self.waiting.append(feedback)
                    if self.thread is None or not self.thread.is_alive():
                        self.thread = threading.Thread(target=self._start, name="otel-llm-feedback-start",
                                                       daemon=True)
                        self.thread.start()
                    return
        writer.submit(feedback)

    def count_dropped(self) -> None:
        with self.lock:
            self.dropped += 1

    def wait(self, timeout_s: float) -> None:
        thread = self.thread
        if thread is not None:
            thread.join(timeout_s)

    def _start(self) -> None:
        try:
            from exporters.postgres.feedback import default_writer

            writer = default_writer(_settings)
        except Exception as exc:  # noqa: BLE001
            report("starting the feedback writer", exc)
            with self.lock:
                self.dropped += len(self.waiting)
                self.waiting.clear()
            return
        with self.lock:
            for feedback in self.waiting:
                writer.submit(feedback)
            self.waiting.clear()


_starter = _Starter()


def _existing_writer() -> Any:
    module = sys.modules.get("exporters.postgres.feedback")
    return None if module is None else module._default


def _settings() -> tuple[str | None, str | None]:
    """(dsn, schema): set_feedback_database(), else configure()'s dsn, else the environment."""
    if _database is not None:
        return _database
    setup = sys.modules.get("otel_llm.setup")
    handle = getattr(setup, "_handle", None) if setup is not None else None
    options = getattr(handle, "options", None)
    return getattr(options, "dsn", None), None


def _score(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number from 0 to 10, got {value!r}")
    value = float(value)
    if math.isnan(value) or not SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
        raise ValueError(f"{name} must be from 0 to 10, got {value!r}")
    return value


def _ids_of(call: Any) -> tuple[int, int, Any]:
    """(trace id, span id, span attributes or None) of a call handle, span or span context."""
    if call is None:
        span = trace.get_current_span()
    else:
        span = getattr(call, "span", call)  # an LLMCall holds its span
    context = span.get_span_context() if hasattr(span, "get_span_context") else span
    if not isinstance(context, trace.SpanContext):
        raise ValueError(f"call must be an LLMCall, a span or a span context, got {type(call).__name__}")
    if not context.is_valid:
        raise NoCallError("no call to attach feedback to: no span is current here (give call= or "
                          "trace_id=/span_id=)" if call is None else "the call's span has no ids "
                          "(tracing is off, or not set up with an SDK)")
    return context.trace_id, context.span_id, getattr(span, "attributes", None)


def _hex_id(name: str, value: int | str | None, digits: int) -> str | None:
    """An id as lower-case hex of ``digits`` digits, the form route observations store."""
    if value is None:
        raise ValueError(f"{name} is required with {'span_id' if name == 'trace_id' else 'trace_id'}")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int or a hex string, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16)
        except ValueError:
            raise ValueError(f"{name} must be hexadecimal, got {value!r}") from None
    else:
        raise ValueError(f"{name} must be an int or a hex string, got {type(value).__name__}")
    if not 0 < number < 16 ** digits:
        raise ValueError(f"{name} {value!r} is out of range for a {digits}-digit id")
    return format(number, f"0{digits}x")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(timezone.utc)
    if not isinstance(moment, datetime):
        raise ValueError(f"time must be a datetime, got {type(moment).__name__}")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
