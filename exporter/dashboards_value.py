"""dashboards (business value): money, customer journeys and improvement targets, for executives."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import dashboard as dm

from exporter import conventions as c
from exporter.dashboards_panels import (
    ALL_SERVICES,
    AMBER,
    BLUE,
    BUSINESS,
    GREEN,
    RED,
    SERVICE_LEVELS,
    Queries,
    bargauge_panel,
    currency_unit,
    datasource_variable,
    drilldown,
    gauge_panel,
    links,
    new_dashboard,
    row,
    service_variables,
    stat_panel,
    steps,
)
from exporter.durations import format_duration
from exporter.rules.journey_model import Improvement, Journey
from exporter.rules.model import RuleSet
from exporter.units import is_share
from exporter.value import shorthand_series

# Series from the SLOs carry `service` and `slo`; journeys, improvements and hand-written value
# metrics carry neither, so they match the selection or, having no such label, always show.
SCOPED = 'service=~"$service", slo=~"$slo"'
UNSCOPED = 'service=~"$service|", slo=~"$slo|"'

# Title, plain-language description and colour of each money series a shorthand records.
_MONEY: dict[str, tuple[str, str, str]] = {
    c.REVENUE_AT_RISK[0]: ("Revenue at risk, last hour",
                           "Money the customers who met an error in the last hour meant to spend.",
                           AMBER),
    c.REVENUE_AT_RISK[1]: ("Revenue at risk this SLO period",
                           "The same, over the whole SLO window (e.g. 30 days).", AMBER),
    c.VALUE_DELIVERED[0]: ("Value delivered, last hour",
                           "Money from the customer actions that succeeded in the last hour.",
                           GREEN),
    c.VALUE_DELIVERED[1]: ("Value delivered this SLO period",
                           "The same, over the whole SLO window.", GREEN),
    c.DOWNTIME_COST: ("Cost of downtime, last hour",
                      "What the minutes of failure in the last hour cost the business.", RED),
    c.BUDGET_VALUE: ("Error budget left, in money",
                     "How much more failure the objectives allow this period, valued in money; "
                     "below zero the promise to customers is broken.", GREEN),
}


def business_dashboard(ruleset: RuleSet, service: str = ALL_SERVICES) -> db.Dashboard:
    """The executive view: money first, then journeys, then the improvement register."""
    d = (new_dashboard(BUSINESS, "What IT delivers to the business: money earned and at risk, "
                       "how customers get through their journeys, and whether improvements "
                       "are on track.", ["business"], service)
         .variables([datasource_variable(), *service_variables(service)])
         .links(links(BUSINESS, service)))
    money = _money_panels(ruleset, service)
    if money:
        d = d.with_row(row("Money: delivered and at risk"))
        for panel in money:
            d = d.with_panel(panel)
    other = [m for m in ruleset.values if m.expr is not None]
    if other:
        d = d.with_row(row("Business and service management measures"))
        for metric in sorted(other, key=lambda m: m.name):
            text = f"{metric.help} Owner: {metric.owner}.".strip()
            d = d.with_panel(stat_panel(
                _sentence(metric.help) or metric.name, text, _unit(metric.name, metric.unit),
                Queries().add(f"sum({metric.name}{{{UNSCOPED}}})", metric.name), width=8))
    for journey in sorted(ruleset.journeys, key=lambda j: j.name):
        d = d.with_row(row(f"Customer journey: {journey.name}"))
        for panel in _journey_panels(journey):
            d = d.with_panel(panel)
    if ruleset.improvements:
        d = d.with_row(row("Improvement targets"))
        for improvement in sorted(ruleset.improvements, key=lambda i: i.name):
            for panel in _improvement_panels(improvement):
                d = d.with_panel(panel)
    return d


def _money_panels(ruleset: RuleSet, service: str) -> list[stat.Panel]:
    """One stat per money series, summed over the selected SLOs; owners named in the text."""
    owners: dict[str, list[str]] = {}
    for metric in ruleset.values:
        if metric.shorthand is None:
            continue
        for name in shorthand_series(metric.shorthand):
            owners.setdefault(name, [])
            text = f"{metric.help} (SLO {metric.shorthand.slo}, owner: {metric.owner})"
            owners[name].append(text)
    panels = []
    for name in sorted(owners, key=_money_order):
        template = _template(name)
        title, explanation, colour = _MONEY[template]
        cur = name.split("_")[-1].split(":")[0]
        description = " ".join([explanation, *owners[name]])
        thresholds = steps((None, RED), (0, colour)) if template == c.BUDGET_VALUE else None
        panels.append(stat_panel(
            title, description, currency_unit(cur),
            Queries().add(f"sum({name}{{{SCOPED}}})", title),
            thresholds=thresholds or steps((None, colour)), decimals=0)
            .links([drilldown(SERVICE_LEVELS, "The objectives behind this number", service)]))
    return panels


def _template(name: str) -> str:
    """The conventions.py pattern a money series name was formatted from."""
    for template in _MONEY:
        prefix, _, suffix = template.partition("{cur}")
        if name.startswith(prefix) and name.endswith(suffix):
            return template
    raise ValueError(f"not a money series: {name}")


def _money_order(name: str) -> tuple[int, str]:
    return (list(_MONEY).index(_template(name)), name)


def _journey_panels(journey: Journey) -> list[Any]:
    """The funnel (customers per step), each step's success, the conversion and its value."""
    j = f'journey="{journey.name}", {UNSCOPED}'
    window = format_duration(journey.window_ms)
    w = "window"
    funnel = Queries()
    success = Queries()
    for i, stage in enumerate(journey.stages, start=1):
        sel = f'{{{j}, stage="{stage.name}"}}'
        funnel.add(f"sum({c.JOURNEY_ATTEMPTS.format(w='_' + w)}{sel})", f"{i}. {stage.name}")
        success.add(f"sum({c.JOURNEY_STAGE_SUCCESS.format(w=w)}{sel})", f"{i}. {stage.name}")
    lead = f"{journey.description} Owner: {journey.owner}.".strip()
    panels: list[Any] = [
        bargauge_panel(f"Customers reaching each step (last {window})",
                       f"{lead} How many customers started each step, in journey order.",
                       "short", funnel, width=8),
        bargauge_panel(f"Share who get through each step (last {window})",
                       "Of the customers who started a step, the share who completed it.",
                       "percentunit", success, width=8, maximum=1,
                       thresholds=steps((None, RED), (0.5, AMBER), (0.8, GREEN))),
        stat_panel(f"Conversion, first step to last (last {window})",
                   "Share of customers who started the journey and finished it.", "percentunit",
                   Queries().add(f"sum({c.JOURNEY_CONVERSION.format(w=w)}{{{j}}})", "conversion"),
                   width=4, decimals=1),
    ]
    if journey.currency and any(s.has_value for s in journey.stages):
        name = c.JOURNEY_VALUE.format(cur=journey.currency, w="_" + w)
        panels.append(stat_panel(
            f"Value realized (last {window})",
            "Money the completed journeys brought in.", currency_unit(journey.currency),
            Queries().add(f"sum({name}{{{j}}})", "value realized"),
            thresholds=steps((None, GREEN)), width=4, decimals=0))
    return panels


def _improvement_panels(imp: Improvement) -> list[Any]:
    """Baseline, target, now, progress (gauge) and on-track status of one improvement."""
    sel = f'{{improvement="{imp.name}", {UNSCOPED}}}'
    better = "lower" if imp.direction == "down" else "higher"
    lead = f"{imp.description} Owner: {imp.owner}. {better.capitalize()} is better."
    on_track = (stat_panel(f"{imp.name}: on track?",
                           "On track when progress so far is at least the share of the time "
                           "to the due date that has passed.", "none",
                           Queries().add(f"max({c.IMPROVEMENT_ON_TRACK}{sel})", "on track"),
                           width=4, sparkline=False)
                .mappings([dm.ValueMap(options={
                    "0": dm.ValueMappingResult(text="Behind", color=RED, index=0),
                    "1": dm.ValueMappingResult(text="On track", color=GREEN, index=1)})])
                .thresholds(steps((None, RED), (1, GREEN))))
    return [
        _number(f"{imp.name}: baseline", lead, f"max({c.IMPROVEMENT_BASELINE}{sel})"),
        _number(f"{imp.name}: target", "Where we want to be by the due date.",
                f"max({c.IMPROVEMENT_TARGET}{sel})"),
        _number(f"{imp.name}: now", "Where we are now.", f"max({c.IMPROVEMENT_CURRENT}{sel})"),
        gauge_panel(f"{imp.name}: progress to target",
                    "Share of the way from baseline to target covered so far (100 % = target "
                    "reached, below 0 = worse than the baseline).", "percentunit",
                    Queries().add(f"max({c.IMPROVEMENT_PROGRESS}{sel})", "progress"),
                    thresholds=steps((None, RED), (0, AMBER), (1, GREEN)), width=4, height=5),
        on_track,
        _number(f"{imp.name}: days left", "Days until the due date.",
                f"max({c.IMPROVEMENT_DAYS_LEFT}{sel})", unit="d"),
    ]


def _number(title: str, description: str, expr: str, unit: str = "none") -> stat.Panel:
    return stat_panel(title, description, unit, Queries().add(expr, title), width=4,
                      height=5, sparkline=False, thresholds=steps((None, BLUE)))


def _unit(name: str, unit: str) -> str:
    """Grafana's unit id for a value metric's unit."""
    if unit == "seconds":
        return "s"
    if unit == "ratio":
        return "percentunit" if is_share(name, unit) else "none"
    if unit.isalpha() and unit.isupper() and len(unit) == 3:
        return currency_unit(unit)
    return "none"


def _sentence(text: str) -> str:
    """A panel title from a help text: its first sentence without the final full stop."""
    return text.split(". ")[0].rstrip(".")
