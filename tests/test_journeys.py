"""Tests for `journeys:` and `improvements:` in rule files: loading, errors, both engines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.compile import compile_files
from exporter.errors import Problem
from exporter.journeys import journey_and_improvement_groups
from exporter.labels import METRIC_NAME, make_labels
from exporter.promql.analysis import retention_by_name_ms
from exporter.rules.journey_model import Improvement, Journey, Stage
from exporter.rules.load import load_rule_files
from exporter.ruletest import run_rule_tests
from exporter.store import SeriesStore
from tests.promtool import promtool_test_compiled, require_promtool
from tests.shared_data import REPO_ROOT

DATA = Path(__file__).parent / "testdata" / "journeys"
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
DEMO = [REPO_ROOT / "rules" / "shop-slos.yaml", REPO_ROOT / "rules" / "shop-journeys.yaml"]


def test_demo_journey_and_register_load() -> None:
    """The demo's purchase journey and two improvements load with their owners, no warnings."""
    warnings: list[Problem] = []
    rules = load_rule_files(DEMO, warnings)
    assert warnings == []
    (journey,) = rules.journeys
    assert isinstance(journey, Journey)
    assert (journey.name, journey.owner, journey.window_ms, journey.currency) == (
        "purchase", "E-commerce product team", DAY, "eur")
    assert [s.name for s in journey.stages] == ["explore", "offer", "agree"]
    assert journey.stages[-1] == Stage(
        name="agree", attempts='shop_journey_events_total{stage="checkout_started"}',
        successes='shop_journey_events_total{stage="order_paid"}', value_per_success=42.5,
        touchpoints=("checkout-availability", "checkout-latency"),
        backstage=("payment-success",))
    latency, payment = rules.improvements
    assert isinstance(latency, Improvement)
    assert (latency.owner, latency.direction, latency.measured) == ("Checkout team", "down", True)
    assert (payment.owner, payment.baseline, payment.target) == ("Payments team", 0.985, 0.995)
    assert payment.baseline_at_ms == 1_790_812_800_000  # 2026-10-01T00:00Z


BAD = sorted(DATA.glob("*.bad.yaml"))


@pytest.mark.parametrize("bad", BAD, ids=lambda p: p.name)
def test_bad_file_reports_every_error_with_its_position(
        bad: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Every mistake in both sections is one file:line:col line, all at once, exit 1."""
    monkeypatch.chdir(DATA)
    assert main(["check", "rules", bad.name]) == 1
    expected = (DATA / f"{bad.name}.err").read_text().splitlines()
    assert capsys.readouterr().err.splitlines() == expected


def test_unknown_slo_behind_a_stage_is_a_warning(tmp_path: Path) -> None:
    """A touchpoint naming no SLO of the loaded set warns, pointing at the stage."""
    path = tmp_path / "j.yaml"
    path.write_text((DATA / "journey.rules.yaml").read_text())
    warnings: list[Problem] = []
    load_rule_files([DEMO[0], path], warnings)
    # checkout-latency is one of the demo's SLOs; catalog-availability is not.
    assert [(w.line, w.message) for w in warnings] == [(9, 'unknown SLO "catalog-availability"')]


def test_long_window_reads_hourly_series_so_no_raw_sample_is_kept_for_it(tmp_path: Path) -> None:
    """A 30d window sums the recorded 1h series; only those are kept 30 days, raw ones 1h."""
    path = tmp_path / "j.yaml"
    path.write_text((DATA / "journey.rules.yaml").read_text().replace("window: 2h",
                                                                      "window: 30d"))
    warnings: list[Problem] = []
    rules = load_rule_files([path], warnings)
    assert (rules.journeys[0].window_ms, warnings) == (30 * DAY, [])
    (group,) = journey_and_improvement_groups(rules)
    window = [r.expr for r in group.rules
              if r.name == "journey:stage_attempts:increase_window"]
    assert window[0] == ('sum_over_time(journey:stage_attempts:increase1h'
                         '{journey="buy",stage="explore"}[30d:1h])')
    default_ms, longer = retention_by_name_ms([r.expr for r in group.rules], 5 * MINUTE)
    # Raw counters are read over 1h at most; the hourly series over 30d plus one lookback.
    assert default_ms == HOUR
    assert longer == {"journey:stage_attempts:increase1h": 30 * DAY + 5 * MINUTE,
                      "journey:stage_successes:increase1h": 30 * DAY + 5 * MINUTE}


def test_store_truncates_a_long_read_name_at_its_own_retention() -> None:
    """Per-name retention keeps the hourly series while raw samples of the same age go."""
    store = SeriesStore()
    raw = make_labels({METRIC_NAME: "events_total"})
    hourly = make_labels({METRIC_NAME: "journey:stage_attempts:increase1h", "journey": "buy"})
    for t_ms in (0, HOUR, 2 * HOUR):
        store.append(raw, t_ms, 1.0)
        store.append(hourly, t_ms, 1.0)
    store.truncate(2 * HOUR, {"journey:stage_attempts:increase1h": 0})
    assert [list(s.ts) for s in (store.get(raw), store.get(hourly)) if s is not None] == [
        [2 * HOUR], [0, HOUR, 2 * HOUR]]


def test_generated_groups_follow_the_files_and_leave_the_model_unchanged() -> None:
    """One group per journey then per improvement, filtered by file, the model untouched."""
    rules = load_rule_files([DATA / "journey.rules.yaml", DATA / "improvements.rules.yaml"])
    before = repr(rules)
    names = [g.name for g in journey_and_improvement_groups(rules)]
    assert names == ["journey:buy", "improvement:quality-up", "improvement:latency-down"]
    only = journey_and_improvement_groups(rules, str(DATA / "improvements.rules.yaml"))
    assert [g.name for g in only] == names[1:]
    assert repr(rules) == before


def test_ratios_divide_by_a_filter_never_by_zero() -> None:
    """Every ratio's denominator is filtered with `> 0`, so no traffic means no series."""
    (group,) = journey_and_improvement_groups(load_rule_files([DATA / "journey.rules.yaml"]))
    ratios = [r.expr for r in group.rules if r.name.endswith(("ratio_1h", "ratio_window"))]
    assert ratios and all("> 0" in e for e in ratios)


CASES = sorted(DATA.glob("*.test.yaml"))


@pytest.mark.parametrize("test_file", CASES, ids=lambda p: p.name)
def test_same_unit_tests_pass_in_sidecar_and_prometheus(
        test_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """One promtool-format file passes in `value-exporter test` and in promtool on compile."""
    promtool = require_promtool()
    rules_file = test_file.with_name(test_file.name.replace(".test.yaml", ".rules.yaml"))
    sidecar, prom = tmp_path / "sidecar", tmp_path / "prometheus"
    for folder in (sidecar, prom):
        folder.mkdir()
    (sidecar / "t.yaml").write_text(test_file.read_text())
    (sidecar / "rules.yaml").write_text(rules_file.read_text())
    monkeypatch.chdir(sidecar)
    assert run_rule_tests(["t.yaml"]) == 0, capsys.readouterr()
    compiled = compile_files(load_rule_files(["rules.yaml"]), "rules")["rules.yaml"]
    test = {**yaml.safe_load(test_file.read_text()), "fuzzy_compare": True}
    proc = promtool_test_compiled(promtool, test, {"rules.yaml": compiled}, prom)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_file_compiles_for_promtool(tmp_path: Path) -> None:
    """The demo journeys file compiles, and promtool accepts it without duplicate rules."""
    promtool = require_promtool()
    assert main(["compile", *map(str, DEMO), "-o", str(tmp_path)]) == 0
    proc = subprocess.run([str(promtool), "check", "rules", str(tmp_path / "shop-journeys.yaml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "duplicate" not in proc.stdout + proc.stderr
