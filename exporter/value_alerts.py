"""Value thresholds: `alert:` on a value metric -> an alerting rule with business annotations.

A value metric may declare `alert: {above|below: N, for: 10m, severity: page|ticket,
summary: ...}`. Each becomes one rule `ValueThreshold` in a `value:alerts` group per rule
file, evaluated after `value:metrics` so it reads the value just recorded; the same PromQL
runs in the sidecar and, through `compile`, in Prometheus.
"""

from __future__ import annotations

import yaml

from exporter import conventions as c
from exporter.compile_promql import number
from exporter.durations import format_duration
from exporter.rules.model import AlertingRule, RuleGroup, RuleSet
from exporter.rules.value_model import ValueAlert, ValueMetric
from exporter.templates import check_template
from exporter.value import shorthand_series
from exporter.yamlkinds import DURATION, FLOAT, STR, one_of
from exporter.yamlnodes import Invalid, Kind, MapReader, Problems

GROUP_NAME = "value:alerts"
ALERT_NAME = "ValueThreshold"
TIER = "value-threshold"  # the `tier` label, beside the SLO tiers, for inhibition rules
SEVERITIES = ("page", "ticket")


def _read(node: yaml.Node, ctx: str, problems: Problems) -> ValueAlert:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as a:
        above = a.optional("above", FLOAT, None)
        below = a.optional("below", FLOAT, None)
        # Presence, not value: a mistyped threshold is reported once, as itself.
        if a.has("above") == a.has("below"):
            a.error(None, "an alert needs exactly one of above and below",
                    "above: 5000 or below: 100")
        for_ms = a.optional("for", DURATION, 0)
        severity = a.optional("severity", one_of(*SEVERITIES), "ticket")
        summary = a.optional("summary", STR, "")
        problem = check_template(summary, "__alert_" + ALERT_NAME) if summary else None
        if problem is not None:
            a.error("summary", problem, "a valid Go template")
    if problems.error_count() != before:
        raise Invalid()
    threshold = above if above is not None else below
    assert threshold is not None
    return ValueAlert(threshold=threshold, above=above is not None, for_ms=int(for_ms),
                      severity=severity, summary=summary)


# The `alert:` key of a value metric, for the value loader (strict keys, file:line:col).
VALUE_ALERT: Kind[ValueAlert] = Kind(
    "{above|below: number, for: 10m, severity: page|ticket, summary: text}", _read,
    lambda: ValueAlert(0.0, True))


def watched_series(metric: ValueMetric) -> str:
    """The series a threshold compares: the metric itself, or a shorthand's hourly figure."""
    if metric.shorthand is None:
        return metric.name
    return shorthand_series(metric.shorthand)[0]


def _is_money(unit: str) -> bool:
    return len(unit) == 3 and unit.isalpha() and unit.isupper()


def _amount(unit: str, text: str) -> str:
    """`EUR 5200` for money (whole units, as a business reader wants), `0.25 ratio` else."""
    if _is_money(unit):
        return f"{unit} {text}"
    return f"{text} {unit}".strip()


def value_alert_rule(metric: ValueMetric, alert: ValueAlert) -> AlertingRule:
    """One threshold rule with summary, description, owner, severity and tier."""
    series = watched_series(metric)
    op, word = (">", "above") if alert.above else ("<", "below")
    now = "{{ printf \"%.0f\" $value }}" if _is_money(metric.unit) else "{{ $value | humanize }}"
    what = metric.help.rstrip(".") if metric.help else series
    summary = alert.summary or (f"{what} is {_amount(metric.unit, now)}, {word} "
                                f"{_amount(metric.unit, number(alert.threshold))}")
    lasting = f" for {format_duration(alert.for_ms)}" if alert.for_ms else ""
    description = (f"{series} has been {word} {_amount(metric.unit, number(alert.threshold))}"
                   f"{lasting}; owner: {metric.owner}.")
    labels = {"severity": alert.severity, "tier": TIER, "metric": series}
    if metric.shorthand is not None:
        labels[c.SLO_LABEL] = metric.shorthand.slo
    return AlertingRule(
        name=ALERT_NAME,
        expr=f"{series} {op} {number(alert.threshold)}",
        for_ms=alert.for_ms,
        labels=tuple(sorted(labels.items())),
        annotations=(("description", description), ("owner", metric.owner),
                     ("summary", summary)),
        source=metric.source,
    )


def value_alert_groups(ruleset: RuleSet, interval_ms: int,
                       file: str | None = None) -> list[RuleGroup]:
    """One `value:alerts` group per file whose value metrics declare alerts (or only `file`)."""
    groups: list[RuleGroup] = []
    for f in ruleset.files:
        if file is not None and f != file:
            continue
        rules = tuple(value_alert_rule(m, m.alert) for m in ruleset.values
                      if m.source.file == f and m.alert is not None)
        if rules:
            groups.append(RuleGroup(name=GROUP_NAME, file=f, rules=rules,
                                    interval_ms=interval_ms))
    return groups
