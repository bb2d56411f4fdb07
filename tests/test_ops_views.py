"""Operational views on generated observations: provider health and its circuit, tool
capability, sessions, routing statistics — API and commands."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.reports.health import circuit_state, provider_health
from otel_llm.reports.routing import routing_stats
from otel_llm.reports.sessions import session_totals
from otel_llm.reports.tools import tool_capability
from tests.pg import observation, pg_conn, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)

_ids = iter(range(1, 10_000))


def _obs(**fields):
    return observation(next(_ids) * 7, **fields)


def _provider_run(provider: str, outcomes: str, last_at: datetime) -> list:
    """Attempts of ``provider`` ten seconds apart, ending at ``last_at``; 'o' ok, 'x' failed."""
    count = len(outcomes)
    return [_obs(provider=provider, ok=flag == "o", error_type=None if flag == "o" else "timeout",
                 duration_ms=float(10 * (k + 1)), started_at=last_at - (count - 1 - k) * 10 * S)
            for k, flag in enumerate(outcomes)]


HEALTH = [
    *_provider_run("openai", "oooooooooo", NOW - 30 * MIN),   # durations 10 .. 100, all ok
    *_provider_run("anthropic", "oooxxxxxx", NOW - 20 * S),   # 6 failures, the latest 20 s ago
    *_provider_run("mistral", "ooxxxxx", NOW - 5 * MIN),      # 5 failures, cool-down over
    *_provider_run("ollama", "xxxxxo", NOW - 10 * S),         # a probe succeeded once
    *_provider_run("groq", "xxxxxoo", NOW - 10 * S),          # two successes: closed again
    *_provider_run("vllm", "oxxxx", NOW - 5 * S),             # 4 failures: below the threshold
    *_provider_run("openai", "xxxxxxxx", NOW - 2 * 3600 * S),  # outside the 1 h window
]

EARLIER = NOW - 3 * 3600 * S  # the other views' data, outside the health window
TOOLS = [
    *[_obs(route="r-notools", tools_offered=3, tool_calls=0, started_at=EARLIER) for _ in range(6)],
    _obs(route="r-notools", tools_offered=3, tool_calls=None, ok=False, started_at=EARLIER),
    *[_obs(route="r-tools", tools_offered=2, tool_calls=2 if k == 3 else 0, started_at=EARLIER) for k in range(6)],
    *[_obs(route="r-few", tools_offered=1, tool_calls=0, started_at=EARLIER) for _ in range(4)],
    *[_obs(route="r-unknown", tools_offered=4, tool_calls=None, started_at=EARLIER) for _ in range(6)],
    _obs(route="r-plain", tools_offered=0, tool_calls=0, started_at=EARLIER),
]

SESSIONS = [
    _obs(session_id="s1", agent="old", route="Z", started_at=NOW - timedelta(days=2)),  # outside 24 h
    _obs(session_id="s1", agent="planner", route="A", user_id="u1", started_at=EARLIER,
         input_tokens=100, output_tokens=10, cost_usd=Decimal("0.01")),
    _obs(session_id="s1", agent="writer", route="B", user_id="u1", started_at=EARLIER + MIN,
         input_tokens=200, output_tokens=20, cost_usd=Decimal("0.02"), fallback=True, attempt=1),
    _obs(session_id="s1", agent="writer", route="C", user_id="u1", started_at=EARLIER + 2 * MIN, ok=False,
         input_tokens=None, output_tokens=None, cost_usd=None),
    _obs(session_id="s2", agent=None, route="D", ok=False, started_at=EARLIER - MIN, cost_usd=None),
    _obs(session_id="s2", agent="x", route="D", ok=False, started_at=EARLIER, cost_usd=None),
]

ROUTING = [
    *[_obs(request_model="gpt-4o", routing_complexity="high", routing_score=score, instance_id=inst,
           duration_ms=float(ms), cost_usd=Decimal("0.10"), started_at=EARLIER)
      for score, inst, ms in ((0.8, "i1", 100), (0.9, "i1", 200), (1.0, "i1", 300), (0.6, "i2", 400),
                              (0.7, "i2", 500))],
    *[_obs(request_model="small", routing_complexity="low", routing_score=0.2, instance_id="i1",
           ok=k != 0, fallback=k == 1, cost_usd=None, started_at=EARLIER) for k in range(4)],
    _obs(request_model="small", routing_complexity=None, started_at=EARLIER),
]


@pytest.fixture(scope="module")
def loaded(pg_dsn: str, pg_schema: str) -> None:
    from exporters.postgres.schema import connect

    with connect(pg_dsn, pg_schema) as conn:
        result = BatchWriter(conn, pg_schema).write(HEALTH + TOOLS + SESSIONS + ROUTING)
        assert result.inserted == len(HEALTH + TOOLS + SESSIONS + ROUTING)


def test_circuit_rule() -> None:
    at = NOW - 10 * S
    assert circuit_state([False] * 6, 6, at, NOW) == "open"
    assert circuit_state([False] * 6, 5, NOW - 60 * S, NOW) == "half_open"  # cool-down just over
    assert circuit_state([True] + [False] * 5, 0, at, NOW) == "half_open"
    assert circuit_state([True, True, False, False, False, False], 0, at, NOW) == "closed"
    assert circuit_state([False] * 4 + [True, True], 4, at, NOW) == "closed"
    assert circuit_state([False, False], 2, at, NOW, threshold=2) == "open"


@pytest.mark.usefixtures("loaded")
def test_provider_health(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    health = {h.provider: h for h in provider_health(pg_conn, timedelta(hours=1), now=NOW, schema=pg_schema)}
    assert set(health) == {"openai", "anthropic", "mistral", "ollama", "groq", "vllm"}
    assert {p: h.circuit for p, h in health.items()} == {
        "openai": "closed", "anthropic": "open", "mistral": "half_open", "ollama": "half_open",
        "groq": "closed", "vllm": "closed"}
    assert {p: h.consecutive_failures for p, h in health.items()} == {
        "openai": 0, "anthropic": 6, "mistral": 5, "ollama": 0, "groq": 0, "vllm": 4}
    openai = health["openai"]
    assert (openai.count, openai.success_rate, openai.latency_p50_ms, openai.latency_p95_ms) == (10, 1.0, 50.0, 100.0)
    anthropic = health["anthropic"]
    assert anthropic.success_rate == pytest.approx(3 / 9)
    assert (anthropic.latency_p50_ms, anthropic.last_failure_at) == (20.0, NOW - 20 * S)
    # a minute later the anthropic circuit's cool-down is over
    later = {h.provider: h.circuit for h in provider_health(pg_conn, timedelta(hours=1), now=NOW + MIN,
                                                              schema=pg_schema)}
    assert later["anthropic"] == "half_open"


@pytest.mark.usefixtures("loaded")
def test_tool_capability(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    routes = {t.route: t for t in tool_capability(pg_conn, timedelta(days=7), now=NOW, schema=pg_schema)}
    assert {r: t.capability for r, t in routes.items()} == {
        "r-notools": "never_calls_tools", "r-tools": "calls_tools", "r-few": "not_enough_data",
        "r-unknown": "not_enough_data"}
    assert (routes["r-notools"].offered, routes["r-notools"].tool_calls) == (6, 0)  # the failed one not counted
    assert (routes["r-tools"].with_tool_calls, routes["r-tools"].tool_calls) == (1, 2)
    assert (routes["r-unknown"].offered, routes["r-unknown"].offered_known) == (6, 0)
    fewer = {t.route: t.capability for t in tool_capability(pg_conn, timedelta(days=7), now=NOW,
                                                             schema=pg_schema, min_offers=4)}
    assert fewer["r-few"] == "never_calls_tools"


@pytest.mark.usefixtures("loaded")
def test_sessions(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    sessions = {s.session_id: s for s in session_totals(pg_conn, timedelta(hours=24), now=NOW, schema=pg_schema)}
    assert list(sessions) == ["s1", "s2"]  # most recently active first
    s1 = sessions["s1"]
    assert (s1.count, s1.ok_count, s1.fallback_count) == (3, 2, 1)
    assert (s1.owner, s1.hot_route) == ("planner", "B")
    assert (s1.input_tokens, s1.output_tokens, s1.cost_usd) == (300, 30, Decimal("0.03"))
    assert (s1.agent_count, s1.route_count, s1.user_count) == (2, 3, 1)
    assert (s1.first_at, s1.last_at) == (EARLIER, EARLIER + 2 * MIN)
    s2 = sessions["s2"]
    assert (s2.owner, s2.hot_route, s2.cost_usd) == ("x", None, None)
    only = session_totals(pg_conn, timedelta(days=3), now=NOW, schema=pg_schema, session="s1")
    assert [(s.session_id, s.owner, s.count) for s in only] == [("s1", "old", 4)]


@pytest.mark.usefixtures("loaded")
def test_routing(pg_conn: psycopg.Connection, pg_schema: str) -> None:
    rows = {(r.model, r.complexity): r for r in routing_stats(pg_conn, timedelta(hours=24), now=NOW,
                                                               schema=pg_schema)}
    assert set(rows) == {("gpt-4o", "high"), ("small", "low")}
    high = rows["gpt-4o", "high"]
    assert (high.count, high.success_rate, high.instance_count, high.by_instance) == (5, 1.0, 2, {"i1": 3, "i2": 2})
    assert (high.mean_score, high.min_score, high.max_score) == (pytest.approx(0.8), 0.6, 1.0)
    assert (high.latency_p50_ms, high.latency_p95_ms, high.cost_usd) == (300.0, 500.0, Decimal("0.50"))
    low = rows["small", "low"]
    assert (low.count, low.ok_count, low.fallback_count, low.cost_usd, low.by_instance) == (4, 3, 1, None, {"i1": 4})


@pytest.mark.usefixtures("loaded")
@pytest.mark.parametrize("command, window, key, code", [
    ("health", "1h", "providers", 1),   # a circuit is open
    ("tools", "7d", "routes", 1),       # a route never calls tools
    ("sessions", "24h", "sessions", 0),
    ("routing", "24h", "routing", 0),
])
def test_commands(command: str, window: str, key: str, code: int, pg_dsn: str, pg_schema: str,
                  capsys: pytest.CaptureFixture[str]) -> None:
    base = [command, "--dsn", pg_dsn, "--schema", pg_schema, "--window", window, "--now", NOW.isoformat()]
    assert main([*base, "--json"]) == code
    out = json.loads(capsys.readouterr().out)
    assert out["end"] == NOW.isoformat() and out[key]
    assert main(base) == code
    text = capsys.readouterr().out
    first = out[key][0]
    label = first.get("provider") or first.get("route") or first.get("session_id") or first.get("model")
    assert label in text


def test_commands_on_an_empty_window(pg_dsn: str, pg_schema: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--dsn", pg_dsn, "--schema", pg_schema, "--now", "2020-01-01T00:00:00"]) == 0
    assert "no observations in this window" in capsys.readouterr().out
