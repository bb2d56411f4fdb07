"""SLO files: the OpenSLO ``v1`` shape, the subset that route observations can answer.

A file holds one or more YAML documents (``---`` between them, or a list). Each
``kind: SLO`` document declares objectives for the calls of one agent and/or route::

    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: support-latency            # unique in the file
      displayName: Support answers     # optional
    spec:
      description: ...                 # optional
      service: support-bot             # optional, shown in reports
      indicator:
        metadata: {name: support-calls}  # optional
        spec:                          # which observations are the events
          agent: support               # and/or  route: openai|gpt-4o-mini
      timeWindow:
        - duration: 30d                # rolling; 7d and 30d are usual (at least 3d)
          isRolling: true
      budgetingMethod: Occurrences     # the only method supported (also the default)
      objectives:
        - displayName: answered within 2 s
          op: lte                      # latency objective: good = success AND
          value: 2000                  #   latency <= value (milliseconds)
          target: 0.99                 # or targetPercent: 99
        - displayName: answers succeed # no op/value: success-rate objective
          target: 0.995

Documents of ``kind: Service`` are skipped (OpenSLO files often carry them). Anything
else that is not understood is an error naming the document and the field, rather
than a silently different objective.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from exporters.postgres.durations import format_duration, parse_duration
from otel_llm.reports.burn import DEFAULT_RULES

API_VERSION = "openslo/v1"
#: The SLO window must hold the longest alert window (3 days).
MIN_WINDOW = max(rule.long_window for rule in DEFAULT_RULES)

_SLO_KEYS = {"apiVersion", "kind", "metadata", "spec"}
_METADATA_KEYS = {"name", "displayName", "labels", "annotations"}
_SPEC_KEYS = {"description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod",
              "objectives", "alertPolicies"}
_SELECTOR_KEYS = {"agent", "route"}
_OBJECTIVE_KEYS = {"displayName", "name", "op", "value", "target", "targetPercent"}
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


class SLOFileError(ValueError):
    """A file that is not a valid SLO file; the message names the document and field."""


@dataclass(frozen=True, slots=True)
class Objective:
    """One target of an SLO.

    ``threshold_ms`` set: a latency objective (good = success and latency <= threshold);
    ``None``: a success-rate objective (good = success).
    """

    name: str
    target: float
    threshold_ms: float | None = None

    @property
    def kind(self) -> Literal["latency", "success"]:
        """``"latency"`` or ``"success"``."""
        return "success" if self.threshold_ms is None else "latency"


@dataclass(frozen=True, slots=True)
class SLO:
    """Objectives over a rolling window for the calls of an agent and/or a route."""

    name: str
    window: timedelta
    objectives: tuple[Objective, ...]
    agent: str | None = None
    route: str | None = None
    display_name: str | None = None
    description: str | None = None
    service: str | None = None

    @property
    def selector(self) -> str:
        """Which calls count, e.g. ``agent=support route=answer``."""
        parts = [f"agent={self.agent}" if self.agent is not None else "",
                 f"route={self.route}" if self.route is not None else ""]
        return " ".join(p for p in parts if p)


def load_slo_file(path: str | Path) -> list[SLO]:
    """The SLOs declared in the YAML file at ``path``.

    Raises :class:`SLOFileError` for an unreadable file, invalid YAML or any field that
    is missing, misspelt or out of range.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SLOFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_slos(text, source=str(path))


def parse_slos(text: str, *, source: str = "<slo file>") -> list[SLO]:
    """The SLOs of an SLO file's text (see :func:`load_slo_file`)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise SLOFileError(f"{source}: not valid YAML: {exc}") from None
    items: list[Any] = []
    for doc in documents:
        items.extend(doc if isinstance(doc, list) else [doc])
    slos: list[SLO] = []
    for number, item in enumerate(items, start=1):
        where = f"{source}: document {number}"
        if isinstance(item, dict) and isinstance(item.get("metadata"), dict) and item["metadata"].get("name"):
            where = f"{source}: SLO {item['metadata']['name']!r}"
        if isinstance(item, dict) and item.get("kind") == "Service":
            continue
        slo = _parse_slo(item, where)
        if any(s.name == slo.name for s in slos):
            raise SLOFileError(f"{where}: metadata.name: {slo.name!r} is declared twice")
        slos.append(slo)
    if not slos:
        raise SLOFileError(f"{source}: no SLO documents (kind: SLO)")
    return slos


def _parse_slo(doc: Any, where: str) -> SLO:
    _mapping(doc, where, "document", _SLO_KEYS)
    if doc.get("apiVersion") != API_VERSION:
        raise SLOFileError(f"{where}: apiVersion: must be {API_VERSION!r}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != "SLO":
        raise SLOFileError(f"{where}: kind: must be 'SLO' (or 'Service', skipped), got {doc.get('kind')!r}")
    metadata = _mapping(doc.get("metadata"), where, "metadata", _METADATA_KEYS)
    name = metadata.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise SLOFileError(f"{where}: metadata.name: required; letters, digits, '-', '_' or '.', "
                           f"at most 63 characters, got {name!r}")
    spec = _mapping(doc.get("spec"), where, "spec", _SPEC_KEYS)
    for unsupported in ("indicatorRef", "alertPolicies"):
        if unsupported in spec:
            raise SLOFileError(f"{where}: spec.{unsupported}: not supported; declare spec.indicator inline "
                               "(alert rows are the built-in multiwindow burn rates)")
    agent, route = _selector(spec.get("indicator"), where)
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        raise SLOFileError(f"{where}: spec.budgetingMethod: only 'Occurrences' is supported, got {method!r}")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise SLOFileError(f"{where}: spec.objectives: required, a non-empty list")
    return SLO(
        name=name,
        window=_window(spec.get("timeWindow"), where),
        objectives=tuple(_objective(o, where, f"spec.objectives[{i}]") for i, o in enumerate(objectives)),
        agent=agent,
        route=route,
        display_name=_optional_text(metadata, "displayName", where, "metadata.displayName"),
        description=_optional_text(spec, "description", where, "spec.description"),
        service=_optional_text(spec, "service", where, "spec.service"),
    )


def _selector(indicator: Any, where: str) -> tuple[str | None, str | None]:
    indicator = _mapping(indicator, where, "spec.indicator", {"metadata", "spec"})
    selector = _mapping(indicator.get("spec"), where, "spec.indicator.spec", _SELECTOR_KEYS)
    for key in _SELECTOR_KEYS:
        value = selector.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise SLOFileError(f"{where}: spec.indicator.spec.{key}: must be a non-empty string, got {value!r}")
    if selector.get("agent") is None and selector.get("route") is None:
        raise SLOFileError(f"{where}: spec.indicator.spec: name an agent and/or a route")
    return selector.get("agent"), selector.get("route")


def _window(time_window: Any, where: str) -> timedelta:
    field = "spec.timeWindow"
    if not isinstance(time_window, list) or len(time_window) != 1:
        raise SLOFileError(f"{where}: {field}: required, a list of exactly one window, e.g. [{{duration: 30d, isRolling: true}}]")
    item = _mapping(time_window[0], where, f"{field}[0]", {"duration", "isRolling", "calendar"})
    if "calendar" in item or item.get("isRolling", True) is not True:
        raise SLOFileError(f"{where}: {field}[0].isRolling: only rolling windows are supported")
    duration = item.get("duration")
    try:
        window = parse_duration(str(duration)) if duration is not None else None
    except ValueError as exc:
        raise SLOFileError(f"{where}: {field}[0].duration: {exc}") from None
    if window is None:
        raise SLOFileError(f"{where}: {field}[0].duration: required, e.g. 30d or 7d")
    if window < MIN_WINDOW:
        raise SLOFileError(f"{where}: {field}[0].duration: at least {format_duration(MIN_WINDOW)} "
                           f"(the longest alert window), got {duration!r}")
    return window


def _objective(item: Any, where: str, field: str) -> Objective:
    item = _mapping(item, where, field, _OBJECTIVE_KEYS)
    if ("target" in item) == ("targetPercent" in item):
        raise SLOFileError(f"{where}: {field}: give exactly one of target (0..1) or targetPercent (0..100)")
    if "target" in item:
        target = _number(item["target"], where, f"{field}.target")
    else:
        target = _number(item["targetPercent"], where, f"{field}.targetPercent") / 100.0
    if not 0.0 < target < 1.0:
        key = "target" if "target" in item else "targetPercent"
        raise SLOFileError(f"{where}: {field}.{key}: must be strictly between 0 and "
                           f"{'1' if key == 'target' else '100'}, got {item[key]!r}")
    threshold: float | None = None
    if "op" in item or "value" in item:
        if item.get("op") != "lte":
            raise SLOFileError(f"{where}: {field}.op: only 'lte' (latency <= value) is supported, got {item.get('op')!r}")
        if "value" not in item:
            raise SLOFileError(f"{where}: {field}.value: required with op, the latency threshold in milliseconds")
        threshold = _number(item["value"], where, f"{field}.value")
        if threshold <= 0:
            raise SLOFileError(f"{where}: {field}.value: must be a positive number of milliseconds, got {item['value']!r}")
    name = item.get("displayName", item.get("name"))
    if name is not None and not isinstance(name, str):
        raise SLOFileError(f"{where}: {field}.displayName: must be a string, got {name!r}")
    if name is None:
        name = "success rate" if threshold is None else f"latency <= {threshold:g} ms"
    return Objective(name=name, target=target, threshold_ms=threshold)


def _mapping(value: Any, where: str, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SLOFileError(f"{where}: {field}: required, a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise SLOFileError(f"{where}: {field}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})")
    return value


def _number(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SLOFileError(f"{where}: {field}: must be a number, got {value!r}")
    return float(value)


def _optional_text(mapping: dict[str, Any], key: str, where: str, field: str) -> str | None:
    value = mapping.get(key)
    if value is not None and not isinstance(value, str):
        raise SLOFileError(f"{where}: {field}: must be a string, got {value!r}")
    return value
