"""Tests for `value-exporter import openslo|sloth`: golden outputs that load, and clear refusals.

Refresh the golden files after an intended change with:
    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_importers.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.importers import import_command
from exporter.rules.load import load_rule_files

TESTDATA = Path(__file__).parent / "testdata" / "import"
CASES = [("openslo", "openslo.yaml"), ("sloth", "sloth.yaml")]


def _check_golden(path: Path, actual: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert actual == path.read_text()


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[c[0] for c in CASES])
def test_import_matches_golden(kind: str, name: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """The converted rule file and the "cannot convert" lines are exactly the golden ones."""
    monkeypatch.chdir(TESTDATA)
    assert import_command(kind, name, "-") == 0
    out, err = capsys.readouterr()
    _check_golden(TESTDATA / f"{name}.out", out)
    _check_golden(TESTDATA / f"{name}.stderr", err)


@pytest.mark.parametrize(("kind", "name", "count"), [("openslo", "openslo.yaml", 6),
                                                     ("sloth", "sloth.yaml", 2)],
                         ids=["openslo", "sloth"])
def test_import_output_loads(kind: str, name: str, count: int, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The file `-o` writes loads with the rule-file reader and holds every converted SLO."""
    out = tmp_path / "slos.yaml"
    assert main(["import", kind, str(TESTDATA / name), "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert len(load_rule_files([out]).slos) == count
    assert out.read_text() == (TESTDATA / f"{name}.out").read_text()


BAD_INPUTS = [
    ("not-yaml", "sloth", "slos: [\n", "sloth-in.yaml: invalid YAML: "),
    ("openslo-as-sloth", "sloth", "apiVersion: openslo/v1\nkind: SLO\n",
     'sloth-in.yaml: document 1 is not a Sloth spec; expected version: "prometheus/v1" or kind: '
     "PrometheusServiceLevel"),
    ("no-slo-document", "openslo", "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: a}\n",
     "sloth-in.yaml: no OpenSLO v1 SLO document; expected apiVersion: openslo/v1, kind: SLO"),
    ("nothing-convertible", "sloth",
     "version: prometheus/v1\nservice: s\nslos:\n  - name: r\n    objective: 99\n"
     "    sli: {raw: {error_ratio_query: x}}\n",
     "sloth-in.yaml: no SLO could be converted"),
    ("objective-out-of-range", "sloth",
     "version: prometheus/v1\nservice: s\nslos:\n  - name: r\n    objective: 100\n"
     "    sli: {events: {error_query: 'a[{{.window}}]', total_query: 'sum(b[{{.window}}])'}}\n",
     'sloth-in.yaml: slo "r": cannot convert objective: objective 100 is out of range; expected'
     " a percent above 0 and below 100, like 99.9"),
    ("missing-file", "openslo", None, "sloth-in.yaml: cannot read file: "),
]


@pytest.mark.parametrize(("kind", "text", "message"), [b[1:] for b in BAD_INPUTS],
                         ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exits_1(kind: str, text: str | None, message: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """Input that is invalid, or of which nothing converts, exits 1 saying why, without output."""
    monkeypatch.chdir(tmp_path)
    if text is not None:
        Path("sloth-in.yaml").write_text(text)
    assert import_command(kind, "sloth-in.yaml", "-") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err and "Traceback" not in err


def test_kubernetes_sloth_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A PrometheusServiceLevel object converts like the plain spec inside it."""
    path = tmp_path / "psl.yaml"
    path.write_text(
        "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: a}\n"
        "spec:\n  service: shop\n  slos:\n    - name: up\n      objective: 99.5\n"
        "      sli: {events: {error_query: 'sum(rate(e[{{.window}}]))',"
        " total_query: 'sum(rate(t[{{.window}}]))'}}\n")
    assert import_command("sloth", str(path), "-") == 0
    out, err = capsys.readouterr()
    assert "- name: up\n  service: shop\n  objective: 99.5\n  window: 30d\n" in out
    assert err == ""
