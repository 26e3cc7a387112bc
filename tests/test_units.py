"""Tests for exporter/units.py: the unit rules `check rules` applies to value expressions."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.errors import UserError
from exporter.promql.parse import parse_expr
from exporter.rules.load import load_rule_files
from exporter.units import (
    UnitError,
    currency,
    format_unit,
    infer_unit,
    is_share,
    metric_unit,
    money_per,
    parse_unit,
)

# What `$aov` (a parameter in EUR/event) stands for when units are checked.
KNOWN = {"parameter:aov": parse_unit("EUR/event")}


@pytest.mark.parametrize(("text", "canonical"), [
    pytest.param("EUR", "EUR", id="currency"),
    pytest.param("EUR/event", "EUR/events", id="money-per-event-singular-is-plural"),
    pytest.param("EUR/minutes", "EUR/minutes", id="money-per-minute"),
    pytest.param("events*seconds/bytes", "events*seconds/bytes", id="product-over-base"),
    pytest.param("ratio", "ratio", id="ratio-is-dimensionless"),
    pytest.param("1", "ratio", id="one-is-dimensionless"),
    pytest.param("1/second", "1/seconds", id="per-second"),
    pytest.param("orders", "orders", id="any-lower-case-word"),
])
def test_parse_unit_writes_one_canonical_text(text: str, canonical: str) -> None:
    """Units parse into base powers and print in one canonical spelling."""
    assert format_unit(parse_unit(text)) == canonical


@pytest.mark.parametrize("text", [
    pytest.param("EUR per order", id="words"),
    pytest.param("Eur", id="mixed-case"),
    pytest.param("EUR/", id="empty-denominator-word"),
])
def test_malformed_units_are_rejected(text: str) -> None:
    """A unit that is not words, currencies, `*` and one `/` is a ValueError."""
    with pytest.raises(ValueError, match="invalid unit"):
        parse_unit(text)


@pytest.mark.parametrize(("unit", "code", "per_event"), [
    pytest.param("EUR", "EUR", None, id="plain-money"),
    pytest.param("EUR/event", None, "EUR", id="money-per-event"),
    pytest.param("USD/minute", None, None, id="money-per-minute-is-not-per-event"),
    pytest.param("EUR*EUR", None, None, id="squared-money-is-no-currency"),
    pytest.param("seconds", None, None, id="no-money"),
])
def test_currency_and_money_per(unit: str, code: str | None, per_event: str | None) -> None:
    """Only exactly one currency is money; only currency / event is money per event."""
    parsed = parse_unit(unit)
    assert (currency(parsed), money_per(parsed, "events")) == (code, per_event)


@pytest.mark.parametrize(("name", "unit"), [
    pytest.param("http_request_duration_seconds", "seconds", id="seconds"),
    pytest.param("response_size_bytes", "bytes", id="bytes"),
    pytest.param("cache_hit_ratio", "ratio", id="ratio"),
    pytest.param("checkout_revenue_eur", "EUR", id="currency-eur"),
    pytest.param("cloud_cost_usd", "USD", id="currency-usd"),
    pytest.param("revenue_eur_total", "EUR", id="currency-counter"),
    pytest.param("orders_total", "events", id="counter-is-events"),
    pytest.param("cpu_seconds_total", "seconds", id="seconds-counter"),
    pytest.param("latency_seconds_sum", "seconds", id="histogram-sum"),
    pytest.param("latency_seconds_bucket", "seconds", id="histogram-bucket"),
    pytest.param("latency_seconds_count", "ratio", id="histogram-count-is-a-count"),
    pytest.param("job:http_errors:ratio_rate5m", "ratio", id="recorded-ratio"),
    pytest.param("job:http_requests:total", "events", id="recorded-total"),
    pytest.param("job:latency_seconds:avg5m", "seconds", id="recorded-metric-part"),
    pytest.param("parameter:aov", "EUR/events", id="known-name"),
    pytest.param("temperature_celsius", None, id="unknown-suffix"),
    pytest.param("request_sum", None, id="three-letters-are-not-money"),
    pytest.param("queue_max", None, id="max-is-not-money"),
])
def test_metric_names_state_their_unit_by_suffix(name: str, unit: str | None) -> None:
    """A name's unit comes from known names, then the documented suffixes; else unknown."""
    got = metric_unit(name, KNOWN)
    assert (None if got is None else format_unit(got)) == unit


@pytest.mark.parametrize(("expr", "unit"), [
    pytest.param("sum(increase(orders_total[1h])) * parameter:aov", "EUR",
                 id="events-times-money-per-event"),
    pytest.param("revenue_eur / orders_total", "EUR/events", id="money-over-events"),
    pytest.param("sum(rate(a_bytes_total[5m])) / sum(rate(b_total[5m]))", "bytes/events",
                 id="rates-keep-their-unit"),
    pytest.param("2 * revenue_eur", "EUR", id="literal-adapts-in-times"),
    pytest.param("revenue_eur / 100", "EUR", id="literal-adapts-in-divide"),
    pytest.param("1 / latency_seconds", "1/seconds", id="literal-over-unit-inverts"),
    pytest.param("revenue_eur + 3", "EUR", id="literal-adapts-in-plus"),
    pytest.param("revenue_eur + temperature", "EUR", id="unknown-side-passes"),
    pytest.param("revenue_eur > bool 100", "ratio", id="bool-comparison-is-dimensionless"),
    pytest.param("revenue_eur > cost_eur", "EUR", id="filter-keeps-unit"),
    pytest.param("count(up)", "ratio", id="count-is-dimensionless"),
    pytest.param("histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[5m])))",
                 "seconds", id="quantile-of-buckets"),
    pytest.param("time() - last_seen_timestamp_seconds", "seconds", id="time-is-seconds"),
    pytest.param("latency_seconds_sum / latency_seconds_count", "seconds", id="mean-of-sum"),
    pytest.param("revenue_eur and on() up", "EUR", id="and-keeps-left"),
    pytest.param("temperature * humidity", None, id="all-unknown"),
    pytest.param("label_replace(cost_usd, 'a', 'b', 'c', 'd')", "USD", id="label-function"),
])
def test_expression_units_combine_by_the_stated_rules(expr: str, unit: str | None) -> None:
    """`*` and `/` combine units, functions keep or set theirs, unknown units pass."""
    got = infer_unit(parse_expr(expr), KNOWN)
    assert (None if got is None else format_unit(got)) == unit


@pytest.mark.parametrize(("expr", "message"), [
    pytest.param("revenue_eur + latency_seconds", "cannot add seconds to EUR", id="add"),
    pytest.param("revenue_eur - cost_usd", "cannot subtract USD from EUR", id="subtract"),
    pytest.param("revenue_eur_total + revenue_usd_total", "cannot add USD to EUR",
                 id="add-currencies"),
    pytest.param("latency_seconds > size_bytes", "cannot compare seconds with bytes",
                 id="compare"),
    pytest.param("latency_seconds == bool revenue_eur", "cannot compare seconds with EUR",
                 id="compare-bool"),
    pytest.param("revenue_eur or latency_seconds", "cannot join EUR and seconds with or",
                 id="or"),
    pytest.param("abs(revenue_eur + latency_seconds)", "cannot add seconds to EUR",
                 id="inside-a-function"),
    pytest.param("sum(increase(orders_total[1h])) * parameter:aov + cost_usd",
                 "cannot add USD to EUR", id="after-combining"),
    pytest.param("revenue_eur / orders_total - revenue_eur", "cannot subtract EUR from "
                 "EUR/events", id="money-per-event-minus-money"),
])
def test_mixing_known_units_is_an_error(expr: str, message: str) -> None:
    """`+`, `-`, comparisons and `or` between two different known units raise UnitError."""
    with pytest.raises(UnitError) as info:
        infer_unit(parse_expr(expr), KNOWN)
    assert str(info.value) == message


@pytest.mark.parametrize(("name", "unit", "expr", "problem"), [
    pytest.param("lost_eur", "EUR", "sum(increase(orders_total[1h])) * $aov", None,
                 id="matches"),
    pytest.param("lost_usd", "USD", "sum(increase(orders_total[1h])) * $aov",
                 "expression is in EUR, not USD", id="other-currency"),
    pytest.param("wait", "seconds", "sum(increase(orders_total[1h]))",
                 "expression is in events, not seconds", id="events-not-seconds"),
    pytest.param("lost_eur", "EUR", "sum(temperature) * 3", None, id="unknown-passes"),
    pytest.param("share", "ratio", "sum(rate(a_total[5m])) / sum(rate(b_total[5m]))", None,
                 id="ratio-of-counts"),
])
def test_declared_unit_must_match_a_known_expression_unit(
        tmp_path: Path, name: str, unit: str, expr: str, problem: str | None) -> None:
    """A value metric whose expression has a known unit must declare that unit."""
    path = tmp_path / "v.yaml"
    path.write_text(f"parameters:\n  aov: {{value: 40, unit: EUR/event}}\nvalue:\n"
                    f"  - name: {name}\n    owner: Finance\n    unit: {unit}\n"
                    f"    expr: '{expr}'\n")
    if problem is None:
        assert [v.name for v in load_rule_files([path]).values] == [name]
        return
    with pytest.raises(UserError) as info:
        load_rule_files([path])
    assert info.value.lines() == [
        f'{path}:7:11: value "{name}": {problem}; expected the declared unit']


@pytest.mark.parametrize(("name", "unit", "share"), [
    pytest.param("itsm:change_failure:ratio_rate1d", "ratio", True, id="fraction"),
    pytest.param("itsm:incidents_per_1000_orders:ratio_rate1d", "ratio", False, id="per-1000"),
    pytest.param("checkout:revenue_eur:sum1h", "EUR", False, id="money"),
])
def test_is_share_tells_percentages_from_plain_rates(name: str, unit: str, share: bool) -> None:
    """Only a dimensionless value that is not a `_per_` rate is shown in percent."""
    assert is_share(name, unit) is share
