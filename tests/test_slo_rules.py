"""SLO alert rules: burn-rate factors, PromQL, labels, business annotations, determinism."""

from __future__ import annotations

import copy
import re

import pytest

from exporter.promql.plan import plan_query
from exporter.rules.load import load_rule_files
from exporter.rules.model import AlertingRule
from exporter.rules.slo_model import AlertTier, CalendarWindow, RollingWindow, SLOAlerting, Window
from exporter.rules.value_model import Shorthand, ValueMetric
from exporter.slo import SLOEvaluator
from exporter.slo_rules import (
    ALERT_BURN,
    ALERT_EXHAUSTED,
    ALERT_NO_DATA,
    slo_alert_group,
    tier_factor,
)
from exporter.store import SeriesStore
from tests.slo_helpers import DAY, HOUR, MIN, TIERS, make_slo

# (id, window, tier, expected factor) — factor = budget fraction x SLO window / long window.
FACTORS = [
    ("30d-page-fast", RollingWindow(30 * DAY), TIERS[0], 14.4),  # 0.02 * 720h / 1h
    ("30d-page-slow", RollingWindow(30 * DAY), TIERS[1], 6.0),  # 0.05 * 720h / 6h
    ("30d-ticket-fast", RollingWindow(30 * DAY), TIERS[2], 3.0),  # 0.10 * 720h / 24h
    ("30d-ticket-slow", RollingWindow(30 * DAY), TIERS[3], 1.0),  # 0.10 * 720h / 72h
    ("28d-page-fast", RollingWindow(28 * DAY), TIERS[0], 13.44),  # 0.02 * 672h / 1h
    ("7d-page-fast", RollingWindow(7 * DAY), TIERS[0], 3.36),  # 0.02 * 168h / 1h
    # Calendar windows use nominal lengths: month 30d, quarter 91d, week 7d.
    ("month-page-fast", CalendarWindow("month", "Europe/Berlin"), TIERS[0], 14.4),
    ("quarter-page-fast", CalendarWindow("quarter"), TIERS[0], 43.68),  # 0.02 * 2184h / 1h
    ("week-ticket-slow", CalendarWindow("week"), TIERS[3], 0.233333333333),  # 0.1 * 168h / 72h
    ("given-factor", RollingWindow(30 * DAY), AlertTier("x", HOUR, 5 * MIN, None, 20.0), 20.0),
]


@pytest.mark.parametrize(("window", "tier", "factor"), [c[1:] for c in FACTORS],
                         ids=[c[0] for c in FACTORS])
def test_tier_factor(window: Window, tier: AlertTier, factor: float) -> None:
    """Factors follow the SRE workbook table for 30 days and scale with the window."""
    assert tier_factor(make_slo(window=window), tier) == factor


def test_page_fast_rule_text() -> None:
    """The page-fast tier compares both windows' error ratios with 14.4 x the budget."""
    slo = make_slo(window=RollingWindow(30 * DAY), objective=99.9, tiers=TIERS)
    rule = slo_alert_group(slo, interval_ms=MIN).rules[0]
    assert rule.name == ALERT_BURN
    assert rule.expr == ('slo:sli_error:ratio_rate1h{slo="s"} > (14.4 * 0.001)\nand\n'
                         'slo:sli_error:ratio_rate5m{slo="s"} > (14.4 * 0.001)')
    assert dict(rule.labels) == {"severity": "page", "tier": "page-fast",
                                 "long_window": "1h", "short_window": "5m",
                                 "slo": "s", "service": "svc"}


def test_rules_read_only_series_the_evaluator_writes() -> None:
    """Every rule parses, and every SLO series it names is one the evaluator exports."""
    slo = make_slo(window=RollingWindow(30 * DAY), tiers=TIERS)
    exported = {name for name, _, _ in SLOEvaluator(slo, SeriesStore(), interval_ms=MIN)
                .series_families()}
    group = slo_alert_group(slo, interval_ms=MIN)
    names = [r.name for r in group.rules]
    assert names == [ALERT_BURN] * 4 + [ALERT_EXHAUSTED] + [ALERT_NO_DATA] * 2
    for rule in group.rules:
        plan_query(rule.expr)
        for name in re.findall(r"slo:[a-z_]+:[a-z_0-9]+", rule.expr):
            assert name in exported, name


def test_alerting_options() -> None:
    """Disabled tiers, exhausted and no-data alerts follow the SLO's alerting section."""
    tiers = (TIERS[0], AlertTier("off", HOUR, 5 * MIN, 0.1, enabled=False))
    alerting = SLOAlerting(tiers=tiers, budget_exhausted=False, no_data_for_ms=None,
                           labels=(("team", "shop"), ("severity", "critical")),
                           annotations=(("summary", "custom"),),
                           runbook_url="https://runbooks.example/s")
    group = slo_alert_group(make_slo(alerting=alerting), interval_ms=MIN)
    assert len(group.rules) == 1
    rule = group.rules[0]
    assert isinstance(rule, AlertingRule)
    assert dict(rule.labels)["severity"] == "critical"  # the SLO's labels win
    assert dict(rule.labels)["team"] == "shop"
    assert dict(rule.annotations)["summary"] == "custom"
    assert dict(rule.annotations)["runbook_url"] == "https://runbooks.example/s"


def test_output_is_deterministic_and_model_untouched() -> None:
    """Generating twice gives equal groups and never changes the SLOs."""
    slos = load_rule_files(["tests/testdata/rules/slos.yaml"]).slos
    before = copy.deepcopy(slos)
    first = [slo_alert_group(s, interval_ms=MIN) for s in slos]
    second = [slo_alert_group(s, interval_ms=MIN) for s in slos]
    assert first == second
    assert slos == before
    assert [g.name for g in first] == [f"slo:{s.name}" for s in slos]
    for group in first:
        for rule in group.rules:
            plan_query(rule.expr)


def test_calendar_tiers_scale_with_the_period_length() -> None:
    """A calendar SLO's tier threshold is fraction x budget x this period's length / long window."""
    from exporter.rules.slo_model import SLO, AlertTier, CalendarWindow, LatencySLI, SLOAlerting
    from exporter.slo_rules import slo_alert_group

    tier = AlertTier("page-fast", 3_600_000, 300_000, 0.02)
    slo = SLO(name="lat", service="svc", objective_percent=95,
              window=CalendarWindow("month", "UTC"), sli=LatencySLI("h_bucket", 0.3),
              alerting=SLOAlerting(tiers=(tier,)))
    page_fast = slo_alert_group(slo, interval_ms=60_000).rules[0]
    # 2% of a 5% budget per hour of long window: 0.02 * 0.05 / 3600 per second of period.
    assert page_fast.expr.splitlines()[0] == (
        'slo:sli_error:ratio_rate1h{slo="lat"} > on (slo, service) group_left () '
        '(2.77777777778e-07 * slo:period_length:seconds{slo="lat"})')


def _notes(slo_owner: str, values: tuple[ValueMetric, ...]) -> dict[str, str]:
    slo = make_slo(window=RollingWindow(30 * DAY), objective=99.9, tiers=TIERS[:1],
                   owner=slo_owner)
    return dict(slo_alert_group(slo, interval_ms=MIN, values=values).rules[0].annotations)


_RISK = ValueMetric(name="revenue_at_risk:s", unit="EUR", owner="Head of e-commerce",
                    shorthand=Shorthand("revenue_at_risk", "s", "aov", "eur"))
_OTHER_SLO = ValueMetric(name="revenue_at_risk:t", unit="USD", owner="x",
                         shorthand=Shorthand("revenue_at_risk", "t", "aov", "usd"))
_AT_RISK = ('{{ with query `sum(slo:revenue_at_risk_eur:increase1h{slo="s"})` }}EUR '
            '{{ . | first | value | printf "%.0f" }} of svc revenue at risk per hour{{ end }}')

# (id, SLO owner, value metrics, expected owner annotation, expected at_risk annotation)
NOTES = [
    ("slo-owner-no-money", "Checkout team", (), "Checkout team", None),
    ("money-names-the-value-owner", "", (_RISK,), "Head of e-commerce", _AT_RISK),
    ("slo-owner-wins", "Checkout team", (_RISK,), "Checkout team", _AT_RISK),
    ("other-slo-money-ignored", "", (_OTHER_SLO,), None, None),
]


@pytest.mark.parametrize(("owner", "values", "exp_owner", "exp_at_risk"),
                         [n[1:] for n in NOTES], ids=[n[0] for n in NOTES])
def test_business_annotations(owner: str, values: tuple[ValueMetric, ...],
                              exp_owner: str | None, exp_at_risk: str | None) -> None:
    """Burn alerts name the owner and, with a revenue-at-risk metric on the SLO, the money."""
    notes = _notes(owner, values)
    assert notes.get("owner") == exp_owner
    assert notes.get("at_risk") == exp_at_risk
    # The money sentence follows the burn sentence inside its own `with`, so an absent
    # series leaves no dangling "; ".
    burn = "SLO s of svc burns its error budget 14.4x too fast (1h and 5m windows)"
    assert notes["summary"] == (burn if exp_at_risk is None else
                                burn + exp_at_risk.replace("}}EUR", "}}; EUR", 1))


def test_description_states_burn_rate_and_time_left() -> None:
    """The description computes rate and hours from $value: 0.72 = 720h x the 0.001 budget."""
    notes = _notes("", ())
    assert notes["description"] == (
        'Burning the error budget {{ with printf "%v / %v" $value 0.001 | query }}'
        '{{ . | first | value | printf "%.1f" }}{{ end }}x as fast as the objective allows '
        "(this tier fires from 14.4x, 2% of the budget in 1h); at this rate the 30d error "
        'budget is gone in {{ with printf "%v / %v" 0.72 $value | query }}'
        '{{ . | first | value | printf "%.1f" }}{{ end }} h; objective 99.9%.')
