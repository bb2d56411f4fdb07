"""SLO files and burn-rate arithmetic: what a user writes, what the check will apply."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from exporters.postgres.histogram import MIN_MS, RATIO, bucket
from otel_llm.reports.burn import DEFAULT_RULES, budget_remaining, burn_rate
from otel_llm.reports.slo import SLOFileError, boundary_share, load_slo_file, parse_slos

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
apiVersion: openslo/v1
kind: Service
metadata: {name: support}
spec: {description: skipped}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: support-latency, displayName: Support answers}
spec:
  service: support
  indicator: {metadata: {name: calls}, spec: {agent: support, route: answer}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: fast, op: lte, value: 1500, target: 0.99}
    - {targetPercent: 99.5}
"""


def test_a_file_declares_latency_and_success_objectives_per_agent_and_route() -> None:
    (slo,) = parse_slos(GOOD)
    assert (slo.name, slo.display_name, slo.service) == ("support-latency", "Support answers", "support")
    assert (slo.agent, slo.route, slo.window) == ("support", "answer", timedelta(days=7))
    latency, success = slo.objectives
    assert (latency.kind, latency.name, latency.threshold_ms, latency.target) == ("latency", "fast", 1500.0, 0.99)
    assert (success.kind, success.name, success.target) == ("success", "success rate", pytest.approx(0.995))


def test_the_example_file_loads() -> None:
    slos = load_slo_file(ROOT / "examples" / "slo.yaml")
    assert [s.name for s in slos] == ["support-answers", "writer-latency"]
    assert slos[1].window == timedelta(days=7) and slos[1].objectives[0].target == pytest.approx(0.95)


def _doc(**spec_changes: object) -> str:
    import yaml

    spec: dict[str, object] = {"indicator": {"spec": {"agent": "support"}},
                               "timeWindow": [{"duration": "30d", "isRolling": True}],
                               "objectives": [{"op": "lte", "value": 2000, "target": 0.99}]}
    for key, value in spec_changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return yaml.safe_dump({"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "s1"}, "spec": spec})


@pytest.mark.parametrize(("text", "message"), [
    ("a: [1, 2", "not valid YAML"),
    ("", "no SLO documents"),
    (_doc().replace("openslo/v1", "openslo/v2"), "apiVersion: must be 'openslo/v1'"),
    (_doc().replace("kind: SLO", "kind: SLI"), "kind: must be 'SLO'"),
    (_doc().replace("name: s1", "name: Not a name!"), "metadata.name: required"),
    (_doc(objectives=[{"op": "lte", "value": 2000, "target": 1.5}]), "spec.objectives[0].target: must be strictly between 0 and 1"),
    (_doc(objectives=[{"op": "lte", "value": 2000, "targetPercent": 120}]), "spec.objectives[0].targetPercent: must be strictly between 0 and 100"),
    (_doc(objectives=[{"op": "lte", "value": 2000}]), "spec.objectives[0]: give exactly one of target"),
    (_doc(objectives=[{"op": "gte", "value": 2000, "target": 0.9}]), "spec.objectives[0].op: only 'lte'"),
    (_doc(objectives=[{"op": "lte", "target": 0.9}]), "spec.objectives[0].value: required with op"),
    (_doc(objectives=[{"op": "lte", "value": "fast", "target": 0.9}]), "spec.objectives[0].value: must be a number"),
    (_doc(objectives=[{"op": "lte", "value": -5, "target": 0.9}]), "spec.objectives[0].value: must be a positive"),
    (_doc(objectives=[{"target": 0.9, "treshold": 3}]), "spec.objectives[0].treshold: unknown field"),
    (_doc(objectives=[]), "spec.objectives: required"),
    (_doc(timeWindow=[{"duration": "thirty days"}]), "spec.timeWindow[0].duration: invalid duration"),
    (_doc(timeWindow=[{"duration": "1d"}]), "spec.timeWindow[0].duration: at least 3d"),
    (_doc(timeWindow=[{"duration": "30d", "isRolling": False}]), "spec.timeWindow[0].isRolling: only rolling"),
    (_doc(timeWindow=None), "spec.timeWindow: required"),
    (_doc(indicator={"spec": {}}), "spec.indicator.spec: name an agent and/or a route"),
    (_doc(indicator={"spec": {"agent": 3}}), "spec.indicator.spec.agent: must be a non-empty string"),
    (_doc(indicator={"spec": {"model": "x"}}), "spec.indicator.spec.model: unknown field"),
    (_doc(budgetingMethod="Timeslices"), "spec.budgetingMethod: only 'Occurrences'"),
    (_doc() + "---\n" + _doc(), "metadata.name: 's1' is declared twice"),
])
def test_bad_files_get_an_error_naming_the_document_and_field(text: str, message: str) -> None:
    with pytest.raises(SLOFileError) as caught:
        parse_slos(text, source="slo.yaml")
    assert str(caught.value).startswith("slo.yaml: ")
    assert message in str(caught.value)


def test_errors_name_the_slo(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(_doc(objectives=[{"target": 2}]))
    with pytest.raises(SLOFileError, match=r"bad\.yaml: SLO 's1': spec\.objectives\[0\]\.target"):
        load_slo_file(path)
    with pytest.raises(SLOFileError, match="cannot read"):
        load_slo_file(tmp_path / "missing.yaml")


def test_burn_thresholds_are_the_workbooks_for_30_days_and_keep_budget_shares_for_7() -> None:
    assert [r.threshold(timedelta(days=30)) for r in DEFAULT_RULES] == pytest.approx([14.4, 6, 3, 1])
    assert [r.threshold(timedelta(days=7)) for r in DEFAULT_RULES] == pytest.approx([3.36, 1.4, 0.7, 0.7 / 3])
    # the share of a 7-day budget a row reacts to is the same as for 30 days
    for rule in DEFAULT_RULES:
        for window in (timedelta(days=7), timedelta(days=30)):
            assert rule.threshold(window) * (rule.long_window / window) == pytest.approx(rule.budget_fraction)
    assert [(r.severity, r.long_window, r.short_window) for r in DEFAULT_RULES] == [
        ("page", timedelta(hours=1), timedelta(minutes=5)), ("page", timedelta(hours=6), timedelta(minutes=30)),
        ("ticket", timedelta(days=1), timedelta(hours=2)), ("ticket", timedelta(days=3), timedelta(hours=6))]


def test_a_loose_target_cannot_fire_the_fast_rows() -> None:
    page_fast = DEFAULT_RULES[0]
    assert page_fast.can_fire(timedelta(days=30), 0.99)
    assert not page_fast.can_fire(timedelta(days=30), 0.90)      # 14.4 x 0.1 > 1
    assert DEFAULT_RULES[1].can_fire(timedelta(days=30), 0.90)   # 6 x 0.1 < 1


def test_burn_rate_and_budget() -> None:
    assert burn_rate(5, 100, 0.99) == pytest.approx(5.0)
    assert burn_rate(0, 0, 0.99) is None
    assert budget_remaining(25, 10_000, 0.99) == pytest.approx(0.75)
    assert budget_remaining(200, 10_000, 0.99) == pytest.approx(-1.0)


def test_boundary_share_is_the_log_position_of_the_threshold_in_its_bucket() -> None:
    index = bucket(1000.0)
    low = MIN_MS * RATIO ** (index - 1)
    assert boundary_share(low * math.sqrt(RATIO)) == pytest.approx(0.5)
    assert boundary_share(low * RATIO ** 0.25) == pytest.approx(0.25)
    assert 0.0 <= boundary_share(1000.0) <= 1.0
