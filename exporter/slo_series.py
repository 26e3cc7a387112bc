"""SLO series values from window sums: error ratios, burn rates and budgets (pure arithmetic).

No ratio is ever NaN: a window without events exports no error ratio, SLI or burn rate at
all (the series goes absent), while the budget of an empty window is untouched (1.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter import conventions as c
from exporter.labels import METRIC_NAME, Labels
from exporter.rules.slo_model import SLO, CalendarWindow, RollingWindow
from exporter.slo_windows import window_label, window_name

INF = math.inf


@dataclass(frozen=True, slots=True)
class WindowSums:
    """Good and total events (or slices) of one window."""

    good: float
    total: float

    @property
    def bad(self) -> float:
        return self.total - self.good


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """Everything one SLO group's series are computed from, at one evaluation."""

    windows: dict[int, WindowSums]  # alert window ms -> sums
    period: WindowSums
    period_start_ms: int
    period_length_ms: int  # the rolling duration, or this calendar period's real length
    events: float  # monotonic counters
    good_events: float


def rounded(x: float) -> float:
    """x to 12 significant digits: hides binary noise (99.9 / 100 = 0.9990000000000001)."""
    return float(f"{x:.12g}")


def objective(slo: SLO) -> float:
    """The objective as a ratio, without binary noise."""
    return rounded(slo.objective_percent / 100)


def error_budget(slo: SLO) -> float:
    """The error budget ratio (1 - objective), without binary noise (99.9 -> exactly 0.001)."""
    return rounded(1 - slo.objective_percent / 100)


def burn_rate(error_ratio: float, budget: float) -> float:
    """Error ratio over budget; a 100% objective burns infinitely on any error, else not."""
    if budget > 0:
        return error_ratio / budget
    return INF if error_ratio > 0 else 0.0


def budget_remaining(period: WindowSums, budget: float) -> tuple[float, float]:
    """(remaining ratio, remaining events): 1 - bad/(budget * total); an empty period has
    spent nothing, so its ratio is 1.0 (and 0 events remain of 0 allowed)."""
    allowed = budget * period.total
    remaining_events = allowed - period.bad
    if period.bad <= 0:
        return 1.0, remaining_events
    if allowed <= 0:
        return -INF, remaining_events
    return remaining_events / allowed, remaining_events


def exhausted_in_seconds(remaining: float, current_burn: float | None,
                         period_length_ms: int) -> float:
    """Seconds until the budget is spent at the current burn rate.

    A burn rate of 1 spends the whole budget in one SLO window, so the remaining share
    lasts remaining * window / burn. Already spent: 0. Not burning (no errors, or no
    traffic in the burn-rate window): +Inf. Calendar budgets reset at the period end; the
    figure does not stop there, so "exhausted after the reset" reads as "not this period".
    """
    if remaining <= 0:
        return 0.0
    if current_burn is None or current_burn <= 0:
        return INF
    return remaining * period_length_ms / 1000 / current_burn


def group_samples(slo: SLO, figures: GroupFigures,
                  exhaustion_window_ms: int) -> list[tuple[str, float]]:
    """(metric name, value) of every SLO series one group exports at this evaluation."""
    budget = error_budget(slo)
    out: list[tuple[str, float]] = []
    current_burn: float | None = None
    for ms, sums in sorted(figures.windows.items()):
        if sums.total <= 0:
            continue
        ratio = sums.bad / sums.total
        burn = burn_rate(ratio, budget)
        name = window_name(ms)
        out.append((c.slo_error_ratio(name), ratio))
        out.append((c.slo_burn_rate(name), burn))
        if ms == exhaustion_window_ms:
            current_burn = burn
    period = figures.period
    if period.total > 0:
        ratio = period.bad / period.total
        out.append((c.SLO_ERROR_RATIO_PERIOD, ratio))
        out.append((c.SLO_SLI_PERIOD, period.good / period.total))
        out.append((c.SLO_BURN_RATE_PERIOD, burn_rate(ratio, budget)))
    remaining, remaining_events = budget_remaining(period, budget)
    out.append((c.SLO_BUDGET_REMAINING, remaining))
    out.append((c.SLO_BUDGET_REMAINING_EVENTS, remaining_events))
    out.append((c.SLO_BUDGET_EXHAUSTED_IN,
                exhausted_in_seconds(remaining, current_burn, figures.period_length_ms)))
    out.append((c.SLO_EVENTS, figures.events))
    out.append((c.SLO_GOOD_EVENTS, figures.good_events))
    return out


def slo_samples(slo: SLO, period_start_ms: int) -> list[tuple[str, float]]:
    """(metric name, value) of the series an SLO has once, whatever its `group_by`.

    They carry the SLO's base labels only, as the compiled rules record them, so a join on
    `slo` works the same against either engine.
    """
    return [(c.SLO_OBJECTIVE, objective(slo)), (c.SLO_ERROR_BUDGET, error_budget(slo)),
            (c.SLO_PERIOD_START, period_start_ms / 1000)]


def base_labels(slo: SLO) -> dict[str, str]:
    """The labels every series of the SLO carries: its own labels, then slo and service."""
    labels = dict(slo.labels)
    labels[c.SLO_LABEL] = slo.name
    labels[c.SERVICE_LABEL] = slo.service
    return labels


def info_labels(slo: SLO) -> dict[str, str]:
    """The info series' metadata labels (besides the base labels)."""
    budgeting = "occurrences" if slo.budgeting is None else "timeslices"
    labels = {
        "objective": f"{slo.objective_percent:g}",
        "window": window_label(slo),
        "budgeting": budgeting,
        "owner": slo.owner,
        "description": slo.description,
    }
    if isinstance(slo.window, CalendarWindow):
        labels["timezone"] = slo.window.timezone
    return labels


def series_names(slo: SLO, windows: tuple[int, ...]) -> list[tuple[str, str, str]]:
    """(name, type, help) of every series an SLO writes, for the /metrics export."""
    out: list[tuple[str, str, str]] = []
    for ms in windows:
        w = window_name(ms)
        out.append((c.slo_error_ratio(w), "gauge", f"SLO error ratio (bad/total) over {w}."))
        out.append((c.slo_burn_rate(w), "gauge", f"SLO burn rate over {w}."))
    out += [
        (c.SLO_ERROR_RATIO_PERIOD, "gauge", "SLO error ratio over the SLO window."),
        (c.SLO_SLI_PERIOD, "gauge", "SLI (good/total) over the SLO window."),
        (c.SLO_BURN_RATE_PERIOD, "gauge", "SLO burn rate over the SLO window."),
        (c.SLO_OBJECTIVE, "gauge", "SLO objective as a ratio."),
        (c.SLO_ERROR_BUDGET, "gauge", "Error budget as a ratio (1 - objective)."),
        (c.SLO_BUDGET_REMAINING, "gauge", "Share of the error budget left; below 0 overspent."),
        (c.SLO_BUDGET_REMAINING_EVENTS, "gauge", "Bad events (or slices) the budget still allows."),
        (c.SLO_BUDGET_EXHAUSTED_IN, "gauge",
         "Seconds until the budget is spent at the 1h burn rate."),
        (c.SLO_PERIOD_START, "gauge", "Start of the current SLO window (Unix time)."),
        (c.SLO_PERIOD_LENGTH, "gauge", "Length of the SLO window (calendar: this period's)."),
        # Counters, exported untyped: prometheus-client's counter type wants a family name
        # without `_total` (and `slo:events:total` has none), and rate() needs no type.
        (c.SLO_EVENTS, "unknown", "SLO events counted into the budget (monotonic)."),
        (c.SLO_GOOD_EVENTS, "unknown", "Good SLO events counted into the budget (monotonic)."),
        (c.SLO_INFO, "gauge", "SLO metadata: objective, window, budgeting, owner."),
        (c.SLO_DATA_GAP, "unknown", "Sidecar downtime inside SLO windows, never counted good."),
    ]
    return out


def labelled(name: str, labels: dict[str, str]) -> Labels:
    """A store label set from a metric name and labels (empty values dropped)."""
    pairs = [(k, v) for k, v in labels.items() if v != "" and k != METRIC_NAME]
    pairs.append((METRIC_NAME, name))
    return tuple(sorted(pairs))


def rolling_length_ms(slo: SLO) -> int | None:
    """The rolling window's duration, None for calendar windows."""
    return slo.window.duration_ms if isinstance(slo.window, RollingWindow) else None
