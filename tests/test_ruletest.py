"""Rule unit tests: the same files through real promtool and through `run_rule_tests`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from exporter.ruletest import run_rule_tests, run_test_file
from exporter.ruletest_file import go_duration, go_float_e, go_labels
from tests.promtool import require_promtool

DATA = Path(__file__).parent / "testdata" / "ruletest"

# (file, exit code both must give)
CASES = [
    pytest.param("recording.test.yml", 0, id="recording-chained-scalar-labels-stale"),
    pytest.param("alerts.test.yml", 0, id="alerts-for-keep_firing_for-resolved-ALERTS"),
    pytest.param("offset.test.yml", 0, id="query-offset"),
    pytest.param("templates.test.yml", 0, id="templates-functions-and-errors"),
    pytest.param("failing.test.yml", 1, id="deliberately-failing"),
    pytest.param("errors.test.yml", 1, id="rule-errors-stop-the-group"),
]


def _ours(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_rule_tests([name])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("name", "expected"), CASES)
def test_same_result_and_report_as_promtool(
    name: str, expected: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """promtool and value-exporter agree on pass/fail and print byte-identical reports."""
    promtool = require_promtool()
    monkeypatch.chdir(DATA)
    proc = subprocess.run([str(promtool), "test", "rules", name], capture_output=True, text=True,
                          timeout=120, check=False)
    code, out, err = _ours(name, capsys)
    assert (proc.returncode, code) == (expected, expected), proc.stderr
    assert err == proc.stderr
    assert out == proc.stdout


@pytest.mark.parametrize(("name", "expected"), CASES)
def test_exit_code_without_promtool(
    name: str, expected: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file passes or fails on its own, so the suite checks the runner without promtool."""
    monkeypatch.chdir(DATA)
    assert _ours(name, capsys)[0] == expected


def test_paths_are_relative_to_the_test_file(capsys: pytest.CaptureFixture[str]) -> None:
    """rule_files resolve against the unit-test file's directory, not the working directory."""
    assert run_rule_tests([str(DATA / "offset.test.yml")]) == 0
    assert capsys.readouterr().out == "  SUCCESS\n\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "rule_files: [offset.rules.yml]\ntests:\n- alert_rule_test:\n  - eval_time: 1m\n",
            "an item under alert_rule_test misses required attribute alertname at eval_time 1m",
            id="missing-alertname",
        ),
        pytest.param(
            "rule_files: [offset.rules.yml]\ngroup_eval_order: [a, a]\ntests: []\n",
            "group name repeated in evaluation order: a",
            id="repeated-group-order",
        ),
        pytest.param(
            "rule_files: [offset.rules.yml]\ntests:\n- nope: 1\n",
            'unknown key "nope"',
            id="unknown-key",
        ),
        pytest.param(
            "rule_files: [offset.rules.yml]\ntests:\n- input_series:\n"
            "  - {series: 'x', values: '1 {{schema:1}}'}\n",
            "native histograms are not supported: x",
            id="native-histogram-input",
        ),
    ],
)
def test_file_problems(text: str, message: str, tmp_path: Path) -> None:
    """Broken unit-test files fail with a message saying what is wrong."""
    (tmp_path / "offset.rules.yml").write_text((DATA / "offset.rules.yml").read_text())
    path = tmp_path / "t.yml"
    path.write_text(text)
    errors = run_test_file(str(path))
    assert any(message in e for e in errors), errors


def test_missing_rule_file_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rule_files pattern matching nothing warns on stderr, as promtool does."""
    path = tmp_path / "t.yml"
    path.write_text("rule_files: [nothing*.yml]\ntests: []\n")
    assert run_rule_tests([str(path)]) == 0
    assert "  WARNING: no file match pattern" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (500, "500ms"), (60_000, "1m0s"), (90_500, "1m30.5s"), (3_600_000, "1h0m0s")],
    ids=["zero", "millis", "minute", "fraction", "hour"],
)
def test_go_duration(ms: int, text: str) -> None:
    """Rule error times print as Go's time.Duration does."""
    assert go_duration(ms) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1E+00"), (0.5, "5E-01"), (1234.5, "1.2345E+03"), (1e-7, "1E-07"),
     (float("inf"), "+Inf"), (float("nan"), "NaN"), (-2.0, "-2E+00")],
    ids=["one", "half", "digits", "small", "inf", "nan", "negative"],
)
def test_go_float_e(value: float, text: str) -> None:
    """Sample values print as strconv.FormatFloat(v, 'E', -1, 64)."""
    assert go_float_e(value) == text


def test_go_labels_quotes_values() -> None:
    """Label sets print as Prometheus's Labels.String, quoting values Go's way."""
    assert go_labels((("__name__", "x"), ("a", 'q"\n'))) == '{__name__="x", a="q\\"\\n"}'
