"""Tests for the overview page's pure stages: rows from model and samples, and the HTML."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from exporter import conventions as c
from exporter.labels import STALE_NAN, make_labels
from exporter.overview import (
    Overview,
    Sample,
    Snapshot,
    TargetRow,
    build_overview,
    slo_status,
    snapshot_store,
)
from exporter.overview_html import (
    CONTENT_SECURITY_POLICY,
    NO_DATA,
    format_number,
    render_overview,
)
from exporter.rules.load import load_rule_files
from exporter.rules.model import RuleSet
from exporter.store import SeriesStore

RULES = """
version: value-exporter/v1
parameters:
  order_value: {value: 40, unit: EUR/event}
slos:
  - name: pay
    service: payment
    owner: Payments team
    objective: 99
    window: 28d
    sli:
      ratio: {errors: 'pay_total{outcome="error"}', total: pay_total}
    group_by: [provider]
value:
  - revenue_at_risk: {slo: pay, value_per_event: $order_value}
    owner: Head of payments
    help: Payments lost to errors.
  - name: itsm:mttr_seconds:mean1h
    unit: seconds
    owner: Incident manager
    expr: sum(rate(ttr_seconds_sum[1h])) / sum(rate(ttr_seconds_count[1h]))
  - name: itsm:incidents_per_1000_orders:ratio_rate1d
    unit: ratio
    owner: Service owner
    expr: 1000 * sum(rate(incidents_total[1d])) / sum(rate(orders_total[1d]))
journeys:
  - name: buy
    owner: Shop team
    window: 1d
    currency: EUR
    stages:
      - {name: explore, attempts: 'ev_total{s="a"}', successes: 'ev_total{s="b"}'}
      - {name: agree, attempts: 'ev_total{s="b"}', successes: 'ev_total{s="c"}',
         value_per_success: 40}
improvements:
  - name: faster
    owner: Checkout team
    metric: sum(rate(lat_seconds_sum[5m]))
    baseline: {value: 0.5, at: 2026-01-01}
    target: {value: 0.25, by: 2026-12-31}
    direction: down
"""
T_MS = 1_790_000_000_000  # 2026-09-21 13:33:20 UTC
EVIL = '<script>alert("x")</script>&\''


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return load_rule_files([str(path)])


def _snap(series: Mapping[str, list[tuple[dict[str, str], float]]]) -> Snapshot:
    return Snapshot(T_MS, {
        name: tuple(Sample(tuple(sorted(labels.items())), v) for labels, v in samples)
        for name, samples in series.items()})


def _pay(provider: str) -> dict[str, str]:
    return {"slo": "pay", "service": "payment", "provider": provider}


# The demo-like state after some evaluations: two providers, one burning.
FULL = {
    c.SLO_SLI_PERIOD: [(_pay("acme"), 0.995), (_pay("bank"), 0.98)],
    c.SLO_BUDGET_REMAINING: [(_pay("acme"), 0.5), (_pay("bank"), -1.0)],
    "slo:burn_rate:ratio_rate1h": [(_pay("acme"), 0.5), (_pay("bank"), 2.0)],
    c.SLO_BUDGET_EXHAUSTED_IN: [(_pay("acme"), math.inf), (_pay("bank"), 0.0)],
    "slo:revenue_at_risk_eur:increase1h": [(_pay("acme"), 80.0), (_pay("bank"), 1160.5)],
    "slo:revenue_at_risk_eur:period": [(_pay("acme"), 400.0), (_pay("bank"), 0.25)],
    "itsm:mttr_seconds:mean1h": [({}, 5400.0)],
    "itsm:incidents_per_1000_orders:ratio_rate1d": [({}, 2.5)],
    "journey:stage_attempts:increase_window": [
        ({"journey": "buy", "stage": "explore", "step": "1"}, 1000.0),
        ({"journey": "buy", "stage": "agree", "step": "2"}, 250.0)],
    "journey:conversion:ratio_window": [({"journey": "buy"}, 0.2)],
    "improvement:current:value": [({"improvement": "faster"}, 0.4)],
    "improvement:progress:ratio": [({"improvement": "faster"}, 0.4)],
    "improvement:progress_expected:ratio": [({"improvement": "faster"}, 0.7)],
    "improvement:on_track:bool": [({"improvement": "faster"}, 0.0)],
    c.ALERTS: [({"alertname": "SLOBurn", "alertstate": "firing", "severity": "page",
                 "slo": "pay", "provider": "bank"}, 1.0),
               ({"alertname": "Other", "alertstate": "pending", "slo": "pay"}, 1.0)],
}


def _overview(rules: RuleSet, snap: Snapshot, *, evaluated: bool = True,
              targets: tuple[TargetRow, ...] = ()) -> Overview:
    return build_overview(rules, snap, targets, evaluated=evaluated, refresh_s=15)


def _figures(page: str) -> dict[tuple[str, str], str]:
    """(series, data-labels) -> shown text, for every number on the page."""
    found = re.findall(r'data-series="([^"]*)" data-labels="([^"]*)"[^>]*>([^<]*)<', page)
    return {(s, labels): text for s, labels, text in found}


def test_value_card_sums_money_over_group_by_series(rules: RuleSet) -> None:
    """Revenue at risk is the sum over the SLO's providers, for both windows."""
    card = _overview(rules, _snap(FULL)).values[0]
    assert card.title == "Revenue at risk" and card.owner == "Head of payments"
    # 80 + 1160.5 = 1240.5 last hour; 400 + 0.25 = 400.25 over the 28d window (which
    # Prometheus's duration format prints as 4w).
    assert [(f.caption, f.value) for f in card.figures] == [
        ("last hour", 1240.5), ("this 4w window", 400.25)]


def test_rendered_figures_read_as_formatted_values(rules: RuleSet) -> None:
    """The page prints money with its currency, ratios as percent, durations in units."""
    shown = _figures(render_overview(_overview(rules, _snap(FULL))))
    bank = '{&quot;provider&quot;:&quot;bank&quot;,&quot;service&quot;:&quot;payment&quot;,' \
           '&quot;slo&quot;:&quot;pay&quot;}'
    assert shown[("slo:revenue_at_risk_eur:increase1h", '{&quot;slo&quot;:&quot;pay&quot;}')] \
        == "EUR 1,240.50"
    assert shown[(c.SLO_SLI_PERIOD, bank)] == "98.00 %"
    assert shown[(c.SLO_BUDGET_REMAINING, bank)] == "-100.00 %"
    assert shown[("slo:burn_rate:ratio_rate1h", bank)] == "2.00×"
    assert shown[("itsm:mttr_seconds:mean1h", "{}")] == "90.0 min"  # 5400 s, under 2 h
    # Dimensionless, but a count per 1,000 orders rather than a fraction: no percent sign.
    assert shown[("itsm:incidents_per_1000_orders:ratio_rate1d", "{}")] == "2.5"
    assert shown[("journey:conversion:ratio_window", '{&quot;journey&quot;:&quot;buy&quot;}')] \
        == "20.00 %"


@pytest.mark.parametrize(("value", "unit", "text"), [
    (None, "EUR", NO_DATA),
    (0.0, "EUR", "EUR 0.00"),
    (-12345.678, "USD", "USD -12,345.68"),
    (0.995, "ratio", "99.50 %"),
    (0.99996, "ratio", "99.996 %"),  # two decimals would round to a promise of 100.00 %
    (1.0, "ratio", "100.00 %"),
    (14.4, "burn", "14.40×"),
    (math.inf, "exhaustion", "not at this rate"),  # the budget is not burning
    (0.0, "exhaustion", "already spent"),
    (5400.0, "exhaustion", "90.0 min"),
    (math.inf, "seconds", "+Inf"),  # a mean over no events
    (-math.inf, "ratio", "-Inf"),
    (math.nan, "ratio", "NaN"),
    (59.4, "seconds", "59 s"),
    (3600.0, "seconds", "60.0 min"),
    (7200.0, "seconds", "2.0 h"),
    (2_592_000.0, "seconds", "30.0 d"),
    (1234.6, "count", "1,235"),
    (121.55, "days", "121.5 days"),  # 121.55 is 121.5499... in binary
    (0.27891, "number", "0.2789"),
    (3.0, "orders", "3 orders"),
], ids=lambda v: str(v))
def test_format_number(value: float | None, unit: str, text: str) -> None:
    """Each unit prints the way the page shows it; absence is "no data", never 0."""
    assert format_number(value, unit) == text


def test_absent_series_show_no_data_never_zero(rules: RuleSet) -> None:
    """Without samples every figure reads "no data" and carries no data-value."""
    page = render_overview(_overview(rules, _snap({})))
    spans = re.findall(r'<(?:span|dd) class="fig[^"]*"[^>]*>[^<]*<', page)
    assert spans and all('class="fig nodata"' in s and s.endswith(">no data<") for s in spans)
    assert "data-value" not in page
    # No figure may fall back to a zero: one SLO row, 4 SLO figures, all absent.
    assert ">0<" not in page and "EUR 0.00" not in page and "0.00 %" not in page


def test_label_values_are_escaped(rules: RuleSet) -> None:
    """A scraped label value with markup is shown as text, never parsed as HTML."""
    evil = {c.SLO_BUDGET_REMAINING: [(_pay(EVIL), 0.5)], c.SLO_SLI_PERIOD: [(_pay(EVIL), 0.99)],
            "journey:conversion:ratio_window": [({"journey": "buy"}, 0.2)]}
    target = TargetRow(EVIL, EVIL, f"http://x/{EVIL}", "down", T_MS - 5000, 0.01, EVIL, 2.0)
    page = render_overview(_overview(rules, _snap(evil), targets=(target,)))
    assert "<script" not in page and 'alert("x")' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;" in page
    # Every attribute value is double-quoted with no raw quote inside it.
    for tag in re.findall(r"<[a-z]+ [^>]*>", page):
        assert re.fullmatch(r'<[a-z]+(?: [a-zA-Z-]+(?:="[^"<>]*")?)*/?>', tag), tag


def test_empty_state_before_the_first_evaluation(rules: RuleSet) -> None:
    """Before any evaluation the page says it is waiting and still lists the model's SLOs."""
    waiting = render_overview(_overview(rules, _snap({}), evaluated=False))
    assert 'id="empty-state"' in waiting and "Waiting for the first evaluation" in waiting
    assert "<strong>pay</strong>" in waiting  # the SLO row from the rule model
    assert 'id="empty-state"' not in render_overview(_overview(rules, _snap(FULL)))


def test_empty_rule_model_explains_each_section() -> None:
    """With no SLOs, value metrics, journeys, improvements or targets each section says how."""
    page = render_overview(_overview(RuleSet(), _snap({})))
    for key in ("<code>value:</code>", "<code>slos:</code>", "<code>journeys:</code>",
                "<code>improvements:</code>", "<code>targets:</code>"):
        assert key in page


@pytest.mark.parametrize(("sli", "remaining", "burn", "severities", "status"), [
    (0.999, 0.8, 0.5, (), "ok"),
    (0.999, 0.8, 1.5, (), "warning"),  # burning faster than the window allows
    (0.999, 0.8, 0.5, ("ticket",), "warning"),
    (0.999, 0.8, 0.5, ("page",), "critical"),
    (0.98, 0.0, 0.5, (), "critical"),  # budget spent
    (None, 1.0, None, (), "nodata"),  # evaluated, but no events in the window yet
    (None, None, None, (), "nodata"),
], ids=["ok", "burning", "ticket", "page", "spent", "no-events", "absent"])
def test_slo_status(sli: float | None, remaining: float | None, burn: float | None,
                    severities: tuple[str, ...], status: str) -> None:
    """The status colour follows budget, burn rate and firing alerts."""
    assert slo_status(sli, remaining, burn, severities) == status


def test_slo_rows_per_group_with_their_firing_alerts(rules: RuleSet) -> None:
    """Each provider gets its own row; only bank's row has the firing page alert."""
    rows = _overview(rules, _snap(FULL)).slos
    assert [(r.group, r.status, r.firing) for r in rows] == [
        ((("provider", "acme"),), "ok", ()),
        ((("provider", "bank"),), "critical", ("SLOBurn",)),
    ]
    assert rows[0].objective == 0.99


def test_improvement_and_journey_rows(rules: RuleSet) -> None:
    """Improvement progress and on-track, and the funnel's bars, come from their series."""
    ov = _overview(rules, _snap(FULL))
    (imp,) = ov.improvements
    assert (imp.progress.value, imp.expected.value, imp.on_track) == (0.4, 0.7, False)
    assert imp.baseline.value is None  # no baseline sample: "no data", not the model's 0.5
    page = render_overview(ov)
    # Progress 0.4 -> a 40-unit bar of 100; expected 0.7 -> the mark at x=70.
    assert '<rect class="fill late" width="40.0"' in page and 'x1="70.0"' in page
    # Funnel: agree had 250 of explore's 1000 attempts -> 0.25 x 440 = 110 wide.
    assert '<rect class="fill" x="150" y="29" width="110.0" height="20"/>' in page
    (journey,) = ov.journeys
    assert journey.value is not None and journey.value.unit == "EUR"


def test_targets_show_health_age_and_error(rules: RuleSet) -> None:
    """A down target shows its health, how long ago it was scraped and the error."""
    target = TargetRow("shop/h:1", "shop", "http://h:1/metrics", "down", T_MS - 5000, 0.0123,
                       "connection refused", 3.0)
    page = render_overview(_overview(rules, _snap({}), targets=(target,)))
    assert '<span class="status status-down">down</span>' in page
    assert "5 s ago" in page and "12.3 ms" in page and "connection refused" in page


def test_csp_hash_matches_the_inline_style(rules: RuleSet) -> None:
    """The policy allows exactly the page's own style block, no script, no framing."""
    page = render_overview(_overview(rules, _snap(FULL)))
    (css,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY and "<script" not in page
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert ' style="' not in page  # an inline style attribute would be blocked by the policy


def test_snapshot_reads_what_an_instant_query_would() -> None:
    """Newest sample within the lookback; stale or too old is absent, like /metrics."""
    store = SeriesStore()
    fresh = make_labels({"__name__": c.SLO_SLI_PERIOD, "slo": "a"})
    stale = make_labels({"__name__": c.SLO_SLI_PERIOD, "slo": "b"})
    old = make_labels({"__name__": c.SLO_SLI_PERIOD, "slo": "c"})
    other = make_labels({"__name__": "shop_requests_total"})
    store.append(fresh, T_MS - 30_000, 0.5)
    store.append(fresh, T_MS - 15_000, 0.75)
    store.append(stale, T_MS - 30_000, 0.5)
    store.append(stale, T_MS - 15_000, STALE_NAN)
    store.append(old, T_MS - 300_000, 0.5)  # exactly the 5m lookback: left-open, so out
    store.append(other, T_MS, 1.0)
    snap = snapshot_store(store, [], T_MS)
    assert snap.series == {c.SLO_SLI_PERIOD: (Sample((("slo", "a"),), 0.75),)}


@pytest.mark.parametrize(("progress", "days_left", "on_track", "shown"), [
    pytest.param(1.1, 30.0, True, "achieved", id="past-target"),
    pytest.param(1.0, -2.0, True, "achieved", id="reached-late"),
    pytest.param(0.5, -2.0, False, "overdue", id="past-due"),
    pytest.param(0.5, 30.0, True, "on track", id="ahead-of-the-line"),
    pytest.param(0.2, 30.0, False, "behind", id="behind-the-line"),
])
def test_improvement_status_words_match_the_report(
        rules: RuleSet, progress: float, days_left: float, on_track: bool, shown: str) -> None:
    """Achieved and overdue win over the straight-line comparison, as in the report."""
    (imp,) = _overview(rules, _snap(FULL)).improvements
    row = dataclasses.replace(
        imp, progress=dataclasses.replace(imp.progress, value=progress),
        days_left=dataclasses.replace(imp.days_left, value=days_left), on_track=on_track)
    ov = dataclasses.replace(_overview(rules, _snap(FULL)), improvements=(row,))
    assert re.search(rf'<span class="status status-\w+">{shown}</span>', render_overview(ov))
