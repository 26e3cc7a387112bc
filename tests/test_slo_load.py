"""Tests for the `slos:` section of rule files: the model it loads, defaults, warnings, names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter.cli import main
from exporter.errors import Problem, UserError
from exporter.rules.load import load_rule_files
from exporter.rules.slo_load import default_tiers
from exporter.rules.slo_model import (
    SLO,
    AvailabilitySLI,
    CalendarWindow,
    EventsSLI,
    LatencySLI,
    MaintenanceWindow,
    RatioSLI,
    RollingWindow,
    Timeslices,
)

TESTDATA = Path(__file__).parent / "testdata" / "rules"
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


@pytest.fixture(scope="module")
def slos() -> dict[str, SLO]:
    """The SLOs of the full example file, by name."""
    return {s.name: s for s in load_rule_files([TESTDATA / "slos.yaml"]).slos}


FIELDS: list[tuple[str, str, Any]] = [
    ("checkout-availability", "service", "checkout"),
    ("checkout-availability", "owner", "Checkout team"),
    ("checkout-availability", "labels", (("tier", "1"),)),
    ("checkout-availability", "objective_percent", 99.9),
    ("checkout-availability", "window", RollingWindow(30 * DAY)),
    ("checkout-availability", "sli", RatioSLI(total='http_requests_total{job="checkout"}',
                                              errors='http_requests_total{job="checkout", '
                                                     'code=~"5.."}')),
    ("checkout-availability", "budgeting", None),
    ("checkout-availability", "group_by", ("route",)),
    ("checkout-availability", "no_data", "good"),
    ("checkout-availability", "series_limit", 20),
    ("checkout-availability", "maintenance", (
        MaintenanceWindow("2026-12-24T00:00:00", 2 * HOUR, "Europe/Berlin"),
        MaintenanceWindow("2026-01-05T02:00:00", HOUR, "Europe/Berlin", "week", "Patch Monday"),
    )),
    ("checkout-latency", "window", CalendarWindow("month", "Europe/Berlin")),
    ("checkout-latency", "sli", LatencySLI('http_request_duration_seconds_bucket{job="checkout"}',
                                           0.3)),
    ("checkout-latency", "budgeting", Timeslices(MINUTE, ">=", 0.95)),
    ("shop-up", "window", CalendarWindow("week", "UTC")),
    ("shop-up", "sli", AvailabilitySLI('up{job="shop"}')),
    ("payment-success", "sli", EventsSLI(
        'sum(rate(payments_total{result="failed"}[{{.window}}]))',
        "sum(rate(payments_total[{{.window}}]))")),
]


@pytest.mark.parametrize(("name", "field", "expected"), FIELDS,
                         ids=[f"{n}.{f}" for n, f, _ in FIELDS])
def test_slo_field_loads(slos: dict[str, SLO], name: str, field: str, expected: Any) -> None:
    """Each field of the example file reaches the model with its meaning, not its spelling."""
    assert getattr(slos[name], field) == expected


def test_alerting_overrides_defaults(slos: dict[str, SLO]) -> None:
    """Tiers override by name, `false` disables, new names append; other settings are kept."""
    alerting = slos["checkout-availability"].alerting
    tiers = {t.name: t for t in alerting.tiers}
    assert list(tiers) == ["page-fast", "page-slow", "ticket-fast", "ticket-slow", "page-custom"]
    assert tiers["page-fast"].for_ms == 2 * MINUTE
    assert tiers["page-fast"].budget_fraction == 0.02
    assert not tiers["ticket-slow"].enabled
    custom = tiers["page-custom"]
    assert (custom.long_window_ms, custom.short_window_ms) == (30 * MINUTE, 5 * MINUTE)
    assert (custom.factor, custom.budget_fraction, custom.severity) == (20.0, None, "page")
    assert alerting.runbook_url == "https://runbooks.example.com/checkout"
    assert alerting.labels == (("team", "shop"),)
    assert (alerting.budget_exhausted, alerting.no_data_for_ms) == (False, 15 * MINUTE)


def test_alerting_defaults(slos: dict[str, SLO]) -> None:
    """Without `alerting`, an SLO gets the four default tiers and both extra alerts."""
    alerting = slos["shop-up"].alerting
    assert alerting.tiers == default_tiers()
    assert [t.name for t in alerting.tiers] == ["page-fast", "page-slow", "ticket-fast",
                                                "ticket-slow"]
    assert (alerting.budget_exhausted, alerting.no_data_for_ms) == (True, 10 * MINUTE)
    assert slos["checkout-latency"].alerting.no_data_for_ms is None


def test_slo_defaults(slos: dict[str, SLO]) -> None:
    """Optional keys default to occurrences, no grouping, ignore, a limit of 100."""
    slo = slos["payment-success"]
    assert (slo.budgeting, slo.group_by, slo.no_data, slo.series_limit) == (None, (), "ignore", 100)
    assert (slo.description, slo.owner, slo.labels, slo.maintenance) == ("", "", (), ())
    assert str(slo.source) == f"{TESTDATA / 'slos.yaml'}:58:5"


def test_groups_and_slos_load_together() -> None:
    """A file with both groups and slos gives both, in the same RuleSet."""
    rules = load_rule_files([TESTDATA / "slos.yaml"])
    assert [g.name for g in rules.groups] == ["shop"]
    assert len(rules.slos) == 4


def test_duplicate_name_across_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SLO name used in two files is an error pointing at both places."""
    monkeypatch.chdir(TESTDATA)
    assert load_rule_files(["slos-duplicate.yaml"]).slos  # alone it is fine
    with pytest.raises(UserError) as info:
        load_rule_files(["slos.yaml", "slos-duplicate.yaml"])
    assert info.value.lines() == Path("slos-duplicate.yaml.err").read_text().splitlines()


RATIO_OBJECTIVE = """\
slos:
  - {name: ratio, service: shop, objective: 0.999, window: 30d, sli: {availability: {gauge: up}}}
"""


def test_ratio_objective_warns_and_loads(tmp_path: Path) -> None:
    """An objective that looks like a ratio loads, with a warning handed to the caller."""
    path = tmp_path / "ratio.yaml"
    path.write_text(RATIO_OBJECTIVE)
    warnings: list[Problem] = []
    rules = load_rule_files([path], warnings)
    assert rules.slos[0].objective_percent == 0.999
    assert [str(w) for w in warnings] == [
        f"{path}:2:45: slos[0] \"ratio\", objective: warning: objective 0.999 looks like a ratio;"
        " expected a percent like 99.9"]


def test_check_rules_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check rules` exits 0 on warnings, prints them on stderr and counts the SLOs."""
    path = tmp_path / "ratio.yaml"
    path.write_text(RATIO_OBJECTIVE)
    assert main(["check", "rules", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"OK: {path}: 0 groups, 0 rules, 1 SLOs\n"
    assert "warning: objective 0.999 looks like a ratio" in err


SLI_SNIPPETS = [
    ("ratio-good", "{ratio: {good: ok_total, total: requests_total}}",
     RatioSLI(total="requests_total", good="ok_total")),
    ("ratio-name-matcher",
     "{ratio: {errors: '{__name__=\"errors_total\"}', total: requests_total}}",
     RatioSLI(total="requests_total", errors='{__name__="errors_total"}')),
    ("latency-name-matcher", "{latency: {histogram: '{__name__=\"d_bucket\"}', threshold: 1}}",
     LatencySLI('{__name__="d_bucket"}', 1.0)),
    ("availability-expression", "{availability: {gauge: 'min by (job) (probe_success)'}}",
     AvailabilitySLI("min by (job) (probe_success)")),
    ("events-binary", "{events: {error_query: 'sum(increase(a[{{.window}}])) - "
     "sum(increase(b[{{.window}}]))', total_query: 'sum(increase(a[{{.window}}]))'}}",
     EventsSLI("sum(increase(a[{{.window}}])) - sum(increase(b[{{.window}}]))",
               "sum(increase(a[{{.window}}]))")),
]


@pytest.mark.parametrize(("snippet", "expected"), [s[1:] for s in SLI_SNIPPETS],
                         ids=[s[0] for s in SLI_SNIPPETS])
def test_sli_kinds(tmp_path: Path, snippet: str, expected: object) -> None:
    """Each SLI kind accepts the PromQL forms it promises."""
    path = tmp_path / "sli.yaml"
    head = "slos:\n  - {name: a, service: s, objective: 99, window: 7d, sli: "
    path.write_text(head + snippet + "}\n")
    assert load_rule_files([path]).slos[0].sli == expected
