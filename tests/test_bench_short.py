"""Short benchmark: fails only on gross regressions against the committed benchmark results.

Every figure is a ratio to something measured in the same run (prometheus_client's parser, a
fixed pure-Python loop), so the machine and its load cancel out; a figure fails only when it
is more than 3x worse than the one `make bench` committed in benchmarks/results.md.
"""

from __future__ import annotations

import pytest

from benchmarks.short import (
    SHORT_SERIES,
    calibration_s,
    engine_round_s,
    parse_times,
    read_marker,
    short_cycle_s,
)
from tests.shared_data import REPO_ROOT

SLACK = 3.0
RESULTS = REPO_ROOT / "benchmarks" / "results.md"


@pytest.fixture(scope="module")
def committed() -> dict[str, float]:
    figures = read_marker(RESULTS.read_text())
    assert figures, "benchmarks/results.md has no bench-short line: run `make bench`"
    return figures


@pytest.fixture(scope="module")
def measured() -> dict[str, float]:
    calibration = calibration_s()
    _, client, ours, kept = parse_times(SHORT_SERIES)
    return {
        "parse_all": client / ours,
        "parse_filtered": client / kept,
        "engine_units": engine_round_s(SHORT_SERIES) / calibration,
        "cycle_units": short_cycle_s() / calibration,
    }


# (figure, higher is better): parse figures are rates relative to prometheus_client's parser;
# *_units are CPU or wall time counted in calibration loops.
FIGURES = [
    ("parse_all", True),
    ("parse_filtered", True),
    ("engine_units", False),
    ("cycle_units", False),
]


@pytest.mark.parametrize(("figure", "higher_is_better"), FIGURES, ids=[f[0] for f in FIGURES])
def test_no_gross_regression(figure: str, higher_is_better: bool, committed: dict[str, float],
                             measured: dict[str, float]) -> None:
    """A same-run ratio stays within 3x of the committed one (parse 7.5x fails below 2.5x)."""
    now, then = measured[figure], committed[figure]
    if higher_is_better:
        assert now >= then / SLACK, f"{figure}: {now:.3g}, committed {then:.3g} (higher is better)"
    else:
        assert now <= then * SLACK, f"{figure}: {now:.3g}, committed {then:.3g} (lower is better)"


@pytest.mark.parametrize(("text", "expected"), [
    ("x\n<!-- bench-short: a=1.5 b=20 -->\n", {"a": 1.5, "b": 20.0}),
    ("no marker here", {}),
], ids=["two-figures", "absent"])
def test_marker_is_read_back(text: str, expected: dict[str, float]) -> None:
    """The results.md marker line parses to the figures it lists (absent: none)."""
    assert read_marker(text) == expected
