"""Inline SVG charts for the HTML report: plain strings, no library, nothing fetched.

Three shapes cover the report: stacked bars per category (cost per agent per day),
lines over time with horizontal reference lines (latency percentiles against an SLO
threshold), and horizontal bars with a marker (burn rates against their threshold).
Every drawn data element carries ``class="datum"`` and a ``<title>`` with its value,
so a reader can hover it and a test can count it. Text is escaped; sizes are in the
SVG's own units and the chart scales to its container.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Sequence

#: Colours of successive series (colour-blind-safe palette).
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac")
WIDTH, HEIGHT = 760, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 150, 16, 44


@dataclass(frozen=True, slots=True)
class Series:
    """A named row of values, one per category or time (``None``: no value there)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Reference:
    """A horizontal line across a chart, e.g. an SLO threshold."""

    label: str
    value: float


@dataclass(frozen=True, slots=True)
class HBar:
    """One row of a horizontal bar chart: named values and an optional marker."""

    label: str
    values: Sequence[tuple[str, float | None]]
    marker: float | None = None
    highlight: bool = False
    notes: Sequence[str] = field(default_factory=tuple)


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2, 2.5 or 5 times a power of 10)."""
    if not top > 0 or math.isinf(top):
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def fmt_number(value: float) -> str:
    """Short label: 1.2k, 35, 0.25, 0.0031."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.3g}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _open(kind: str, title: str, height: int = HEIGHT) -> list[str]:
    return [f'<svg class="chart" data-chart="{escape(kind)}" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">', f"<title>{escape(title)}</title>"]


def _y_axis(parts: list[str], ticks: Sequence[float], y_of, unit: str) -> None:
    for t in ticks:
        y = y_of(t)
        parts.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{escape(fmt_number(t))}</text>')
    parts.append(f'<text class="unit" x="12" y="{MARGIN_TOP + 4}" text-anchor="start">{escape(unit)}</text>')


def _legend(parts: list[str], names: Sequence[str], dashed: Sequence[str] = ()) -> None:
    x = WIDTH - MARGIN_RIGHT + 14
    for i, name in enumerate(names):
        y = MARGIN_TOP + 8 + 18 * i
        parts.append(f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text class="legend" x="{x + 18}" y="{y + 1}">{escape(_short(name, 18))}</text>')
    for j, name in enumerate(dashed):
        y = MARGIN_TOP + 8 + 18 * (len(names) + j)
        parts.append(f'<line class="reference-key" x1="{x}" x2="{x + 12}" y1="{y - 3}" y2="{y - 3}"/>')
        parts.append(f'<text class="legend" x="{x + 18}" y="{y + 1}">{escape(_short(name, 18))}</text>')


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def stacked_bars(kind: str, title: str, categories: Sequence[str], series: Sequence[Series], *,
                 unit: str) -> str:
    """One stacked bar per category, one coloured segment per series."""
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0.0))
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    scale = plot_h / ticks[-1]

    def y_of(v: float) -> float:
        return MARGIN_TOP + plot_h - v * scale

    parts = _open(kind, title)
    _y_axis(parts, ticks, y_of, unit)
    slot = plot_w / max(1, len(categories))
    bar_w = max(2.0, slot * 0.7)
    label_every = max(1, math.ceil(len(categories) / 12))
    for i, category in enumerate(categories):
        x = MARGIN_LEFT + i * slot + (slot - bar_w) / 2
        base = 0.0
        for j, s in enumerate(series):
            value = s.values[i] or 0.0
            if value <= 0:
                continue
            parts.append(
                f'<rect class="datum" x="{x:.1f}" y="{y_of(base + value):.1f}" width="{bar_w:.1f}" '
                f'height="{value * scale:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f'<title>{escape(f"{s.name}, {category}: {value:.4f} {unit}")}</title></rect>')
            base += value
        if i % label_every == 0:
            parts.append(f'<text class="tick" x="{x + bar_w / 2:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                         f'text-anchor="middle">{escape(category)}</text>')
    _legend(parts, [s.name for s in series])
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(kind: str, title: str, times: Sequence[datetime], series: Sequence[Series], *, unit: str,
               references: Sequence[Reference] = ()) -> str:
    """Lines over time (gaps where a value is None), with dashed horizontal references."""
    values = [v for s in series for v in s.values if v is not None] + [r.value for r in references]
    ticks = nice_ticks(max(values, default=0.0) * 1.05)
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    scale = plot_h / ticks[-1]
    t0 = times[0].timestamp() if times else 0.0
    span = (times[-1].timestamp() - t0) if len(times) > 1 else 1.0

    def y_of(v: float) -> float:
        return MARGIN_TOP + plot_h - v * scale

    def x_of(t: datetime) -> float:
        return MARGIN_LEFT + (t.timestamp() - t0) / span * plot_w if len(times) > 1 else MARGIN_LEFT + plot_w / 2

    parts = _open(kind, title)
    _y_axis(parts, ticks, y_of, unit)
    label_every = max(1, math.ceil(len(times) / 8))
    daily = len(times) > 1 and all(t.hour == 0 for t in times)
    for i, t in enumerate(times):
        if i % label_every == 0:
            text = f"{t:%m-%d}" if daily else f"{t:%m-%d %H:%M}"
            parts.append(f'<text class="tick" x="{x_of(t):.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                         f'text-anchor="middle">{escape(text)}</text>')
    for j, s in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        run: list[str] = []
        for t, v in zip(times, s.values):
            if v is None:
                _flush_line(parts, run, colour)
                run = []
                continue
            run.append(f"{x_of(t):.1f},{y_of(v):.1f}")
            parts.append(f'<circle class="datum" cx="{x_of(t):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{colour}">'
                         f'<title>{escape(f"{s.name} {t:%Y-%m-%d %H:%M}: {v:.1f} {unit}")}</title></circle>')
        _flush_line(parts, run, colour)
    for r in references:
        y = y_of(r.value)
        parts.append(f'<line class="reference" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"><title>{escape(f"{r.label}: {r.value:g} {unit}")}</title></line>')
    _legend(parts, [s.name for s in series], [r.label for r in references])
    parts.append("</svg>")
    return "\n".join(parts)


def _flush_line(parts: list[str], points: list[str], colour: str) -> None:
    if len(points) > 1:
        parts.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{" ".join(points)}"/>')


def hbars(kind: str, title: str, rows: Sequence[HBar], *, unit: str) -> str:
    """One group of horizontal bars per row, with the row's marker as a vertical tick."""
    row_h, bar_h = 34, 11
    height = MARGIN_TOP + MARGIN_BOTTOM + row_h * max(1, len(rows))
    left = 230
    plot_w = WIDTH - left - MARGIN_RIGHT
    values = [v for r in rows for _, v in r.values if v is not None] + [r.marker for r in rows if r.marker]
    ticks = nice_ticks(max(values, default=0.0) * 1.05)
    scale = plot_w / ticks[-1]
    parts = _open(kind, title, height)
    for t in ticks:
        x = left + t * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{height - MARGIN_BOTTOM}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - MARGIN_BOTTOM + 16}" text-anchor="middle">'
                     f'{escape(fmt_number(t))}</text>')
    parts.append(f'<text class="unit" x="{WIDTH - MARGIN_RIGHT}" y="{height - 8}" text-anchor="end">'
                 f'{escape(unit)}</text>')
    names: list[str] = []
    for i, row in enumerate(rows):
        top = MARGIN_TOP + i * row_h + 4
        weight = ' font-weight="bold"' if row.highlight else ""
        parts.append(f'<text class="label" x="{left - 8}" y="{top + bar_h + 3}" text-anchor="end"{weight}>'
                     f'{escape(_short(row.label, 36))}</text>')
        for k, (name, value) in enumerate(row.values):
            if name not in names:
                names.append(name)
            if value is None:
                continue
            colour = PALETTE[names.index(name) % len(PALETTE)]
            note = f" ({', '.join(row.notes)})" if row.notes else ""
            parts.append(f'<rect class="datum" x="{left}" y="{top + k * (bar_h + 2)}" '
                         f'width="{max(1.0, value * scale):.1f}" height="{bar_h}" fill="{colour}">'
                         f'<title>{escape(f"{row.label}, {name}: {value:.2f} {unit}{note}")}</title></rect>')
        if row.marker is not None:
            x = left + row.marker * scale
            parts.append(f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 3}" '
                         f'y2="{top + 2 * bar_h + 5}"><title>{escape(f"threshold {row.marker:g}")}</title></line>')
    _legend(parts, names, ["threshold"])
    parts.append("</svg>")
    return "\n".join(parts)
