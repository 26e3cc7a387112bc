"""Tests for loading rule files: Prometheus's format unchanged, and every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import main
from exporter.errors import UserError
from exporter.rules.load import load_rule_files
from exporter.rules.model import AlertingRule, RecordingRule

TESTDATA = Path(__file__).parent / "testdata" / "rules"
BAD_FILES = sorted(TESTDATA.glob("*.bad.yaml"))


def test_prometheus_rules_file_loads_unchanged() -> None:
    """A plain Prometheus rules file gives the groups, rules and options it declares."""
    rules = load_rule_files([TESTDATA / "prometheus-compatible.yaml"])
    recording, alerts = rules.groups
    assert (recording.name, recording.interval_ms, recording.query_offset_ms) == (
        "shop-recording",
        30_000,
        10_000,
    )
    assert recording.limit == 100 and recording.labels == (("team", "shop"),)
    assert [type(r) for r in recording.rules] == [RecordingRule, RecordingRule]
    assert recording.rules[1].labels == (("slo", "availability"),)
    alert = alerts.rules[0]
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms) == (300_000, 60_000)
    assert alert.annotations == (("summary", "{{ $labels.job }} error ratio is {{ $value }}"),)
    assert alerts.interval_ms is None
    assert rules.rule_count == 3


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_bad_rule_file_reports_every_error(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bad file gives exactly its expected file:line:col messages, all at once."""
    monkeypatch.chdir(TESTDATA)
    expected = Path(f"{path.name}.err").read_text().splitlines()
    with pytest.raises(UserError) as info:
        load_rule_files([path.name])
    assert info.value.lines() == expected


def test_check_rules_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`check rules` exits 0 with a summary for good files and 1 with messages for bad ones."""
    good = str(TESTDATA / "prometheus-compatible.yaml")
    assert main(["check", "rules", good]) == 0
    assert "2 groups, 3 rules" in capsys.readouterr().out
    assert main(["check", "rules", good, str(BAD_FILES[0])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") >= 1 and "Traceback" not in err
