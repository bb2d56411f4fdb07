"""The HTML report: one self-contained page with the answers worth looking at together.

``otel-llm report --html report.html`` writes it. Everything is inline — CSS, the SVG
charts (:mod:`otel_llm.reports.svg`) and a few lines of script that only mark what was
drawn — so the page opens from a file, offline, and can be mailed or archived.

Sections, over a period (default the last 7 days) ending at ``now``:

1. cost per agent per day, stacked bars (:func:`otel_llm.reports.costs.cost_report`);
2. latency percentiles over time against each latency SLO's threshold, and every
   objective's compliance, error budget and burn-rate rows against their thresholds
   (:mod:`otel_llm.reports.slo`, from ``--slo-file``); without an SLO file, p95 latency
   of the busiest agents;
3. the top anomalies of the last hour against the week before
   (:func:`otel_llm.reports.anomalies.find_anomalies`);
4. provider health and confidence per agent and model (the operational views).

:func:`gather` reads (one query per section), :func:`render` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import psycopg

from otel_llm.reports.svg import HBar, Reference, Series, hbars, line_chart, stacked_bars

if TYPE_CHECKING:
    from otel_llm.reports.anomalies import Anomaly
    from otel_llm.reports.confidence import Confidence
    from otel_llm.reports.health import ProviderHealth
    from otel_llm.reports.slo import SLOReport

DEFAULT_PERIOD = timedelta(days=7)
#: Agents drawn separately in the cost chart; the rest are summed as "other".
MAX_COST_AGENTS = 8
#: Agents drawn in the latency chart when no SLO file is given.
MAX_LATENCY_AGENTS = 5
TOP_ANOMALIES = 10


@dataclass(frozen=True, slots=True)
class LatencyChart:
    """One latency chart: percentiles of an agent or route over time, and SLO thresholds."""

    title: str
    times: tuple[datetime, ...]
    series: tuple[Series, ...]
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the page shows."""

    now: datetime
    start: datetime
    days: tuple[str, ...]
    cost_series: tuple[Series, ...]
    cost_total: Decimal
    latency: tuple[LatencyChart, ...]
    slo: "SLOReport | None"
    anomalies: tuple["Anomaly", ...]
    health: tuple["ProviderHealth", ...]
    confidence: tuple["Confidence", ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def chart_count(self) -> int:
        """Charts the page draws: cost, one per latency chart, one per objective's burn rates."""
        burn = sum(1 for r in self.slo.results for o in r.objectives if o.burn_rows) if self.slo else 0
        return (1 if self.cost_series else 0) + sum(1 for c in self.latency if c.times) + burn


# --- reading ---------------------------------------------------------------------------
def gather(conn: psycopg.Connection, *, schema: str | None = None, now: datetime | None = None,
           period: timedelta = DEFAULT_PERIOD, slo_file: str | Path | None = None) -> ReportData:
    """Read every section's data for the ``period`` ending at ``now``."""
    from otel_llm.reports.anomalies import find_anomalies
    from otel_llm.reports.confidence import confidence_by_agent_model
    from otel_llm.reports.health import provider_health
    from otel_llm.reports.slo import check_slos, load_slo_file

    if period <= timedelta(0):
        raise ValueError("period must be positive")
    end = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = end - period
    notes = []
    days, cost_series, cost_total = _costs(conn, schema, start, end)
    slos = load_slo_file(slo_file) if slo_file is not None else []
    if slo_file is None:
        notes.append("No SLO file given (--slo-file): latency is shown without objectives, and no burn rates.")
    slo_report = check_slos(conn, slos, now=end, schema=schema) if slos else None
    latency = _latency(conn, schema, end, period, slos)
    anomalies = find_anomalies(conn, now=end, schema=schema)[:TOP_ANOMALIES]
    health = provider_health(conn, timedelta(hours=1), now=end, schema=schema)
    confidence = confidence_by_agent_model(conn, now=end, schema=schema)
    return ReportData(now=end, start=start, days=days, cost_series=cost_series, cost_total=cost_total,
                      latency=latency, slo=slo_report, anomalies=tuple(anomalies), health=tuple(health),
                      confidence=tuple(confidence), notes=tuple(notes))


def _costs(conn: psycopg.Connection, schema: str | None, start: datetime,
           end: datetime) -> tuple[tuple[str, ...], tuple[Series, ...], Decimal]:
    """Days of the period and one series of daily cost per agent (the costliest first)."""
    from otel_llm.reports.costs import cost_report

    report = cost_report(conn, by=("agent",), period="day", since=start, until=end, schema=schema, now=end)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    day = first
    while day < end:
        days.append(day.date().isoformat())
        day += timedelta(days=1)
    per_agent: dict[str, dict[str, Decimal]] = {}
    for row in report.rows:
        if row.period is None:
            continue
        agent = row.group.get("agent") or "(none)"
        key = row.period.date().isoformat()
        per_agent.setdefault(agent, {})[key] = per_agent.get(agent, {}).get(key, Decimal(0)) + row.cost_usd
    ranked = sorted(per_agent, key=lambda a: (-sum(per_agent[a].values()), a))
    shown, rest = ranked[:MAX_COST_AGENTS], ranked[MAX_COST_AGENTS:]
    series = [Series(a, [float(per_agent[a].get(d, 0)) for d in days]) for a in shown]
    if rest:
        series.append(Series("other", [float(sum(per_agent[a].get(d, 0) for a in rest)) for d in days]))
    total = sum((sum(v.values()) for v in per_agent.values()), Decimal(0))
    return tuple(days), tuple(series), total


def _latency(conn: psycopg.Connection, schema: str | None, end: datetime, period: timedelta,
             slos: Sequence[Any]) -> tuple[LatencyChart, ...]:
    from otel_llm.reports.slo import latency_series

    step = "hour" if period <= timedelta(days=7) else "day"
    charts = []
    for slo in slos:
        thresholds = [o for o in slo.objectives if o.threshold_ms is not None]
        if not thresholds or not (slo.agent or slo.route):
            continue
        by, key = ("agent", slo.agent) if slo.agent else ("route", slo.route)
        points = latency_series(conn, period=period, step=step, by=by, keys=[key], now=end, schema=schema)
        times = tuple(p.start for p in points)
        series = tuple(Series(name, [getattr(p, f"latency_{name}_ms") for p in points])
                       for name in ("p50", "p95", "p99"))
        refs = tuple(Reference(f"SLO {o.threshold_ms:g} ms", o.threshold_ms) for o in thresholds)
        goals = ", ".join(f"{100 * o.target:g} % within {o.threshold_ms:g} ms" for o in thresholds)
        charts.append(LatencyChart(f"{slo.display_name or slo.name} ({by} {key}): {goals}", times, series, refs))
    if slos:
        return tuple(charts)
    points = latency_series(conn, period=period, step=step, by="agent", now=end, schema=schema)
    volume: dict[str | None, int] = {}
    for p in points:
        volume[p.key] = volume.get(p.key, 0) + p.count
    busiest = sorted(volume, key=lambda k: (-volume[k], k or ""))[:MAX_LATENCY_AGENTS]
    times = tuple(sorted({p.start for p in points if p.key in busiest}))
    by_key = {(p.key, p.start): p.latency_p95_ms for p in points}
    series = tuple(Series(f"{k or '(none)'} p95", [by_key.get((k, t)) for t in times]) for k in busiest)
    return (LatencyChart("p95 latency of the busiest agents", times, series),) if times else ()


# --- the page (pure) -------------------------------------------------------------------
def render(data: ReportData) -> str:
    """The whole page as one HTML string."""
    sections = [
        _section("Cost per agent per day",
                 f"<p>{escape(_money(data.cost_total))} in all over the period.</p>"
                 + (stacked_bars("cost", "Cost per agent per day", data.days, data.cost_series, unit="USD")
                    if data.cost_series else _empty("No cost recorded in this period."))),
        _section("Latency against the SLOs", "".join(
            _figure(c.title, line_chart("latency", c.title, c.times, c.series, unit="ms", references=c.references))
            for c in data.latency if c.times) or _empty("No latency in this period.")),
        _section("SLOs and burn rates", _slo_html(data.slo)),
        _section("Top anomalies (last hour against the week before)", _anomalies_html(data.anomalies)),
        _section("Provider health (last hour)", _health_html(data.health)),
        _section("Confidence per agent and model (feedback, last 30 days)", _confidence_html(data.confidence)),
    ]
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes)
    return _PAGE.format(
        title=escape(f"otel-llm report {data.start:%Y-%m-%d} .. {data.now:%Y-%m-%d %H:%M} UTC"),
        style=_STYLE, script=_SCRIPT, notes=notes, body="\n".join(sections),
        generated=escape(f"{data.now:%Y-%m-%d %H:%M:%S} UTC"))


def write_report(path: str | Path, conn: psycopg.Connection, **options: Any) -> ReportData:
    """Gather, render and write the page to ``path``; returns what it shows."""
    data = gather(conn, **options)
    Path(path).write_text(render(data), encoding="utf-8")
    return data


def _section(title: str, body: str) -> str:
    return f"<section><h2>{escape(title)}</h2>\n{body}\n</section>"


def _figure(caption: str, chart: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>\n{chart}\n</figure>"


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _money(value: Decimal) -> str:
    return f"${value:,.4f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f'<tr class="{escape(classes[i]) if i < len(classes) else ""}">'
        + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _slo_html(report: "SLOReport | None") -> str:
    if report is None:
        return _empty("No SLO file given.")
    if not report.results:
        return _empty("The SLO file declares no objectives.")
    from exporters.postgres.durations import format_duration

    rows, classes, charts = [], [], []
    for result in report.results:
        for o in result.objectives:
            kind = f"latency <= {o.objective.threshold_ms:g} ms" if o.objective.threshold_ms is not None \
                else "success rate"
            rows.append([result.slo.name, o.objective.name, kind, _pct(o.objective.target), _pct(o.compliance),
                         _pct(o.budget_remaining), str(len(o.firing)), o.status])
            classes.append(o.status.replace(" ", "-"))
            bars = [HBar(f"{r.severity} {format_duration(r.long.window)} / {format_duration(r.short.window)}",
                         [("long window", r.long.burn_rate), ("short window", r.short.burn_rate)],
                         marker=r.threshold, highlight=r.fires, notes=("fires",) if r.fires else ())
                    for r in o.burn_rows]
            if bars:
                title = f"Burn rates: {result.slo.name} / {o.objective.name}"
                charts.append(_figure(title, hbars("burn", title, bars, unit="x budget rate")))
    warnings = "".join(f'<p class="note">{escape(w)}</p>' for w in report.warnings)
    return (_table(["SLO", "OBJECTIVE", "GOOD MEANS", "TARGET", "COMPLIANCE", "BUDGET LEFT", "FIRING", "STATUS"],
                   rows, classes) + warnings + "".join(charts))


def _anomalies_html(anomalies: Sequence["Anomaly"]) -> str:
    if not anomalies:
        return _empty("No anomaly found.")
    return _table(["KIND", "WHO", "METRIC", "VALUE", "BASELINE", "Z", "CALLS", "WHY"],
                  [[a.kind, f"{a.dimension} {a.key or '(none)'}" + (f" on {a.model}" if getattr(a, "model", None) else ""),
                    a.metric,
                    f"{a.value:.3g}", f"{a.baseline_median:.3g}", f"{a.z:.1f}", str(a.n), a.explanation]
                   for a in anomalies])


def _health_html(health: Sequence["ProviderHealth"]) -> str:
    if not health:
        return _empty("No calls in the last hour.")
    return _table(["PROVIDER", "CALLS", "SUCCESS", "P50 ms", "P95 ms", "FAILS IN A ROW", "CIRCUIT"],
                  [[h.provider or "(none)", str(h.count), _pct(h.success_rate),
                    "-" if h.latency_p50_ms is None else f"{h.latency_p50_ms:.1f}",
                    "-" if h.latency_p95_ms is None else f"{h.latency_p95_ms:.1f}",
                    str(h.consecutive_failures), h.circuit] for h in health],
                  [h.circuit.replace("_", "-") for h in health])


def _confidence_html(confidence: Sequence["Confidence"]) -> str:
    if not confidence:
        return _empty("No feedback recorded (otel_llm.record_feedback).")
    return _table(["AGENT", "MODEL", "FEEDBACK", "SUCCESS", "SCORE", "IDLE DAYS", "CONFIDENCE", "TREND"],
                  [[c.agent or "(none)", c.model or "(none)", str(c.feedback_count), _pct(c.success_rate),
                    f"{c.score:.3f}", str(c.inactive_days), f"{c.confidence:.3f}", c.trend] for c in confidence])


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
svg.chart{width:100%;height:auto;display:block;margin:8px 0 16px}
svg .grid{stroke:#e4e4e4;stroke-width:1}svg text{font-size:11px;fill:#555}svg .legend{font-size:12px;fill:#222}
svg .reference,svg .reference-key{stroke:#d62728;stroke-width:1.5;stroke-dasharray:6 4}svg .marker{stroke:#d62728;stroke-width:2}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-size:12px;color:#666}tr.breach td,tr.open td{background:#fdecea}tr.half-open td{background:#fff6e0}
figure{margin:12px 0}figcaption{font-weight:600;font-size:13px;color:#333}
.note,.empty{color:#666}.meta{color:#666;margin-top:0}
"""

# Marks each chart with the number of data elements it drew (and the page when done), so
# that a reader's tooling — or a test in a headless browser — can tell the charts rendered.
_SCRIPT = """
(function () {
  var charts = document.querySelectorAll("svg.chart");
  var drawn = 0;
  for (var i = 0; i < charts.length; i++) {
    var n = charts[i].querySelectorAll(".datum").length;
    charts[i].setAttribute("data-points", String(n));
    if (n > 0) { drawn++; }
  }
  document.body.setAttribute("data-charts", String(charts.length));
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<p class="meta">Generated {generated} by otel-llm from the stored route observations.</p>
{notes}
{body}
<script>{script}</script>
</body>
</html>
"""
