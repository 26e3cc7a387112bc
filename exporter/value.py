"""Value metrics and parameters -> recording rules, the same PromQL for the sidecar and Prometheus.

One group per rule file, `value:metrics`, evaluated at the SLO interval after the SLO series:
first `parameter:<name>` for each metric-backed parameter, then each value metric in file
order, each followed by `value:info{metric, owner, unit}` = 1 (plus `slo` for shorthands).

Shorthands over an SLO (E = `slo:events:total`, G = `slo:good_events:total`, selected by
`slo`; v = the parameter, a constant inlined or `on() group_left() parameter:<name>`; <cur> the
parameter's currency, lower case; b the SLO's error budget ratio; R =
`slo:error_budget_remaining:events`, r = `slo:sli_error:ratio_period`):

- revenue_at_risk (failed events x value per event):
  `slo:revenue_at_risk_<cur>:increase1h` = ((E - E offset 1h) - (G - G offset 1h)) * v;
  `slo:revenue_at_risk_<cur>:period` = R * r / ((b - r) != 0) * v (the window's bad events: with
  T events, R = bT - rT, so T = R / (b - r); absent when r is exactly b or the window is empty).
- value_delivered (good events x value per event):
  `slo:value_delivered_<cur>:increase1h` = (G - G offset 1h) * v;
  `slo:value_delivered_<cur>:period` = R * (1 - r) / ((b - r) != 0) * v.
- error_budget_value (remaining budget events x value per event):
  `slo:error_budget_remaining_<cur>:period` = R * v (negative when overspent).
- cost_of_downtime (bad minutes x cost per minute): per evaluation interval i,
  `slo:downtime:ratio_interval` = (ΔE - ΔG) / (ΔE > 0) with ΔX = X - X offset i, the share of
  that interval's events that were bad; `slo:downtime_cost_<cur>:increase1h` =
  sum_over_time(slo:downtime:ratio_interval[1h]) * (i in minutes) * v. An interval inside a
  maintenance window counts no events (the SLO's counters skip it), has no ratio sample and so
  adds no minutes: maintenance is excluded. On an availability SLI (one event per scrape of a
  0/1 gauge) this is exactly the minutes down; on a ratio SLI, partially failing minutes count
  in proportion.
"""

from __future__ import annotations

from exporter import conventions as c
from exporter.compile_promql import canonical, duration, number, selector
from exporter.rules.model import RecordingRule, Rule, RuleGroup, RuleSet
from exporter.rules.slo_model import SLO
from exporter.rules.value_model import Parameter, Shorthand, ValueMetric
from exporter.slo_series import error_budget

GROUP_NAME = c.VALUE_GROUP
INFO = c.VALUE_INFO
PARAMETER_PREFIX = c.PARAMETER_PREFIX
DOWNTIME_RATIO = c.DOWNTIME_RATIO


def shorthand_series(sh: Shorthand) -> list[str]:
    """The series a shorthand records (besides the shared `slo:downtime:ratio_interval`)."""
    cur = sh.currency
    return {
        "revenue_at_risk": [n.format(cur=cur) for n in c.REVENUE_AT_RISK],
        "value_delivered": [n.format(cur=cur) for n in c.VALUE_DELIVERED],
        "error_budget_value": [c.BUDGET_VALUE.format(cur=cur)],
        "cost_of_downtime": [c.DOWNTIME_COST.format(cur=cur)],
    }[sh.kind]


def value_groups(ruleset: RuleSet, interval_ms: int, file: str | None = None) -> list[RuleGroup]:
    """One `value:metrics` group per file with parameters or value metrics (or only `file`)."""
    files = [f for f in ruleset.files if file is None or f == file]
    params = {p.name: p for p in ruleset.parameters}
    slos = {s.name: s for s in ruleset.slos}
    groups: list[RuleGroup] = []
    for f in files:
        rules: list[Rule] = [
            RecordingRule(name=PARAMETER_PREFIX + p.name, expr=canonical(p.expr),
                          source=p.source)
            for p in ruleset.parameters if p.source.file == f and p.expr is not None]
        for metric in ruleset.values:
            if metric.source.file == f:
                rules.extend(value_rules(metric, params, slos, interval_ms))
        if rules:
            groups.append(RuleGroup(name=GROUP_NAME, file=f, rules=tuple(rules),
                                    interval_ms=interval_ms))
    return groups


def value_rules(metric: ValueMetric, params: dict[str, Parameter], slos: dict[str, SLO],
                interval_ms: int) -> list[RecordingRule]:
    """The recording rules of one value metric, then its info series."""
    sh = metric.shorthand
    if sh is None:
        assert metric.expr is not None
        rules = [RecordingRule(name=metric.name, expr=canonical(metric.expr),
                               source=metric.source)]
        info: tuple[tuple[str, str], ...] = (
            ("metric", metric.name), ("owner", metric.owner), ("unit", metric.unit))
    else:
        rules = [RecordingRule(name=name, expr=canonical(expr), source=metric.source)
                 for name, expr in _expand(sh, params[sh.parameter], slos[sh.slo], interval_ms)]
        info = (("metric", sh.kind), ("owner", metric.owner), (c.SLO_LABEL, sh.slo),
                ("unit", metric.unit))
    rules.append(RecordingRule(name=INFO, expr="vector(1)", labels=tuple(sorted(info)),
                               source=metric.source))
    return rules


def _times(expr: str, param: Parameter) -> str:
    """`expr` times the parameter: a constant inline, a metric matched onto every series."""
    if param.value is None:
        return f"({expr}) * on() group_left() {PARAMETER_PREFIX}{param.name}"
    from exporter.rules.value_load import constant_expr  # the loader owns $name substitution

    return f"({expr}) * {constant_expr(param)}"


def _expand(sh: Shorthand, param: Parameter, slo: SLO,
            interval_ms: int) -> list[tuple[str, str]]:
    own = ((c.SLO_LABEL, slo.name),)
    events, good = selector(c.SLO_EVENTS, own), selector(c.SLO_GOOD_EVENTS, own)
    remaining = selector(c.SLO_BUDGET_REMAINING_EVENTS, own)
    ratio = selector(c.SLO_ERROR_RATIO_PERIOD, own)
    denominator = f"(({number(error_budget(slo))} - {ratio}) != 0)"
    names = shorthand_series(sh)
    if sh.kind == "revenue_at_risk":
        bad_1h = f"({events} - {events} offset 1h) - ({good} - {good} offset 1h)"
        bad_period = f"{remaining} * {ratio} / {denominator}"
        return [(names[0], _times(bad_1h, param)), (names[1], _times(bad_period, param))]
    if sh.kind == "value_delivered":
        good_period = f"{remaining} * (1 - {ratio}) / {denominator}"
        return [(names[0], _times(f"{good} - {good} offset 1h", param)),
                (names[1], _times(good_period, param))]
    if sh.kind == "error_budget_value":
        return [(names[0], _times(remaining, param))]
    step = duration(interval_ms)
    d_events = f"({events} - {events} offset {step})"
    d_good = f"({good} - {good} offset {step})"
    if slo.group_by:
        # The service is down by the share of all its bad events, not once per group: two
        # providers failing together are one minute of downtime, not two.
        without = ", ".join(slo.group_by)
        d_events, d_good = (f"sum without ({without}) ({d})" for d in (d_events, d_good))
    downtime = selector(DOWNTIME_RATIO, own)
    minutes = number(interval_ms / 60_000)
    return [(DOWNTIME_RATIO, f"({d_events} - {d_good}) / ({d_events} > 0)"),
            (names[0], _times(f"sum_over_time({downtime}[1h]) * {minutes}", param))]
