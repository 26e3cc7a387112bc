"""SLI event counting: exact good/total events per SLI kind, from raw samples in the store."""

from __future__ import annotations

import pytest

from exporter.rules.slo_model import (
    AvailabilitySLI,
    EventsSLI,
    LatencySLI,
    RatioSLI,
)
from exporter.slo_events import sli_exprs
from tests.slo_helpers import MIN, make_slo, one, run

# (id, sli, input series, evaluate until, expected (good, total), step between samples)
CASES = [
    ("ratio-errors", RatioSLI(total='req_total{job="a"}', errors='req_total{job="a",code="500"}'),
     {'req_total{job="a",code="200"}': "0+9x10", 'req_total{job="a",code="500"}': "0+1x10"},
     10 * MIN, (90.0, 100.0), MIN),
    ("ratio-good", RatioSLI(total="all_total", good="ok_total"),
     {"all_total": "0+10x10", "ok_total": "0+9x10"}, 10 * MIN, (90.0, 100.0), MIN),
    # A drop means the counter restarted at 0: 10 + 10 + 5 + 10 = 35 events.
    ("counter-reset", RatioSLI(total="all_total", errors="bad_total"),
     {"all_total": "0 10 20 5 15", "bad_total": "0 0 0 0 0"}, 4 * MIN, (35.0, 35.0), MIN),
    # A series that appears later starts at its first sample, as increase() does: the 7
    # errors it already holds at minute 5 are not events, the 2 after are.
    ("new-series-baseline", RatioSLI(total="all_total", errors="bad_total"),
     {"all_total": "0+10x8", "bad_total": "_ _ _ _ _ 7 8 9"}, 8 * MIN, (78.0, 80.0), MIN),
    # errors above total in one scrape are clamped: never more bad than total events.
    ("ratio-clamped", RatioSLI(total="all_total", errors="bad_total"),
     {"all_total": "0 10", "bad_total": "0 12"}, MIN, (0.0, 10.0), MIN),
    # good = le="0.3" bucket (8/min), total = le="+Inf" (10/min) over 10 minutes.
    ("latency", LatencySLI('h_bucket{job="a"}', 0.3),
     {'h_bucket{job="a",le="0.1"}': "0+5x10", 'h_bucket{job="a",le="0.3"}': "0+8x10",
      'h_bucket{job="a",le="+Inf"}': "0+10x10"}, 10 * MIN, (80.0, 100.0), MIN),
    ("latency-count-fallback", LatencySLI('h_bucket{job="a"}', 0.3),
     {'h_bucket{job="a",le="0.3"}': "0+8x10", 'h_count{job="a"}': "0+10x10"},
     10 * MIN, (80.0, 100.0), MIN),
    # Scraped every 15s: 4 samples a minute; 41 samples in (-1m, 10m], 3 of them 0.
    ("availability", AvailabilitySLI('up{job="a"}'),
     {'up{job="a"}': "1 1 1 0 0 1 1 1 1 1 0 1x30"}, 10 * MIN, (38.0, 41.0), 15_000),
    # A computed gauge has no raw samples: one event per series per evaluation (11 of them).
    ("availability-expr", AvailabilitySLI('min(up{job="a"})'),
     {'up{job="a"}': "1x10"}, 10 * MIN, (11.0, 11.0), MIN),
    # rate() over 1m windows times 60s, scraped every 15s: 10/min total, 1/min failed,
    # extrapolated to the window's edges. The first evaluation's window holds one sample
    # and gives no rate, so 10 intervals count: 90 good of 100.
    ("events-rate", EventsSLI('sum(rate(p_total{r="f"}[{{.window}}]))',
                              "sum(rate(p_total[{{.window}}]))"),
     {'p_total{r="f"}': "0+0.25x40", 'p_total{r="ok"}': "0+2.25x40"}, 10 * MIN, None,
     15_000),
]


@pytest.mark.parametrize(("sli", "series", "until", "expected", "step"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_counts_events_exactly(sli: object, series: dict[str, str], until: int,
                               expected: tuple[float, float] | None, step: int) -> None:
    """Each SLI kind counts its good and total events exactly into the SLO's counters."""
    store, _, results = run(make_slo(sli), series, until, step_ms=step)  # type: ignore[arg-type]
    assert all(not r.error for r in results), [r.error for r in results if r.error]
    good = one(store, 'slo:good_events:total{slo="s"}', until)
    total = one(store, 'slo:events:total{slo="s"}', until)
    if expected is None:  # extrapolated: within a rounding error of 90/100
        assert good is not None and total is not None
        assert total == pytest.approx(100.0, rel=1e-9)
        assert good == pytest.approx(90.0, rel=1e-9)
    else:
        assert (good, total) == expected


def test_latency_without_threshold_bucket_is_an_error() -> None:
    """A histogram without the threshold's `le` bucket is an SLO error, not a crash."""
    store, evaluator, results = run(
        make_slo(LatencySLI('h_bucket{job="a"}', 0.25)),
        {'h_bucket{job="a",le="0.3"}': "0+8x3", 'h_bucket{job="a",le="+Inf"}': "0+10x3"},
        3 * MIN)
    assert all("no bucket le=0.25" in r.error for r in results)
    assert one(store, 'slo:objective:ratio{slo="s"}', 3 * MIN) == 0.99
    assert one(store, 'slo:events:total{slo="s"}', 3 * MIN) == 0.0
    assert evaluator.last_evaluation_ms == 3 * MIN


def test_invalid_selector_is_an_error() -> None:
    """A ratio SLI whose selector is a full expression is reported, and evaluation goes on."""
    _, _, results = run(make_slo(RatioSLI(total="sum(x)", errors="y")), {"x": "1"}, MIN)
    assert "is not a plain series selector" in results[-1].error


EXPR_CASES = [
    ("ratio", RatioSLI(total="a_total", errors="b_total"), ["a_total", "b_total"]),
    ("latency", LatencySLI('h_bucket{job="x"}', 0.3), ['h_bucket{job="x"}', "h_count"]),
    ("availability", AvailabilitySLI("up"), ["up"]),
    ("events", EventsSLI("sum(rate(e[{{.window}}]))", "sum(rate(t[{{.window}}]))"),
     ["sum(rate(e[2m]))", "sum(rate(t[2m]))"]),
]


@pytest.mark.parametrize(("sli", "expected"), [c[1:] for c in EXPR_CASES],
                         ids=[c[0] for c in EXPR_CASES])
def test_sli_exprs_name_what_the_daemon_must_keep(sli: object, expected: list[str]) -> None:
    """sli_exprs lists the series an SLI reads, with the window filled in."""
    assert sli_exprs(make_slo(sli), 2 * MIN) == expected  # type: ignore[arg-type]
