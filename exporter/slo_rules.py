"""SLO alert rules: multi-window multi-burn-rate tiers, budget exhausted and no data (pure).

Both engines share these rules: the sidecar evaluates them over the series `SLOEvaluator`
writes, and `compile` emits them next to the recording rules that compute the same series
in Prometheus. The output is a plain `RuleGroup`, deterministic for a given SLO.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter import conventions as c
from exporter.durations import format_duration
from exporter.rules.model import AlertingRule, RuleGroup
from exporter.rules.slo_model import SLO, AlertTier, CalendarWindow
from exporter.rules.value_model import ValueMetric
from exporter.slo_series import base_labels, error_budget
from exporter.slo_windows import slo_window_ms, window_name
from exporter.templates_business import (
    MoneyAtRisk,
    at_risk_template,
    budget_gone_template,
    burn_rate_template,
    money_at_risk,
)

ALERT_BURN = "SLOErrorBudgetBurn"
ALERT_EXHAUSTED = "SLOErrorBudgetExhausted"
ALERT_NO_DATA = "SLONoData"
# The `tier` label values of the two non-burn alerts (burn alerts use the tier's name).
TIER_EXHAUSTED = "budget-exhausted"
TIER_NO_DATA = "no-data"
SEVERITY_LABEL = "severity"
TIER_LABEL = "tier"


def group_name(slo: SLO) -> str:
    """The name of an SLO's alert group (unique per SLO, stable across versions)."""
    return f"slo:{slo.name}"


def _number(x: float) -> str:
    # 12 significant digits hide binary noise (1 - 0.999 = 0.0010000000000000009).
    return f"{x:.12g}"


def tier_factor(slo: SLO, tier: AlertTier) -> float:
    """The burn-rate factor of a tier: as given, or budget fraction x SLO window / long window.

    For calendar windows this is the factor at the unit's nominal length (week 7d, month 30d,
    quarter 91d), as the alert's text states it; the rule itself scales the threshold with
    the current period's real length (`slo:period_length:seconds`).
    """
    if tier.factor is not None:
        return tier.factor
    fraction = tier.budget_fraction if tier.budget_fraction is not None else 0.0
    return float(_number(fraction * slo_window_ms(slo) / tier.long_window_ms))


def _selector(name: str, slo: SLO) -> str:
    value = slo.name.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}{{{c.SLO_LABEL}="{value}"}}'


def burn_rule(slo: SLO, tier: AlertTier, risk: MoneyAtRisk | None = None) -> AlertingRule:
    """One tier: both windows' error ratios above factor x error budget.

    The summary names the money at risk when a revenue-at-risk value metric covers the SLO;
    the description gives the burn rate and when the whole budget is gone at that rate.
    """
    factor = tier_factor(slo, tier)
    threshold = f"({_number(factor)} * {_number(error_budget(slo))})"
    if isinstance(slo.window, CalendarWindow) and tier.factor is None:
        # budget fraction x this period's length / long window: 31-day months burn a little
        # more budget per hour before paging than 28-day ones, as the fraction demands.
        fraction = tier.budget_fraction or 0.0
        per_second = fraction * error_budget(slo) / (tier.long_window_ms / 1000)
        threshold = (f"on ({c.SLO_LABEL}, {c.SERVICE_LABEL}) group_left () "
                     f"({_number(per_second)} * {_selector(c.SLO_PERIOD_LENGTH, slo)})")
    long_w, short_w = window_name(tier.long_window_ms), window_name(tier.short_window_ms)
    expr = (f"{_selector(c.slo_error_ratio(long_w), slo)} > {threshold}\n"
            f"and\n{_selector(c.slo_error_ratio(short_w), slo)} > {threshold}")
    share = tier.budget_fraction if tier.budget_fraction is not None else \
        factor * tier.long_window_ms / slo_window_ms(slo)
    summary = (f"SLO {slo.name} of {slo.service} burns its error budget {_number(factor)}x "
               f"too fast ({long_w} and {short_w} windows)")
    if risk is not None:
        summary += at_risk_template(slo, risk, "; ")
    description = (f"Burning the error budget {burn_rate_template(slo)}x as fast as the "
                   f"objective allows (this tier fires from {_number(factor)}x, "
                   f"{_number(share * 100)}% of the budget in {long_w}); at this rate "
                   f"{budget_gone_template(slo)}; objective {_number(slo.objective_percent)}%.")
    return AlertingRule(
        name=ALERT_BURN,
        expr=expr,
        for_ms=tier.for_ms,
        labels=_labels(slo, tier.severity, tier.name,
                       (("long_window", long_w), ("short_window", short_w))),
        annotations=_annotations(slo, summary, description, risk),
        source=slo.source,
    )


def exhausted_rule(slo: SLO, risk: MoneyAtRisk | None = None) -> AlertingRule:
    """The budget of the SLO window is spent (remaining <= 0)."""
    return AlertingRule(
        name=ALERT_EXHAUSTED,
        expr=f"{_selector(c.SLO_BUDGET_REMAINING, slo)} <= 0",
        labels=_labels(slo, "ticket", TIER_EXHAUSTED),
        annotations=_annotations(
            slo, f"SLO {slo.name} of {slo.service} has spent its error budget",
            f"Objective {_number(slo.objective_percent)}% is missed for the current window.",
            risk),
        source=slo.source,
    )


def no_data_rules(slo: SLO, for_ms: int) -> tuple[AlertingRule, AlertingRule]:
    """No SLI events for `for_ms` (two rules under one alert name, one per cause).

    Quiet: the event counter did not grow over the last `for_ms`, and it already existed
    `for_ms` before that, so a freshly started sidecar waits a full window before saying so.
    Absent: no SLO series at all (a group_by SLO whose series never appeared, or the sidecar
    not writing), for `for_ms`, which also rides out the start before the first scrape.
    """
    window = format_duration(for_ms)
    events = _selector(c.SLO_EVENTS, slo)
    # The two conditions differ in a `cause` label, so the rules stay distinct to linters
    # and on-call can tell a quiet SLI from a missing one.
    quiet_labels = _labels(slo, "ticket", TIER_NO_DATA, (("cause", "no-events"),))
    absent_labels = _labels(slo, "ticket", TIER_NO_DATA, (("cause", "absent"),))
    annotations = _annotations(
        slo, f"SLO {slo.name} of {slo.service} has had no events for {window}",
        "The SLI's series are missing or carry no traffic; the budget is not measured.")
    quiet = AlertingRule(
        name=ALERT_NO_DATA,
        expr=(f"increase({events}[{window}]) == 0\n"
              f"and\npresent_over_time({events}[{window}] offset {window})"),
        labels=quiet_labels, annotations=annotations, source=slo.source,
    )
    absent = AlertingRule(
        name=ALERT_NO_DATA, expr=f"absent({events})", for_ms=for_ms,
        labels=absent_labels, annotations=annotations, source=slo.source,
    )
    return quiet, absent


def _labels(slo: SLO, severity: str, tier: str,
            extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    labels = {SEVERITY_LABEL: severity, TIER_LABEL: tier, **dict(extra)}
    labels.update(slo.alerting.labels)  # the SLO's own alerting labels win
    # The series carry slo and service already; naming them here keeps each SLO's rules
    # distinct to linters (promtool's duplicate-rule check) and to readers of the rule file.
    labels.update(base_labels(slo))
    return tuple(sorted(labels.items()))


def _annotations(slo: SLO, summary: str, description: str,
                 risk: MoneyAtRisk | None = None) -> tuple[tuple[str, str], ...]:
    notes = {"summary": summary, "description": description}
    owner = slo.owner or (risk.owner if risk is not None else "")
    if owner:
        notes["owner"] = owner
    if risk is not None:
        notes["at_risk"] = at_risk_template(slo, risk)
    if slo.alerting.runbook_url:
        notes["runbook_url"] = slo.alerting.runbook_url
    notes.update(slo.alerting.annotations)
    return tuple(sorted(notes.items()))


def slo_alert_rules(slo: SLO, values: tuple[ValueMetric, ...] = ()) -> tuple[AlertingRule, ...]:
    """Every alert rule of an SLO: enabled tiers in order, then exhausted, then no data.

    `values` are the rule set's value metrics: a revenue-at-risk one over this SLO puts the
    money at stake in the burn and exhausted alerts.
    """
    risk = money_at_risk(slo, values)
    rules = [burn_rule(slo, tier, risk) for tier in slo.alerting.tiers if tier.enabled]
    if slo.alerting.budget_exhausted:
        rules.append(exhausted_rule(slo, risk))
    if slo.alerting.no_data_for_ms is not None:
        rules.extend(no_data_rules(slo, slo.alerting.no_data_for_ms))
    return tuple(rules)


def slo_alert_group(slo: SLO, *, interval_ms: int,
                    values: tuple[ValueMetric, ...] = ()) -> RuleGroup:
    """The SLO's alert rules as one rule group, evaluated right after the SLO's series."""
    return RuleGroup(
        name=group_name(slo),
        file=slo.source.file,
        rules=slo_alert_rules(slo, values),
        interval_ms=interval_ms,
    )


def slo_alert_groups(slos: Iterable[SLO], interval_ms: int,
                     values: tuple[ValueMetric, ...] = ()) -> tuple[RuleGroup, ...]:
    """The alert group of each SLO, in SLO order (evaluated after the SLO's series)."""
    return tuple(slo_alert_group(slo, interval_ms=interval_ms, values=values) for slo in slos)
