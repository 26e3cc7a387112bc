"""Business sentences for generated alerts, as alert templates both engines expand alike.

Money at risk is read with `query` from the value metric's recorded series when the alert
fires; the burn rate and how soon the budget is gone are computed from the alert's $value
(by `query` too, as Go templates cannot divide). Money is printed with `printf "%.0f"`, the
closest a Prometheus template gets to a plain business figure (no thousands separator).
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter import conventions as c
from exporter.rules.slo_model import SLO, CalendarWindow
from exporter.rules.value_model import ValueMetric
from exporter.slo_series import error_budget
from exporter.slo_windows import slo_window_ms, window_label

# How a calendar window reads in a sentence ("the monthly error budget").
_PERIOD_WORDS = {"week": "weekly", "month": "monthly", "quarter": "quarterly"}


@dataclass(frozen=True, slots=True)
class MoneyAtRisk:
    """A revenue-at-risk value metric over an SLO: where its hourly figure is recorded."""

    series: str  # slo:revenue_at_risk_<cur>:increase1h
    currency: str  # upper-case ISO code, as people write it
    owner: str


def money_at_risk(slo: SLO, values: tuple[ValueMetric, ...]) -> MoneyAtRisk | None:
    """The first `revenue_at_risk` value metric that references the SLO, if any."""
    for metric in values:
        sh = metric.shorthand
        if sh is not None and sh.kind == "revenue_at_risk" and sh.slo == slo.name:
            return MoneyAtRisk(series=c.REVENUE_AT_RISK[0].format(cur=sh.currency),
                               currency=sh.currency.upper(), owner=metric.owner)
    return None


def _raw(text: str) -> str:
    # A Go raw string: no escaping needed as long as the text has no backquote.
    assert "`" not in text
    return f"`{text}`"


def at_risk_template(slo: SLO, risk: MoneyAtRisk, prefix: str = "") -> str:
    """`EUR 1240 of checkout revenue at risk per hour` after `prefix`, or nothing at all
    while the series is absent.

    The hourly figure is the value metric's last-hour increase, summed over the SLO's
    series (a grouped SLO shows its whole revenue at risk on each alert).
    """
    query = _raw(f'sum({risk.series}{{{c.SLO_LABEL}="{slo.name}"}})')
    return (f"{{{{ with query {query} }}}}{prefix}{risk.currency} "
            f'{{{{ . | first | value | printf "%.0f" }}}} of {slo.service} revenue at risk '
            "per hour{{ end }}")


def budget_word(slo: SLO) -> str:
    """`monthly` for a calendar month, `30d` for a rolling 30 days."""
    if isinstance(slo.window, CalendarWindow):
        return _PERIOD_WORDS[slo.window.unit]
    return window_label(slo)


def _ratio_of_value(numerator: str, denominator: str) -> str:
    """The value of `numerator / denominator`, one of them `$value`, to one decimal.

    Go templates have no arithmetic, so the division goes through `query`: Prometheus
    answers a scalar expression with one sample, as the sidecar does.
    """
    return (f'{{{{ with printf "%v / %v" {numerator} {denominator} | query }}}}'
            f'{{{{ . | first | value | printf "%.1f" }}}}{{{{ end }}}}')


def burn_rate_template(slo: SLO) -> str:
    """`20.8`: the alert's burn rate, its $value (the long window's error ratio) / budget."""
    return _ratio_of_value("$value", f"{error_budget(slo):.12g}")


def budget_gone_template(slo: SLO) -> str:
    """`the monthly error budget is gone in 34.6 h`, at the rate of the alert's $value.

    A whole budget lasts window x budget / error ratio; $value is the long window's error
    ratio (the left side of the burn rule's `and`).
    """
    budget_hours = slo_window_ms(slo) / 3_600_000 * error_budget(slo)
    return (f"the {budget_word(slo)} error budget is gone in "
            f"{_ratio_of_value(f'{budget_hours:.12g}', '$value')} h")
