"""SLI -> PromQL for compile: bad and total events per evaluation interval, as the sidecar counts.

The sidecar counts each interval's events exactly: a counter's increase from the last sample
of the previous evaluation to the last sample now (exporter/slo_events.py). PromQL gets the
same number from `x - x offset I` (both sides are "the last sample at or before" those two
instants) whenever no counter reset lies between them. Where one does, or the series is new,
the expression falls back to `increase(x[I])`, which extrapolates to the window edges; that
is the only place the two engines' counts can differ (see docs in exporter/compile.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.compile_promql import (
    binary,
    call,
    count_by,
    either,
    float_regex,
    is_selector,
    offset,
    range_of,
    sum_by,
    with_matcher,
)
from exporter.durations import format_duration
from exporter.rules.slo_model import SLO, AvailabilitySLI, EventsSLI, LatencySLI, RatioSLI

WINDOW_PLACEHOLDER = "{{.window}}"


@dataclass(frozen=True, slots=True)
class IntervalQueries:
    """PromQL for one interval's events by the SLO's group_by labels.

    `total` stands alone. `bad` is written in terms of `total_ref`, the selector of the
    already recorded total series, so each raw selector is read once and bad never exceeds
    total (the sidecar clamps the same way: scrapes are not atomic across series).
    """

    total: str
    bad: str


def counter_increase(sel: str, interval_ms: int) -> str:
    """A counter's increase over the last interval, exact where the sidecar's is exact."""
    window = range_of(sel, interval_ms)
    previous = offset(sel, interval_ms)
    exact = binary(sel, "-", previous)
    reset = either(binary(call("resets", window), ">", "0"),
                   binary(call("min_over_time", window), "<", previous))
    return either(binary(exact, "unless", reset), call("increase", window))


def interval_queries(slo: SLO, interval_ms: int, total_ref: str) -> IntervalQueries:
    """The bad and total event queries for the SLO's SLI kind."""
    by = slo.group_by
    sli = slo.sli
    if isinstance(sli, RatioSLI):
        total = sum_by(by, counter_increase(sli.total, interval_ms))
        if sli.errors is not None:
            return IntervalQueries(total, _bad_from_bad(
                sum_by(by, counter_increase(sli.errors, interval_ms)), total_ref, by))
        good = sum_by(by, counter_increase(sli.good or "", interval_ms))
        return IntervalQueries(total, _bad_from_good(good, total_ref, by))
    if isinstance(sli, LatencySLI):
        inf = with_matcher(sli.histogram, "le", "=", "+Inf")
        at_threshold = with_matcher(sli.histogram, "le", "=~", float_regex(sli.threshold))
        total = sum_by(by, counter_increase(inf, interval_ms))
        good = sum_by(by, counter_increase(at_threshold, interval_ms))
        return IntervalQueries(total, _bad_from_good(good, total_ref, by))
    if isinstance(sli, AvailabilitySLI):
        if is_selector(sli.gauge):
            # Every scrape sample in the interval is one event, good when the gauge is 1.
            window = range_of(sli.gauge, interval_ms)
            total = sum_by(by, call("count_over_time", window))
            good = sum_by(by, call("sum_over_time", window))
        else:
            # A computed gauge has no samples of its own: one event per series per evaluation.
            total = count_by(by, sli.gauge)
            good = sum_by(by, binary(sli.gauge, "==", "1", bool_=True))
        return IntervalQueries(total, _bad_from_good(good, total_ref, by))
    assert isinstance(sli, EventsSLI)
    window = format_duration(interval_ms)
    total = sum_by(by, sli.total_query.replace(WINDOW_PLACEHOLDER, window))
    bad = sum_by(by, sli.error_query.replace(WINDOW_PLACEHOLDER, window))
    return IntervalQueries(total, _bad_from_bad(bad, total_ref, by))


def _bad_from_bad(bad: str, total_ref: str, by: tuple[str, ...]) -> str:
    # min(bad, total) as total - max(total - bad, 0); an absent bad series (no error yet)
    # is zero bad events, not a missing interval.
    capped = binary(total_ref, "-", call("clamp_min", binary(total_ref, "-", bad, on=by), "0"),
                    on=by)
    return either_on(capped, binary("0", "*", total_ref), by)


def _bad_from_good(good: str, total_ref: str, by: tuple[str, ...]) -> str:
    # total - min(good, total); with no good series at all, every event was bad.
    return either_on(call("clamp_min", binary(total_ref, "-", good, on=by), "0"), total_ref, by)


def either_on(lhs: str, rhs: str, by: tuple[str, ...]) -> str:
    """`lhs or on (by) rhs`: rhs only for group_by values lhs lacks, whatever other labels."""
    return binary(lhs, "or", rhs, on=by)
