"""Error-budget burn rates and the multiwindow, multi-burn-rate alert rows.

The burn rate of a window is how fast it spends the error budget: its bad-event
fraction divided by the fraction the objective allows, ``(bad / total) / (1 - target)``.
A burn rate of 1 spends exactly the whole budget over the SLO window.

The alert rows are those of the Google SRE workbook ("Alerting on SLOs"), defined for a
30-day SLO window by the share of the budget a row reacts to:

=========  ===========  ============  ===============  ====================
severity   long window  short window  budget consumed  burn rate (30 d)
=========  ===========  ============  ===============  ====================
page       1 h          5 m           2 %              14.4
page       6 h          30 m          5 %              6
ticket     1 d          2 h           10 %             3
ticket     3 d          6 h           10 %             1
=========  ===========  ============  ===============  ====================

A window of length ``L`` burning at rate ``B`` consumes ``B * L / W`` of the budget of an
SLO window ``W``, so a row that should react when ``f`` of the budget is gone in ``L``
uses the threshold ``B = f * W / L``. For ``W = 30 d`` that gives the workbook's figures;
for ``W = 7 d`` the same budget shares give ``B_7d = B_30d * 7 / 30`` (3.36, 1.4, 0.7,
0.233). The short window (1/12 of the long one) must burn above the same threshold, so
an alert stops soon after the incident ends.

A row fires only when both its windows exceed the threshold and each holds at least a
minimum number of events (a 5-minute window with two calls, one failed, says nothing).
When ``threshold * (1 - target) >= 1`` even a window of 100 % errors cannot exceed the
threshold: the target is too loose for that row ever to fire, and the check warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Severity = Literal["page", "ticket"]

#: The SLO window the workbook's burn-rate thresholds are stated for.
REFERENCE_WINDOW = timedelta(days=30)
#: Fewest events a window needs before its burn rate may fire an alert row.
DEFAULT_MIN_EVENTS = 20


@dataclass(frozen=True, slots=True)
class BurnRule:
    """One alert row: fires when both windows burn faster than :meth:`threshold`."""

    severity: Severity
    long_window: timedelta
    short_window: timedelta
    #: Share of the SLO window's error budget the row reacts to having been consumed.
    budget_fraction: float

    def threshold(self, slo_window: timedelta) -> float:
        """Burn rate at which ``budget_fraction`` of the budget of ``slo_window`` is gone
        within ``long_window``: ``budget_fraction * slo_window / long_window``."""
        return self.budget_fraction * (slo_window / self.long_window)

    def can_fire(self, slo_window: timedelta, target: float) -> bool:
        """False when even 100 % errors burn below the threshold (target too loose)."""
        return self.threshold(slo_window) * (1.0 - target) < 1.0


#: The workbook's rows (thresholds 14.4, 6, 3 and 1 for a 30-day window).
DEFAULT_RULES: tuple[BurnRule, ...] = (
    BurnRule("page", timedelta(hours=1), timedelta(minutes=5), 0.02),
    BurnRule("page", timedelta(hours=6), timedelta(minutes=30), 0.05),
    BurnRule("ticket", timedelta(days=1), timedelta(hours=2), 0.10),
    BurnRule("ticket", timedelta(days=3), timedelta(hours=6), 0.10),
)


def burn_rate(bad: float, total: float, target: float) -> float | None:
    """``(bad / total) / (1 - target)``; ``None`` for a window without events."""
    if total <= 0:
        return None
    return (bad / total) / (1.0 - target)


def budget_remaining(bad: float, total: float, target: float) -> float | None:
    """Share of the error budget left over a window: 1 untouched, 0 spent, below 0 overspent.

    The budget is the number of bad events the target allows, ``(1 - target) * total``.
    ``None`` without events.
    """
    if total <= 0:
        return None
    return 1.0 - bad / ((1.0 - target) * total)


@dataclass(frozen=True, slots=True)
class WindowBurn:
    """Events and burn rate of one window ending at the check's time."""

    window: timedelta
    total: float
    bad: float
    burn_rate: float | None
    #: Whether the window held enough events for its burn rate to count.
    enough_events: bool


@dataclass(frozen=True, slots=True)
class BurnRow:
    """One alert row evaluated: both windows, the threshold, whether it fires."""

    severity: Severity
    threshold: float
    long: WindowBurn
    short: WindowBurn
    fires: bool
    #: False when the target is too loose for this row ever to fire.
    can_fire: bool


def window_burn(window: timedelta, total: float, bad: float, target: float, min_events: int) -> WindowBurn:
    """The burn of one window from its event counts."""
    return WindowBurn(window=window, total=total, bad=bad, burn_rate=burn_rate(bad, total, target),
                      enough_events=total >= min_events)


def evaluate_rule(rule: BurnRule, slo_window: timedelta, target: float,
                  long: WindowBurn, short: WindowBurn) -> BurnRow:
    """A row fires when both windows have enough events and burn above the threshold."""
    threshold = rule.threshold(slo_window)
    fires = all(w.enough_events and w.burn_rate is not None and w.burn_rate > threshold
                for w in (long, short))
    return BurnRow(severity=rule.severity, threshold=threshold, long=long, short=short,
                   fires=fires, can_fire=rule.can_fire(slo_window, target))
