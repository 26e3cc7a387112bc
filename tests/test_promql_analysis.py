"""Tests for static facts about expressions: the scrape filter's names and the store's retention."""

from __future__ import annotations

import pytest

from exporter.promql.analysis import longest_lookback_ms, selected_metric_names

MIN = 60_000


@pytest.mark.parametrize(
    ("exprs", "expected"),
    [
        pytest.param(["sum(rate(a_total[5m])) / on() group_left b"], {"a_total", "b"}, id="join"),
        pytest.param(["histogram_quantile(0.9, rate(c_bucket[5m]))"], {"c_bucket"}, id="call"),
        pytest.param(['{__name__="d", job="x"}'], {"d"}, id="name-matcher"),
        pytest.param(["max_over_time(e[5m:1m])", "topk(3, f)"], {"e", "f"}, id="subquery-param"),
        pytest.param(["vector(1)", "time()"], set(), id="no-selectors"),
        pytest.param(['g or {__name__="h"}'], {"g", "h"}, id="or"),
        pytest.param(['{job="x"}'], None, id="no-name-keeps-all"),
        pytest.param(['{__name__=~"x.*"}'], None, id="regex-name-keeps-all"),
    ],
)
def test_selected_metric_names(exprs: list[str], expected: set[str] | None) -> None:
    """The names rules read are found through every node; an open selector keeps everything."""
    got = selected_metric_names(exprs)
    assert (None if got is None else set(got)) == expected


@pytest.mark.parametrize(
    ("expr", "expected_ms"),
    [
        pytest.param("x", 5 * MIN, id="instant-lookback"),
        pytest.param("rate(x[1h])", 60 * MIN, id="range"),
        pytest.param("x offset 10m", 15 * MIN, id="offset-plus-lookback"),
        pytest.param("x offset -10m", 5 * MIN, id="negative-offset-reads-forward"),
        pytest.param("max_over_time(rate(x[5m])[1d:1m] offset 1h)", (5 + 24 * 60 + 60) * MIN,
                     id="subquery-adds-up"),
        pytest.param("rate(a[2m]) / rate(b[30m])", 30 * MIN, id="longest-side"),
    ],
)
def test_longest_lookback(expr: str, expected_ms: int) -> None:
    """Retention covers the farthest any expression reads back from evaluation time."""
    assert longest_lookback_ms([expr], 5 * MIN) == expected_ms
