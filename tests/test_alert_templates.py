"""Alert templates and generated business annotations: the same unit tests in both engines."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.compile import compile_files
from exporter.errors import UserError
from exporter.rules.load import load_rule_files
from exporter.ruletest import run_rule_tests
from exporter.selfmetrics import SelfMetrics
from tests.promtool import promtool_test_compiled, require_promtool

DATA = Path(__file__).parent / "testdata" / "templates"
ROOT = Path(__file__).parent.parent
CASES = sorted(DATA.glob("*.test.yaml"))


def _rule_files(test_file: Path) -> list[Path]:
    names = yaml.safe_load(test_file.read_text())["rule_files"]
    return [(test_file.parent / n).resolve() for n in names]


@pytest.mark.parametrize("test_file", CASES, ids=lambda p: p.stem)
def test_unit_tests_pass_in_sidecar(test_file: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Each file's exp_annotations (hand-computed in its comments) hold in `value-exporter test`."""
    monkeypatch.chdir(test_file.parent)
    assert run_rule_tests([test_file.name]) == 0, capsys.readouterr()


@pytest.mark.parametrize("test_file", CASES, ids=lambda p: p.stem)
def test_unit_tests_pass_in_promtool(test_file: Path, tmp_path: Path) -> None:
    """The same file passes in real `promtool test rules` on compile's output."""
    promtool = require_promtool()
    test = yaml.safe_load(test_file.read_text())
    paths = _rule_files(test_file)
    compiled = compile_files(load_rule_files(paths), "rules")
    # Rule files outside the test's folder (rules/ at the root) are copied under their name.
    test["rule_files"] = [p.name for p in paths]
    proc = promtool_test_compiled(promtool, test, {p.name: compiled[str(p)] for p in paths},
                                  tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- value thresholds: strict loading ------------------------------------------------------

_VALUE_HEAD = """\
value:
  - name: shop:sales_eur:increase10m
    unit: EUR
    owner: Sales
    expr: sum(increase(order_value_eur_total[10m]))
"""

# (id, the `alert:` lines, the problems `check rules` prints: file:line:col: context: ...)
_CTX = 'value "shop:sales_eur:increase10m"'
ALERT_ERRORS = [
    ("both-above-and-below", "    alert: {above: 1, below: 2}\n",
     [f"r.yaml:6:12: {_CTX}, alert: an alert needs exactly one of above and below; "
      "expected above: 5000 or below: 100"]),
    ("neither", "    alert: {severity: page}\n",
     [f"r.yaml:6:12: {_CTX}, alert: an alert needs exactly one of above and below; "
      "expected above: 5000 or below: 100"]),
    # Columns: `{` at 12, `urgent` at 33, `wait` at 41.
    ("bad-severity-and-unknown-key", "    alert: {below: 1, severity: urgent, wait: 5m}\n",
     [f'r.yaml:6:33: {_CTX}, alert.severity: unknown value "urgent"; '
      "expected one of page, ticket",
      f'r.yaml:6:41: {_CTX}, alert: unknown key "wait"; '
      "expected one of above, below, for, severity, summary"]),
    # A mistyped threshold is reported as itself, not also as a missing one.
    ("bad-threshold-and-duration", "    alert: {above: lots, for: soon}\n",
     [f'r.yaml:6:20: {_CTX}, alert.above: got "lots"; expected a number',
      f'r.yaml:6:31: {_CTX}, alert.for: got "soon"; expected a duration like 15s, 1m30s, '
      "1h, 30d (units y w d h m s ms, largest first)"]),
    ("summary-does-not-parse", "    alert: {above: 1, summary: '{{ $value '}\n",
     [f"r.yaml:6:32: {_CTX}, alert.summary: template: __alert_ValueThreshold:1: "
      "unclosed action; expected a valid Go template"]),
]


@pytest.mark.parametrize(("alert", "expected"), [c[1:] for c in ALERT_ERRORS],
                         ids=[c[0] for c in ALERT_ERRORS])
def test_value_alert_errors(alert: str, expected: list[str], tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong `alert:` on a value metric is reported at its line and column, all at once."""
    (tmp_path / "r.yaml").write_text(_VALUE_HEAD + alert)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        load_rule_files(["r.yaml"])
    assert info.value.lines() == expected


def test_value_alert_rule_in_compiled_output() -> None:
    """`compile` writes the threshold as a Prometheus alerting rule after the value group."""
    path = DATA / "value-alerts.yaml"
    groups = yaml.safe_load(compile_files(load_rule_files([path]), "rules")[str(path)])["groups"]
    names = [g["name"] for g in groups]
    assert names.index("value:alerts") == names.index("value:metrics") + 1
    rule = next(g for g in groups if g["name"] == "value:alerts")["rules"][0]
    # The sales floor: below 1000 for 5m, paging, money in its own currency.
    assert (rule["alert"], rule["expr"], rule["for"]) == (
        "ValueThreshold", "shop:sales_eur:increase10m < 1000", "5m")
    assert rule["labels"] == {"metric": "shop:sales_eur:increase10m", "severity": "page",
                              "tier": "value-threshold"}


# -- alerts on the sidecar itself ------------------------------------------------------------

SELF_RULES = ROOT / "rules" / "value-exporter-self.yaml"


def _exported_names() -> set[str]:
    """Every sample name the sidecar's own registry can expose (label-less families included)."""
    names: set[str] = set()
    for family in SelfMetrics(CollectorRegistry()).registry.collect():
        kind = family.type
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                    "summary": ("", "_sum", "_count")}.get(kind, ("",))
        names.update(family.name + s for s in suffixes)
    return names


def test_self_alerts_use_only_exported_metrics() -> None:
    """Each value_exporter_* name in the self alerts is one the sidecar exports on /metrics."""
    rules = yaml.safe_load(SELF_RULES.read_text())["groups"][0]["rules"]
    used = {n for r in rules for n in re.findall(r"\bvalue_exporter_\w+", r["expr"])}
    assert used  # the file really was read
    assert used - _exported_names() == set()


def test_self_alerts_each_have_a_runbook_paragraph() -> None:
    """Every self alert links to a README heading of its own name, which exists."""
    readme = (ROOT / "README.md").read_text()
    headings = set(re.findall(r"^### (\w+)$", readme, re.MULTILINE))
    for rule in yaml.safe_load(SELF_RULES.read_text())["groups"][0]["rules"]:
        url = rule["annotations"]["runbook_url"]
        assert url.endswith("README.md#" + rule["alert"].lower()), rule["alert"]
        assert rule["alert"] in headings, rule["alert"]


def test_self_alerts_pass_promtool_check_after_compile(tmp_path: Path) -> None:
    """The shipped file and its `compile` output both pass `promtool check rules`."""
    promtool = require_promtool()
    compiled = compile_files(load_rule_files([SELF_RULES]), "rules")[str(SELF_RULES)]
    (tmp_path / "self.yaml").write_text(compiled)
    # compile passes plain groups through: the same rules, in the same order.
    assert yaml.safe_load(compiled) == yaml.safe_load(SELF_RULES.read_text())
    for path in (SELF_RULES, tmp_path / "self.yaml"):
        proc = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# -- templates that cannot parse: check rules points at each one ---------------------------

_GROUP_RULES = """\
groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        labels:
          team: '{{ $labels.team }}'
        annotations:
          summary: '{{ $labels.x '
          b: '{{ if }}'
"""
_SLO_RULES = """\
slos:
  - name: a
    service: s
    objective: 99
    window: 30d
    sli: {availability: {gauge: up}}
    alerting:
      runbook_url: 'https://'
      annotations:
        x: fine
        y: '{{ end }}'
"""

# (id, file text, problems: the template's own line:col, Go's parse message as promtool prints it)
TEMPLATE_ERRORS = [
    ("alert-rule-annotations", _GROUP_RULES, [
        'r.yaml:9:20: groups[0] "g", rule 1 "A", annotations: annotation "summary": template: '
        "__alert_A:1: unclosed action; expected a valid Go template",
        'r.yaml:10:14: groups[0] "g", rule 1 "A", annotations: annotation "b": template: '
        "__alert_A:1: missing value for if; expected a valid Go template"]),
    ("slo-annotations-and-runbook", _SLO_RULES, [
        'r.yaml:8:20: slos[0] "a", alerting.runbook_url: runbook_url "https://" is not a web '
        "address; expected an http:// or https:// URL",
        'r.yaml:11:12: slos[0] "a", alerting.annotations: annotation "y": template: __alert_:1: '
        "unexpected {{end}}; expected a valid Go template"]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TEMPLATE_ERRORS],
                         ids=[c[0] for c in TEMPLATE_ERRORS])
def test_unparsable_templates_are_load_errors(text: str, expected: list[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every template that cannot parse is reported at its own line and column, all at once."""
    (tmp_path / "r.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        load_rule_files(["r.yaml"])
    assert info.value.lines() == expected
