"""Routing decisions: why a request went to the target it went to.

A router that classifies a request (complexity label and score), weighs candidates
against a preference (speed, cost, quality, ...) and required capabilities, then picks
one, records that decision with :func:`record_routing_decision`. It lands on the
*current* span, as the OpenTelemetry context defines it:

* inside ``with chain:`` (the fallback chain's span is current, no attempt running) the
  decision is set on the chain span **and** copied onto every attempt the chain starts
  afterwards, so each per-attempt observation carries it;
* anywhere else — inside a fallback attempt, an ``llm_span`` block, or any other
  recording span — it is set on that span.

With no recording span at all, the decision is skipped and the skip is logged.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from opentelemetry import trace

from otel_llm import semconv
from otel_llm._safety import report
from otel_llm.fallback import Target, current_chain_run

#: Cap on the candidates recorded: a decision names a handful, not a catalogue.
MAX_CANDIDATES = 32


def _label(field: str, value: Any) -> str:
    if isinstance(value, Target):
        return value.key
    if isinstance(value, str) and value:
        return value
    raise TypeError(f"routing {field} must be a non-empty str or a Target, got {value!r}")


def _labels(field: str, values: Iterable[Any]) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"routing {field} must be a list of str (or Targets), got {values!r}")
    out = [_label(field, v) for v in values]
    return out[:MAX_CANDIDATES]


def _score(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"routing score must be a number, got {value!r}")
    score = float(value)
    if math.isnan(score) or math.isinf(score):
        raise ValueError(f"routing score must be finite, got {value!r}")
    return score


def routing_attributes(
    *,
    complexity: str | None = None,
    score: float | None = None,
    candidates: Iterable[str | Target] | None = None,
    selected: str | Target | None = None,
    preference: str | None = None,
    required_capabilities: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The ``otel_llm.routing.*`` attributes of a decision; raises on a malformed field."""
    out: dict[str, Any] = {}
    for field, key, value, convert in (
        ("complexity", semconv.OTEL_LLM_ROUTING_COMPLEXITY, complexity, _label),
        ("score", semconv.OTEL_LLM_ROUTING_SCORE, score, lambda _f, v: _score(v)),
        ("candidates", semconv.OTEL_LLM_ROUTING_CANDIDATES, candidates, _labels),
        ("selected", semconv.OTEL_LLM_ROUTING_SELECTED, selected, _label),
        ("preference", semconv.OTEL_LLM_ROUTING_PREFERENCE, preference, _label),
        ("required_capabilities", semconv.OTEL_LLM_ROUTING_CAPABILITIES, required_capabilities, _labels),
    ):
        if value is not None:
            out[key] = convert(field, value)
    return out


def record_routing_decision(
    *,
    complexity: str | None = None,
    score: float | None = None,
    candidates: Iterable[str | Target] | None = None,
    selected: str | Target | None = None,
    preference: str | None = None,
    required_capabilities: Iterable[str] | None = None,
) -> bool:
    """Record a routing decision on the current chain or span; True if it was recorded.

    A malformed field (a score that is not a number, a candidate that is not a name)
    is logged and skipped; the other fields are still recorded. Never raises.
    """
    attrs: dict[str, Any] = {}
    for field, value in (
        ("complexity", complexity),
        ("score", score),
        ("candidates", candidates),
        ("selected", selected),
        ("preference", preference),
        ("required_capabilities", required_capabilities),
    ):
        if value is None:
            continue
        try:
            attrs.update(routing_attributes(**{field: value}))
        except Exception as exc:  # noqa: BLE001 - bad input is a logged skip, not a crash
            report(f"recording routing {field}", exc)
    if not attrs:
        return False
    try:
        run = current_chain_run()
        if run is not None:
            run.add_routing(attrs)
            return True
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(attrs)
            return True
        report(
            "recording a routing decision",
            RuntimeError("no current span: call it inside `with chain:`, an attempt or an llm_span block"),
        )
    except Exception as exc:  # noqa: BLE001
        report("recording a routing decision", exc)
    return False
