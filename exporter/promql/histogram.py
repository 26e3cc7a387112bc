"""histogram_* PromQL functions over classic (`le`-bucketed) histograms."""

from __future__ import annotations

import math
import re

from exporter.labels import Labels, drop_metric_name, get_label, metric_name
from exporter.promql.functions_common import Function, check_unique, scalar_arg, vector_arg
from exporter.promql.gofloat import almost_equal
from exporter.promql.values import CallContext, Sample, Value, Vector

BUCKET_LABEL = "le"
# Relative differences between adjacent buckets below this are float noise and ignored.
SMALL_DELTA_TOLERANCE = 1e-12

Bucket = tuple[float, float]  # (upper bound, cumulative count)

_GO_FLOAT = re.compile(
    r"^[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|0x[0-9a-f]*\.?[0-9a-f]*p[+-]?\d+)$",
    re.IGNORECASE,
)


def parse_bound(text: str) -> float | None:
    """An `le` value as Go's strconv.ParseFloat reads it, or None if it does not parse."""
    if not _GO_FLOAT.match(text):
        return None
    if "x" in text.lower():
        return float.fromhex(text)
    return float(text)


def _prepare(buckets: list[Bucket]) -> list[Bucket] | None:
    """Sort, require a +Inf bucket and merge equal bounds; None if there is no +Inf bucket."""
    ordered = sorted(buckets, key=lambda b: b[0])
    if not (math.isinf(ordered[-1][0]) and ordered[-1][0] > 0):
        return None
    merged: list[list[float]] = []
    for bound, count in ordered:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    return [(b, c) for b, c in merged]


def _make_monotonic(buckets: list[Bucket]) -> tuple[list[Bucket], bool]:
    """Ignore float-noise differences, then flatten decreases; says whether any was forced."""
    out = list(buckets)
    forced = False
    prev = out[0][1]
    for i in range(1, len(out)):
        bound, curr = out[i]
        if curr == prev:
            continue
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE):
            out[i] = (bound, prev)
            continue
        if curr < prev:
            out[i] = (bound, prev)
            forced = True
            continue
        prev = curr
    return out, forced


def _search(n: int, pred: object) -> int:
    # Go's sort.Search exactly, since NaN counts make the predicate non-monotonic.
    assert callable(pred)
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if not pred(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def bucket_quantile(q: float, buckets: list[Bucket]) -> tuple[float, bool]:
    """The q-quantile interpolated linearly within buckets; also whether monotonicity was forced."""
    if math.isnan(q):
        return math.nan, False
    if q < 0:
        return -math.inf, False
    if q > 1:
        return math.inf, False
    prepared = _prepare(buckets)
    if prepared is None:
        return math.nan, False
    fixed, forced = _make_monotonic(prepared)
    if len(fixed) < 2:
        return math.nan, False
    observations = fixed[-1][1]
    if observations == 0:
        return math.nan, False
    rank = q * observations
    b = _search(len(fixed) - 1, lambda i: fixed[i][1] >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0], forced
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0], forced
    start = 0.0
    end = fixed[b][0]
    count = fixed[b][1]
    if b > 0:
        start = fixed[b - 1][0]
        count -= fixed[b - 1][1]
        rank -= fixed[b - 1][1]
    return start + (end - start) * _ratio(rank, count), forced


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def bucket_fraction(lower: float, upper: float, buckets: list[Bucket]) -> float:
    """Estimated fraction of observations in [lower, upper], interpolating linearly."""
    prepared = _prepare(buckets)
    if prepared is None:
        return math.nan
    count = prepared[-1][1]
    if count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    rank = lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    for i, (upper_bound, bucket_count) in enumerate(prepared):
        lower_bound = prepared[i - 1][0] if i > 0 else -math.inf

        def interpolate(
            v: float,
            lb: float = lower_bound,
            ub: float = upper_bound,
            c: float = bucket_count,
            r: float = rank,
        ) -> float:
            return r + (c - r) * (v - lb) / (ub - lb)

        if not lower_set and lower_bound >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and lower_bound >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        if not lower_set and lower_bound < lower < upper_bound:
            lower_rank, lower_set = interpolate(lower), True
        if not upper_set and lower_bound < upper < upper_bound:
            upper_rank, upper_set = interpolate(upper), True
        if lower_set and upper_set:
            break
        rank = bucket_count
    if not lower_set or lower_rank > count:
        lower_rank = count
    if not upper_set or upper_rank > count:
        upper_rank = count
    return (upper_rank - lower_rank) / count


def _group_buckets(vec: Vector) -> list[tuple[Labels, list[Bucket]]]:
    """Buckets per histogram: samples grouped by their labels without `le`."""
    groups: dict[Labels, list[Bucket]] = {}
    for s in vec:
        bound = parse_bound(get_label(s.labels, BUCKET_LABEL))
        if bound is None:
            continue  # Upstream warns about the bad bucket label and ignores the sample.
        key = tuple(p for p in s.labels if p[0] != BUCKET_LABEL)
        groups.setdefault(key, []).append((bound, s.value))
    return list(groups.items())


def histogram_quantile(args: list[Value], ctx: CallContext) -> Value:
    """The q-quantile of each classic histogram in the vector."""
    q = scalar_arg(args, 0)
    out: Vector = []
    for key, buckets in _group_buckets(vector_arg(args, 1)):
        value, forced = bucket_quantile(q, buckets)
        if forced:
            ctx.annotations.infos.append(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
                f'for metric name "{metric_name(key)}"'
            )
        out.append(Sample(drop_metric_name(key), value, ctx.t_ms))
    return check_unique(out)


def histogram_fraction(args: list[Value], ctx: CallContext) -> Value:
    """The estimated fraction of observations between lower and upper, per classic histogram."""
    lower, upper = scalar_arg(args, 0), scalar_arg(args, 1)
    out = [
        Sample(drop_metric_name(key), bucket_fraction(lower, upper, buckets), ctx.t_ms)
        for key, buckets in _group_buckets(vector_arg(args, 2))
    ]
    return check_unique(out)


def _native_only(args: list[Value], _ctx: CallContext) -> Value:
    # These read native histogram samples only; float samples yield nothing.
    vector_arg(args, 0)
    return []


HISTOGRAM_FUNCTIONS: dict[str, Function] = {
    "histogram_quantile": histogram_quantile,
    "histogram_fraction": histogram_fraction,
    "histogram_count": _native_only,
    "histogram_sum": _native_only,
    "histogram_avg": _native_only,
    "histogram_stddev": _native_only,
    "histogram_stdvar": _native_only,
}
