"""Range-vector PromQL functions (rate, *_over_time, deriv, ...): a Matrix in, a Vector out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from operator import lt

from exporter.promql.functions_common import (
    Function,
    RangeCalc,
    absent_labels,
    go_sqrt,
    matrix_arg,
    per_series,
    quantile,
    scalar_arg,
)
from exporter.promql.gofloat import go_div, kahan_sum, kahan_sum_inc
from exporter.promql.values import CallContext, Matrix, PromQLError, Sample, Value, Vector


def _extrapolated_rate(matrix: Matrix, ctx: CallContext, is_counter: bool, is_rate: bool) -> Vector:
    range_start, range_end = matrix.start_ms, matrix.end_ms
    range_seconds = (range_end - range_start) / 1000

    def calc(ts: Sequence[int], vs: Sequence[float]) -> float | None:
        if len(vs) < 2:
            return None
        n_minus_one = len(vs) - 1
        first_t, last_t = ts[0], ts[-1]
        result = vs[-1] - vs[0]
        # `any(map(lt, ...))` finds whether any v < its predecessor at C speed; only then
        # does the plain loop add each reset (most windows of a counter have none).
        if is_counter and any(map(lt, itertools.islice(vs, 1, None), vs)):
            prev = vs[0]
            for v in vs[1:]:
                if v < prev:
                    result += prev  # A counter reset: the counter restarted from zero.
                prev = v
        duration_to_start = (first_t - range_start) / 1000
        duration_to_end = (range_end - last_t) / 1000
        sampled = (last_t - first_t) / 1000
        average = sampled / n_minus_one
        # Extrapolate to a range boundary only if a sample is within 110% of the average
        # interval of it; otherwise assume the series starts or ends half an interval out.
        threshold = average * 1.1
        if duration_to_start >= threshold:
            duration_to_start = average / 2
        if is_counter and result > 0 and vs[0] >= 0:
            # Counters cannot go below zero: never extrapolate past the zero point.
            duration_to_zero = sampled * (vs[0] / result)
            if duration_to_zero < duration_to_start:
                duration_to_start = duration_to_zero
        if duration_to_end >= threshold:
            duration_to_end = average / 2
        factor = (sampled + duration_to_start + duration_to_end) / sampled
        if is_rate:
            factor /= range_seconds
        return result * factor

    return per_series(matrix, ctx, calc)


def rate(args: list[Value], ctx: CallContext) -> Value:
    """Per-second rate of a counter, extrapolated to the window."""
    return _extrapolated_rate(matrix_arg(args, 0), ctx, True, True)


def increase(args: list[Value], ctx: CallContext) -> Value:
    """Increase of a counter over the window, extrapolated."""
    return _extrapolated_rate(matrix_arg(args, 0), ctx, True, False)


def delta(args: list[Value], ctx: CallContext) -> Value:
    """Difference of a gauge over the window, extrapolated."""
    return _extrapolated_rate(matrix_arg(args, 0), ctx, False, False)


def _instant_value(args: list[Value], ctx: CallContext, is_rate: bool) -> Vector:
    def calc(ts: Sequence[int], vs: Sequence[float]) -> float | None:
        if len(vs) < 2:
            return None
        interval = ts[-1] - ts[-2]
        if interval == 0:
            return None
        last, prev = vs[-1], vs[-2]
        # For irate, a drop is a counter reset: the last value is the increase.
        result = last if is_rate and last < prev else last - prev
        if is_rate:
            result /= interval / 1000
        return result

    return per_series(matrix_arg(args, 0), ctx, calc)


def irate(args: list[Value], ctx: CallContext) -> Value:
    """Per-second rate from the last two samples."""
    return _instant_value(args, ctx, True)


def idelta(args: list[Value], ctx: CallContext) -> Value:
    """Difference of the last two samples."""
    return _instant_value(args, ctx, False)


def _linear_regression(
    ts: Sequence[int], vs: Sequence[float], intercept_t: int
) -> tuple[float, float]:
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = vs[0]
    const_y = True
    for i, (t, v) in enumerate(zip(ts, vs, strict=True)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_t) / 1e3
        sum_x, c_x = kahan_sum_inc(x, sum_x, c_x)
        sum_y, c_y = kahan_sum_inc(v, sum_y, c_y)
        sum_xy, c_xy = kahan_sum_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = kahan_sum_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = go_div(cov_xy, var_x)
    intercept = sum_y / n - slope * sum_x / n
    return slope, intercept




def deriv(args: list[Value], ctx: CallContext) -> Value:
    """Per-second slope by least-squares regression."""

    def calc(ts: Sequence[int], vs: Sequence[float]) -> float | None:
        if len(vs) < 2:
            return None
        # Regress around the first sample's time to keep the x values small and precise.
        return _linear_regression(ts, vs, ts[0])[0]

    return per_series(matrix_arg(args, 0), ctx, calc)


def predict_linear(args: list[Value], ctx: CallContext) -> Value:
    """The regression line's value `seconds` after the evaluation time."""
    seconds = scalar_arg(args, 1)

    def calc(ts: Sequence[int], vs: Sequence[float]) -> float | None:
        if len(vs) < 2:
            return None
        slope, intercept = _linear_regression(ts, vs, ctx.t_ms)
        return slope * seconds + intercept

    return per_series(matrix_arg(args, 0), ctx, calc)


def resets(args: list[Value], ctx: CallContext) -> Value:
    """How often the value decreased within the window."""

    def calc(_ts: Sequence[int], vs: Sequence[float]) -> float:
        return float(sum(1 for a, b in itertools.pairwise(vs) if b < a))

    return per_series(matrix_arg(args, 0), ctx, calc)


def changes(args: list[Value], ctx: CallContext) -> Value:
    """How often the value changed within the window (NaN to NaN is no change)."""

    def calc(_ts: Sequence[int], vs: Sequence[float]) -> float:
        count = 0
        for a, b in itertools.pairwise(vs):
            if a != b and not (math.isnan(a) and math.isnan(b)):
                count += 1
        return float(count)

    return per_series(matrix_arg(args, 0), ctx, calc)


def _avg(_ts: Sequence[int], vs: Sequence[float]) -> float:
    # Direct mean with Kahan summation while the sum stays finite, then an incremental mean.
    total, count = vs[0], 1.0
    mean = c = 0.0
    incremental = False
    for i, v in enumerate(vs[1:]):
        count = float(i + 2)
        if not incremental:
            new_sum, new_c = kahan_sum_inc(v, total, c)
            if not math.isinf(new_sum):
                total, c = new_sum, new_c
                continue
            incremental = True
            mean = total / (count - 1)
            c /= count - 1
        q = (count - 1) / count
        mean, c = kahan_sum_inc(v / count, q * mean, q * c)
    if incremental:
        return mean + c
    return total / count + c / count


def _variance(vs: Sequence[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vs:
        count += 1
        d = v - (mean + c_mean)
        mean, c_mean = kahan_sum_inc(d / count, mean, c_mean)
        aux, c_aux = kahan_sum_inc(d * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _max(_ts: Sequence[int], vs: Sequence[float]) -> float:
    best = vs[0]
    for v in vs:
        if v > best or math.isnan(best):
            best = v
    return best


def _min(_ts: Sequence[int], vs: Sequence[float]) -> float:
    best = vs[0]
    for v in vs:
        if v < best or math.isnan(best):
            best = v
    return best


def _ts_of(better: str) -> Function:
    def fn(args: list[Value], ctx: CallContext) -> Value:
        def calc(ts: Sequence[int], vs: Sequence[float]) -> float:
            best, best_t = vs[0], ts[0]
            for t, v in zip(ts, vs, strict=True):
                hit = v >= best if better == "max" else v <= best
                if hit or math.isnan(best):
                    best, best_t = v, t
            return best_t / 1000

        return per_series(matrix_arg(args, 0), ctx, calc)

    return fn


def _mad(_ts: Sequence[int], vs: Sequence[float]) -> float:
    median = quantile(0.5, vs)
    return quantile(0.5, [abs(v - median) for v in vs])


def _over_time(calc: RangeCalc, keep_name: bool = False) -> Function:
    def fn(args: list[Value], ctx: CallContext) -> Value:
        return per_series(matrix_arg(args, 0), ctx, calc, keep_name)

    return fn


def quantile_over_time(args: list[Value], ctx: CallContext) -> Value:
    """The q-quantile of each series' samples in the window."""
    q = scalar_arg(args, 0)
    return per_series(matrix_arg(args, 1), ctx, lambda _ts, vs: quantile(q, vs))


def absent_over_time(args: list[Value], ctx: CallContext) -> Value:
    """1 with labels from the selector's equality matchers if no series has samples."""
    if any(s.vs for s in matrix_arg(args, 0).series):
        return []
    expr = ctx.arg_exprs[0] if ctx.arg_exprs else None
    return [Sample(absent_labels(expr), 1.0, ctx.t_ms)]


def double_exponential_smoothing(args: list[Value], ctx: CallContext) -> Value:
    """Holt's linear smoothing with smoothing factor sf and trend factor tf."""
    sf = scalar_arg(args, 1)
    tf = scalar_arg(args, 2)
    if not 0 < sf < 1:
        raise PromQLError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not 0 < tf < 1:
        raise PromQLError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")

    def calc(_ts: Sequence[int], vs: Sequence[float]) -> float | None:
        if len(vs) < 2:
            return None
        s0, s1 = 0.0, vs[0]
        b = vs[1] - vs[0]
        for i in range(1, len(vs)):
            x = sf * vs[i]
            if i - 1 != 0:
                b = tf * (s1 - s0) + (1 - tf) * b
            y = (1 - sf) * (s1 + b)
            s0, s1 = s1, x + y
        return s1

    return per_series(matrix_arg(args, 0), ctx, calc)


RANGE_FUNCTIONS: dict[str, Function] = {
    "rate": rate,
    "increase": increase,
    "delta": delta,
    "irate": irate,
    "idelta": idelta,
    "deriv": deriv,
    "predict_linear": predict_linear,
    "resets": resets,
    "changes": changes,
    "avg_over_time": _over_time(_avg),
    "sum_over_time": _over_time(lambda _ts, vs: kahan_sum(vs)),
    "count_over_time": _over_time(lambda _ts, vs: float(len(vs))),
    "min_over_time": _over_time(_min),
    "max_over_time": _over_time(_max),
    "stddev_over_time": _over_time(lambda _ts, vs: go_sqrt(_variance(vs))),
    "stdvar_over_time": _over_time(lambda _ts, vs: _variance(vs)),
    # last_over_time acts like an offset, so it keeps the metric name.
    "last_over_time": _over_time(lambda _ts, vs: vs[-1], keep_name=True),
    "present_over_time": _over_time(lambda _ts, _vs: 1.0),
    "quantile_over_time": quantile_over_time,
    "absent_over_time": absent_over_time,
    # Experimental in Prometheus 3.5 (behind --enable-feature=promql-experimental-functions).
    "mad_over_time": _over_time(_mad),
    "ts_of_max_over_time": _ts_of("max"),
    "ts_of_min_over_time": _ts_of("min"),
    "ts_of_last_over_time": _over_time(lambda ts, _vs: ts[-1] / 1000),
    "double_exponential_smoothing": double_exponential_smoothing,
}
