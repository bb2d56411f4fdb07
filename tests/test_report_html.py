"""The HTML report: what the page says (parsed), and that it opens in a real headless
browser without errors and draws its charts (when Chromium is installed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from exporters.postgres.feedback import FeedbackWriter
from exporters.postgres.writer import BatchWriter
from otel_llm.cli import main
from otel_llm.feedback import build_feedback
from tests.pg import observation, pg_dsn, pg_schema  # noqa: F401 - fixtures

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
COSTS = {"support": Decimal("0.0100"), "billing": Decimal("0.0040")}

SLO_FILE = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: support-latency}
spec:
  indicator: {spec: {agent: support}}
  timeWindow: [{duration: 7d, isRolling: true}]
  objectives:
    - displayName: answered within 500 ms
      op: lte
      value: 500
      target: 0.99
"""


def _history() -> list:
    """Three days of quiet traffic (12 calls an hour per agent), then an incident on
    'support' in the last hour: ten times slower, a third failing."""
    rows, i = [], 0
    for hour in range(72, 1, -1):
        for k in range(12):
            for agent in COSTS:
                i += 1
                rows.append(observation(i, agent=agent, route=f"openai|{agent}",
                                        started_at=NOW - hour * HOUR + k * timedelta(minutes=5),
                                        duration_ms=150.0 + (k * 7) % 50, cost_usd=COSTS[agent]))
    for k in range(30):
        i += 1
        rows.append(observation(i, agent="support", route="openai|support", ok=k % 3 != 0,
                                error_type=None if k % 3 else "timeout",
                                started_at=NOW - HOUR + k * timedelta(minutes=2), duration_ms=1500.0 + k,
                                cost_usd=COSTS["support"]))
    return rows


@pytest.fixture(scope="module")
def page(pg_dsn: str, pg_schema: str) -> Path:
    from exporters.postgres.schema import connect

    with connect(pg_dsn, pg_schema) as conn:
        BatchWriter(conn, pg_schema).write(_history())
    writer = FeedbackWriter(pg_dsn, schema=pg_schema)
    for k in range(4):
        writer.submit(build_feedback("success" if k else "error", trace_id=k + 1, span_id=k + 1, agent="support",
                                     model="gpt-4o-mini", quality=7, time=NOW - (k + 1) * HOUR))
    assert writer.shutdown(30)
    folder = Path(tempfile.mkdtemp(prefix="otel-llm-report-"))
    slo = folder / "slo.yaml"
    slo.write_text(SLO_FILE, encoding="utf-8")
    out = folder / "report.html"
    assert main(["report", "--html", str(out), "--dsn", pg_dsn, "--schema", pg_schema, "--slo-file", str(slo),
                 "--period", "3d", "--now", NOW.isoformat()]) == 0
    yield out
    shutil.rmtree(folder, ignore_errors=True)


class _Page(HTMLParser):
    """Charts with their data elements, table cells, and every external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[dict] = []
        self.cells: list[str] = []
        self.external: list[str] = []
        self._in_cell = False
        self._titles: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(a[key])
        if tag == "svg":
            self.charts.append({"kind": a.get("data-chart"), "datum": 0, "reference": 0, "marker": 0, "titles": []})
        elif self.charts and "class" in a:
            for name in ("datum", "reference", "marker"):
                if a["class"] == name:
                    self.charts[-1][name] += 1
        self._in_cell = tag == "td"
        if tag == "title" and self.charts:
            self._titles = self.charts[-1]["titles"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._titles = None
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)
        if self._titles is not None:
            self._titles.append(data)


def _parse(path: Path) -> _Page:
    parsed = _Page()
    parsed.feed(path.read_text(encoding="utf-8"))
    return parsed


def test_page_content(page: Path) -> None:
    parsed = _parse(page)
    assert parsed.external == []  # nothing to fetch: the page opens offline
    kinds = [c["kind"] for c in parsed.charts]
    assert kinds.count("cost") == 1 and kinds.count("latency") == 1 and kinds.count("burn") == 1
    cost = next(c for c in parsed.charts if c["kind"] == "cost")
    # three days back from 12:00 touch four calendar days; both agents have cost on each
    assert cost["datum"] == 8
    # 12 calls an hour: 0.12 USD an hour for support, 0.048 for billing
    assert {"support, 2026-03-17: 1.4400 USD",       # from 12:00
            "support, 2026-03-19: 2.8800 USD",       # a whole day
            "support, 2026-03-20: 1.6200 USD",       # 00:00 to 11:00, and the incident's 30 calls
            "billing, 2026-03-20: 0.5280 USD"} <= set(cost["titles"])
    latency = next(c for c in parsed.charts if c["kind"] == "latency")
    assert latency["reference"] == 1 and latency["datum"] >= 3 * 60
    burn = next(c for c in parsed.charts if c["kind"] == "burn")
    assert burn["datum"] == 8 and burn["marker"] == 4  # 4 rows, long and short window each
    text = " ".join(parsed.cells)
    assert "support-latency" in text and "breach" in text
    assert "latency_spike" in text and "agent support" in text
    assert "gpt-4o-mini" in text  # confidence from the feedback


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium found (install Debian's chromium to run this test)")
def test_page_opens_in_a_headless_browser(page: Path) -> None:
    profile = tempfile.mkdtemp(prefix="otel-llm-chromium-")
    try:
        run = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no script error, no warning logged by the page
    body = re.search(r"<body[^>]*>", run.stdout).group(0)
    charts = int(re.search(r'data-charts="(\d+)"', body).group(1))
    drawn = int(re.search(r'data-charts-drawn="(\d+)"', body).group(1))
    assert charts == 3 and drawn == charts  # the script ran, and every chart has data elements
    points = [int(n) for n in re.findall(r'<svg[^>]*data-points="(\d+)"', run.stdout)]
    assert len(points) == 3 and min(points) > 0


def test_chart_scales_and_gaps() -> None:
    from otel_llm.reports.svg import Series, line_chart, nice_ticks

    assert nice_ticks(0.084) == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert nice_ticks(2100.0) == [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0]
    assert nice_ticks(0.0) == [0.0, 1.0]
    hours = [NOW + k * HOUR for k in range(5)]
    svg = line_chart("latency", "t", hours, [Series("p95", [1.0, 2.0, None, 4.0, 5.0])], unit="ms")
    assert svg.count('class="datum"') == 4 and svg.count("<polyline") == 2  # the gap splits the line


def test_report_errors_exit_2(pg_dsn: str, pg_schema: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {objectives: []}\n")
    base = ["report", "--dsn", pg_dsn, "--schema", pg_schema]
    assert main([*base, "--html", str(tmp_path / "r.html"), "--slo-file", str(bad)]) == 2
    assert main([*base, "--html", str(tmp_path / "missing" / "r.html")]) == 2
    assert main([*base, "--html", str(tmp_path / "r.html"), "--period", "soon"]) == 2
    assert "otel-llm report:" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
