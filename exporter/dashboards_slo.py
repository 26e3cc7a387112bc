"""dashboards (service levels): per SLO, SLI against objective, budget, burn rates, alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as dm

from exporter import conventions as c
from exporter.dashboards_panels import (
    ALL_SERVICES,
    AMBER,
    GREEN,
    RED,
    SERVICE_LEVELS,
    TIMES,
    Queries,
    by_names,
    datasource_variable,
    links,
    new_dashboard,
    row,
    service_variables,
    stat_panel,
    steps,
    table_panel,
    timeseries_panel,
)
from exporter.durations import format_duration
from exporter.rules.model import RuleSet
from exporter.rules.slo_model import SLO
from exporter.slo_rules import tier_factor
from exporter.slo_windows import alert_windows_ms, slo_window_ms, window_name

SEL = 'slo=~"$slo", service=~"$service"'
_TIER_COLOURS = {"page": RED, "ticket": AMBER}


def service_levels_dashboard(ruleset: RuleSet, service: str = ALL_SERVICES) -> db.Dashboard:
    """One SLO at a time (or several overlaid): attainment, budget, burn rates, firing alerts."""
    d = (new_dashboard(SERVICE_LEVELS, "Service level objectives: how reliable each service "
                       "has been against its promise, how much error budget is left, and how "
                       "fast it burns.", ["slo"], service)
         .variables([datasource_variable(), *service_variables(service)])
         .links(links(SERVICE_LEVELS, service)))
    longest = max((slo_window_ms(s) for s in ruleset.slos), default=30 * 86_400_000)
    d = d.with_row(row("Objective and attainment"))
    d = d.with_panel(timeseries_panel(
        "Success rate against the objective",
        "Share of good events over the last hour (solid) and the objective (dashed).",
        "percentunit",
        Queries().add(f"1 - {c.slo_error_ratio(_sli_window(ruleset))}{{{SEL}}}",
                      "{{slo}} success rate")
        .add(_objective(), "{{slo}} objective"), width=12)
        .with_override(by_names([f"{s.name} objective" for s in _slos(ruleset)]), [_dashed()]))
    d = d.with_panel(stat_panel(
        "Attained this period",
        "Share of good events over the SLO window; for calendar windows, over the current "
        "week, month or quarter so far.", "percentunit",
        Queries().add(f"{c.SLO_SLI_PERIOD}{{{SEL}}}", "{{slo}}"), decimals=3))
    d = d.with_panel(stat_panel(
        "Margin over the objective",
        "Attainment minus objective: green while the promise is kept.", "percentunit",
        Queries().add(f"{c.SLO_SLI_PERIOD}{{{SEL}}} - on (slo, service) group_left () "
                      f"{_objective()}", "{{slo}}"),
        thresholds=steps((None, RED), (0, GREEN)), decimals=3))

    d = d.with_row(row("Error budget"))
    d = d.with_panel(stat_panel(
        "Error budget left",
        "Share of this window's allowed failures still unused; below zero the objective is "
        "missed.", "percentunit", Queries().add(f"{c.SLO_BUDGET_REMAINING}{{{SEL}}}", "{{slo}}"),
        thresholds=steps((None, RED), (0, AMBER), (0.25, GREEN)), decimals=1))
    d = d.with_panel(timeseries_panel(
        "Error budget burn-down",
        f"Error budget left over time, across the longest SLO window "
        f"({format_duration(longest)}).", "percentunit",
        Queries().add(f"{c.SLO_BUDGET_REMAINING}{{{SEL}}}", "{{slo}}"),
        thresholds=steps((None, RED), (0, GREEN)), width=12)
        .time_from(format_duration(longest)))
    d = d.with_panel(stat_panel(
        "Budget gone in", "At the current burn rate, how long until the error budget is used "
        "up.", "s", Queries().add(f"{c.SLO_BUDGET_EXHAUSTED_IN}{{{SEL}}}", "{{slo}}"),
        thresholds=steps((None, RED), (86_400, AMBER), (7 * 86_400, GREEN))))

    d = d.with_row(row("Burn rate"))
    d = d.with_panel(_burn_rate_panel(ruleset))
    d = d.with_panel(stat_panel(
        "Burn rate over the whole window",
        "1 means the budget lasts exactly the window; above 1 it runs out early.", TIMES,
        Queries().add(f"{c.SLO_BURN_RATE_PERIOD}{{{SEL}}}", "{{slo}}"),
        thresholds=steps((None, GREEN), (1, RED)), width=6, decimals=2))
    d = d.with_panel(table_panel(
        "Firing alerts", "Alerts of the selected objectives firing now, with their tier.",
        Queries().add(f'{c.ALERTS}{{alertstate="firing", {SEL}}}', "", instant=True,
                      table_format=True), width=6))
    return d


def _sli_window(ruleset: RuleSet) -> str:
    """The 1h window every default alert tier records, else the shortest window all share."""
    shared: set[int] | None = None
    for slo in ruleset.slos:
        windows = set(alert_windows_ms(slo))
        shared = windows if shared is None else shared & windows
    if not shared:
        return "1h"
    return window_name(3_600_000) if 3_600_000 in shared else window_name(min(shared))


def _burn_rate_panel(ruleset: RuleSet) -> timeseries.Panel:
    """Burn rate per alert window, and each tier's threshold per SLO as a dashed line."""
    queries = Queries()
    windows = sorted({ms for slo in ruleset.slos for ms in alert_windows_ms(slo)})
    for ms in windows:
        w = window_name(ms)
        queries.add(f"{c.slo_burn_rate(w)}{{{SEL}}}", f"{{{{slo}}}} over {w}")
    threshold_names: list[tuple[list[str], str]] = []
    tiers = sorted({t.name: t.severity for s in ruleset.slos for t in s.alerting.tiers
                    if t.enabled}.items())
    for name, severity in tiers:
        # A constant per SLO, selected through the SLO's own objective series so the
        # variables pick which lines show.
        having = [(s, t) for s in _slos(ruleset) for t in s.alerting.tiers
                  if t.enabled and t.name == name]
        parts = [f'{_objective(s.name)} * 0 + {tier_factor(s, t):g}' for s, t in having]
        queries.add(" or ".join(f"({p})" for p in parts), f"{{{{slo}}}} {name} threshold")
        # Grafana shows these series as "<slo> <tier> threshold": style them by that name.
        threshold_names.append(([f"{s.name} {name} threshold" for s, _ in having], severity))
    panel = timeseries_panel(
        "Burn rate per alert window",
        "How many times faster than sustainable the budget burns, per window. An alert tier "
        "fires when both its long and short window exceed its threshold (dashed; calendar "
        "windows at their nominal length).", TIMES, queries, width=12)
    for names, severity in threshold_names:
        colour = {"mode": "fixed", "fixedColor": _TIER_COLOURS.get(severity, RED)}
        panel = panel.with_override(
            by_names(names), [_dashed(), dm.DynamicConfigValue(id_val="color", value=colour)])
    return panel


def _objective(slo: str | None = None) -> str:
    """The objective, one series per SLO: the sidecar records it per group_by value too
    (`provider="card"`), compiled rules only per SLO; `max by` gives the same in both."""
    only = f'slo="{slo}", ' if slo is not None else ""
    return f"max by (slo, service) ({c.SLO_OBJECTIVE}{{{only}{SEL}}})"


def _slos(ruleset: RuleSet) -> list[SLO]:
    return sorted(ruleset.slos, key=lambda s: s.name)


def _dashed() -> dm.DynamicConfigValue:
    style = {"fill": "dash", "dash": [10, 10]}
    return dm.DynamicConfigValue(id_val="custom.lineStyle", value=style)
