"""Selectors: read instant and range vectors for one evaluation time out of the series store."""

from __future__ import annotations

from array import array
from bisect import bisect_right

from exporter.labels import STALE_NAN, Labels, is_stale
from exporter.promql.values import Matrix, RangeSeries, Sample, Vector
from exporter.store import Series

_STALE_BYTES = array("d", [STALE_NAN]).tobytes()


def select_instant(
    series: list[Series], ref_ms: int, lookback_ms: int, t_ms: int, *, raw_times: bool = False
) -> Vector:
    """The newest non-stale sample in (ref - lookback, ref] of each series.

    Samples carry the evaluation time t_ms, as every PromQL result does; raw_times keeps
    each sample's own timestamp instead (what `timestamp()` of a selector reports).
    """
    out: Vector = []
    floor = ref_ms - lookback_ms
    for s in series:
        ts, vs = s.arrays()
        i = bisect_right(ts, ref_ms, 0, len(ts)) - 1
        if i < 0:
            continue
        t = ts[i]
        if t <= floor:
            continue
        v = vs[i]
        if v != v and is_stale(v):
            continue
        out.append(Sample(s.labels, v, t if raw_times else t_ms))
    return out


def select_steps(
    series: list[Series], steps: range, refs: list[int], lookback_ms: int
) -> list[RangeSeries]:
    """A selector evaluated at many steps at once (a subquery over a plain selector).

    Equivalent to select_instant at each step, without building a sample per step; refs are
    the read times of the steps, in non-decreasing order.
    """
    out: list[RangeSeries] = []
    for s in series:
        ts, vs = s.arrays()
        n = len(ts)
        lo = 0
        keep_t: list[int] = []
        keep_v: list[float] = []
        for step_t, ref in zip(steps, refs, strict=True):
            i = bisect_right(ts, ref, lo, n) - 1
            if i < 0:
                continue
            lo = i
            if ts[i] <= ref - lookback_ms:
                continue
            v = vs[i]
            if v != v and is_stale(v):
                continue
            keep_t.append(step_t)
            keep_v.append(v)
        if keep_t:
            out.append(RangeSeries(s.labels, keep_t, keep_v))
    return out


def select_range(series: list[Series], ref_ms: int, range_ms: int) -> Matrix:
    """Samples in the left-open window (ref - range, ref] of each series, stale markers dropped."""
    start = ref_ms - range_ms
    out: list[RangeSeries] = []
    for s in series:
        # Series.window inlined: this loop runs once per series per range selector.
        ts_all, vs_all = s.arrays()
        n = len(ts_all)
        lo = bisect_right(ts_all, start, 0, n)
        hi = bisect_right(ts_all, ref_ms, lo, n)
        if lo >= hi:
            continue
        ts = ts_all[lo:hi]
        vs = vs_all[lo:hi]
        # A byte search finds candidate stale markers at C speed; most windows have none.
        if _STALE_BYTES in vs.tobytes():
            ts, vs = _drop_stale(ts, vs)
            if not ts:
                continue
        out.append(RangeSeries(s.labels, ts, vs))
    return Matrix(out, start, ref_ms)


def _drop_stale(ts: array[int], vs: array[float]) -> tuple[array[int], array[float]]:
    keep_t: array[int] = array("q")
    keep_v: array[float] = array("d")
    for t, v in zip(ts, vs, strict=True):
        if not is_stale(v):
            keep_t.append(t)
            keep_v.append(v)
    return keep_t, keep_v


def subquery_times(end_ms: int, range_ms: int, step_ms: int) -> range:
    """Inner evaluation times of a subquery: multiples of step in (end - range, end]."""
    start_excl = end_ms - range_ms
    # Prometheus aligns subquery steps to absolute multiples of the step, so the same
    # points come out whichever outer step asks for them.
    first = (start_excl // step_ms + 1) * step_ms
    return range(first, end_ms + 1, step_ms)


def collect_series(points: dict[Labels, tuple[list[int], list[float]]]) -> list[RangeSeries]:
    """Per-series point lists gathered step by step → range series."""
    return [RangeSeries(labels, ts, vs) for labels, (ts, vs) in points.items()]
