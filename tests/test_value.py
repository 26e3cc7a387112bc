"""Tests for value metrics: shorthands and parameters in both engines, and the generated rules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from exporter.compile import compile_files
from exporter.rules.load import load_rule_files
from exporter.ruletest import run_rule_tests
from tests.promtool import promtool_test_compiled, require_promtool

DATA = Path(__file__).parent / "testdata" / "value"
CASES = sorted(DATA.glob("*.test.yaml"))
DEMO = Path(__file__).parent.parent / "rules"


@pytest.mark.parametrize("test_file", CASES, ids=lambda p: p.name)
def test_value_unit_tests_pass_in_sidecar(test_file: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each hand-computed unit-test file passes in `value-exporter test`."""
    monkeypatch.chdir(DATA)
    assert run_rule_tests([test_file.name]) == 0, capsys.readouterr()


@pytest.mark.parametrize("test_file", CASES, ids=lambda p: p.name)
def test_value_unit_tests_pass_in_promtool(test_file: Path, tmp_path: Path) -> None:
    """The same file passes in real `promtool test rules` on compile's output."""
    promtool = require_promtool()
    test = yaml.safe_load(test_file.read_text())
    rule_files = test["rule_files"]
    compiled = compile_files(load_rule_files([DATA / f for f in rule_files]), "rules")
    proc = promtool_test_compiled(promtool, test, {n: compiled[str(DATA / n)] for n in rule_files},
                                  tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compiled_value_rules_pass_promtool_check(tmp_path: Path) -> None:
    """promtool check rules accepts every compiled value file."""
    promtool = require_promtool()
    files = sorted(DATA.glob("*.yaml"))
    files = [f for f in files if not f.name.endswith(".test.yaml")]
    for path, text in compile_files(load_rule_files(files), "rules").items():
        out = tmp_path / Path(path).name
        out.write_text(text)
        proc = subprocess.run([str(promtool), "check", "rules", str(out)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_parameter_history_picks_value_by_date() -> None:
    """A report time uses the parameter value in force then."""
    rules = load_rule_files([DATA / "shop.yaml"])
    margin = next(p for p in rules.parameters if p.name == "margin")
    assert (margin.value_at(0), margin.value_at(3599), margin.value_at(3600)) == (0.25, 0.25, 0.5)


def test_shorthands_name_series_with_currency() -> None:
    """Shorthand metrics record the documented series names with the currency suffix."""
    text = compile_files(load_rule_files([DATA / "shop.yaml"]), "rules")[str(DATA / "shop.yaml")]
    group = next(g for g in yaml.safe_load(text)["groups"] if g["name"] == "value:metrics")
    names = [r["record"] for r in group["rules"] if r["record"] != "value:info"]
    assert names == [
        "slo:revenue_at_risk_eur:increase1h", "slo:revenue_at_risk_eur:period",
        "slo:value_delivered_eur:increase1h", "slo:value_delivered_eur:period",
        "slo:error_budget_remaining_eur:period",
        "slo:downtime:ratio_interval", "slo:downtime_cost_eur:increase1h",
        "shop:margin_eur:increase1h"]
