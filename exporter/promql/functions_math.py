"""Instant-vector PromQL functions on values: math, trigonometry, clamping, time and dates."""

from __future__ import annotations

import math
from collections.abc import Callable

from exporter.labels import drop_metric_name
from exporter.promql.functions_common import (
    Function,
    check_unique,
    go_sqrt,
    map_floats,
    scalar_arg,
    vector_arg,
)
from exporter.promql.gofloat import go_div
from exporter.promql.values import CallContext, Sample, Scalar, Value, Vector


def _go_math(
    fn: Callable[[float], float], domain: Callable[[float], float]
) -> Callable[[float], float]:
    """Wrap a math function to return Go's IEEE results where Python raises."""

    def wrapped(x: float) -> float:
        try:
            return fn(x)
        except ValueError:
            return domain(x)
        except OverflowError:
            return math.inf

    return wrapped


def _nan(_x: float) -> float:
    return math.nan


def _log_domain(x: float) -> float:
    return -math.inf if x == 0 else math.nan


def _atanh_domain(x: float) -> float:
    return math.copysign(math.inf, x) if abs(x) == 1 else math.nan


def _sinh(x: float) -> float:
    try:
        return math.sinh(x)
    except OverflowError:
        return math.copysign(math.inf, x)


def _sgn(v: float) -> float:
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v  # Keeps NaN and the sign of zero.


def _simple(fn: Callable[[float], float]) -> Function:
    def call(args: list[Value], ctx: CallContext) -> Value:
        return map_floats(vector_arg(args, 0), ctx, fn)

    return call


SIMPLE: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": lambda v: float(math.ceil(v)) if math.isfinite(v) else v,
    "floor": lambda v: float(math.floor(v)) if math.isfinite(v) else v,
    "exp": _go_math(math.exp, _nan),
    "sqrt": go_sqrt,
    "ln": _go_math(math.log, _log_domain),
    "log2": _go_math(math.log2, _log_domain),
    "log10": _go_math(math.log10, _log_domain),
    "sgn": _sgn,
    "sin": _go_math(math.sin, _nan),
    "cos": _go_math(math.cos, _nan),
    "tan": _go_math(math.tan, _nan),
    "asin": _go_math(math.asin, _nan),
    "acos": _go_math(math.acos, _nan),
    "atan": math.atan,
    "sinh": _sinh,
    "cosh": _go_math(math.cosh, _nan),
    "tanh": math.tanh,
    "asinh": math.asinh,
    "acosh": _go_math(math.acosh, _nan),
    "atanh": _go_math(math.atanh, _atanh_domain),
    "deg": lambda v: v * 180 / math.pi,
    "rad": lambda v: v * math.pi / 180,
}


def _clamp(vec: Vector, ctx: CallContext, low: float, high: float) -> Vector:
    if high < low:
        return []
    return map_floats(vec, ctx, lambda v: _go_max(low, _go_min(high, v)))


def _go_max(a: float, b: float) -> float:
    # math.Max: +Inf wins even over NaN, then NaN wins, and +0 beats -0.
    if a == math.inf or b == math.inf:
        return math.inf
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return a if math.copysign(1, a) > 0 else b
    return a if a > b else b


def _go_min(a: float, b: float) -> float:
    # math.Min: -Inf wins even over NaN, then NaN wins, and -0 beats +0.
    if a == -math.inf or b == -math.inf:
        return -math.inf
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if a == b == 0:
        return a if math.copysign(1, a) < 0 else b
    return a if a < b else b


def clamp(args: list[Value], ctx: CallContext) -> Value:
    """Values limited to [min, max]; nothing if max < min."""
    return _clamp(vector_arg(args, 0), ctx, scalar_arg(args, 1), scalar_arg(args, 2))


def clamp_min(args: list[Value], ctx: CallContext) -> Value:
    """Values raised to at least min."""
    return _clamp(vector_arg(args, 0), ctx, scalar_arg(args, 1), math.inf)


def clamp_max(args: list[Value], ctx: CallContext) -> Value:
    """Values lowered to at most max."""
    return _clamp(vector_arg(args, 0), ctx, -math.inf, scalar_arg(args, 1))


def round_(args: list[Value], ctx: CallContext) -> Value:
    """Values rounded to the nearest multiple of to_nearest (default 1), ties up."""
    to_nearest = scalar_arg(args, 1) if len(args) > 1 else 1.0
    # Multiplying by the inverse loses less precision than dividing, as upstream notes.
    inverse = go_div(1.0, to_nearest)

    def fn(v: float) -> float:
        scaled = v * inverse + 0.5
        floored = math.floor(scaled) if math.isfinite(scaled) else scaled
        return go_div(floored, inverse)

    return map_floats(vector_arg(args, 0), ctx, fn)




def time_(_args: list[Value], ctx: CallContext) -> Value:
    """The evaluation time in seconds."""
    return Scalar(ctx.t_ms / 1000)


def pi(_args: list[Value], _ctx: CallContext) -> Value:
    """The constant π."""
    return Scalar(math.pi)


def timestamp(args: list[Value], ctx: CallContext) -> Value:
    """Each sample's own timestamp in seconds."""
    out = [Sample(drop_metric_name(s.labels), s.t_ms / 1000, ctx.t_ms) for s in vector_arg(args, 0)]
    return check_unique(out)


def vector(args: list[Value], ctx: CallContext) -> Value:
    """A scalar as a one-element vector without labels."""
    return [Sample((), scalar_arg(args, 0), ctx.t_ms)]


def scalar(args: list[Value], _ctx: CallContext) -> Value:
    """The single sample's value, or NaN unless the vector has exactly one element."""
    vec = vector_arg(args, 0)
    return Scalar(vec[0].value if len(vec) == 1 else math.nan)


def _sorted(vec: Vector, descending: bool) -> Vector:
    # Go's insertion sort (used for up to 12 elements) is stable for numbers but moves each
    # NaN past the NaNs before it, so NaNs end last in reverse input order.
    numbers = [s for s in vec if not math.isnan(s.value)]
    nans = [s for s in vec if math.isnan(s.value)]
    numbers.sort(key=lambda s: s.value, reverse=descending)
    if descending:
        # reverse=True keeps ties in input order, as Go does.
        pass
    return numbers + nans[::-1]


def sort(args: list[Value], _ctx: CallContext) -> Value:
    """Samples by ascending value, NaN last."""
    return _sorted(vector_arg(args, 0), False)


def sort_desc(args: list[Value], _ctx: CallContext) -> Value:
    """Samples by descending value, NaN last."""
    return _sorted(vector_arg(args, 0), True)


# -- dates ---------------------------------------------------------------------------

_MIN_INT64 = -(2**63)


# Go's time package counts seconds from an "absolute" epoch in a uint64, so the extreme int64
# seconds (such as the MinInt64 that Inf and NaN convert to) wrap around modulo 2**64.
_GO_UNIX_TO_ABSOLUTE = 62_135_596_800 + 9_223_371_966_579_724_800


def _civil(seconds: int) -> tuple[int, int, int, int, int, int]:
    """(year, month, day, hour, minute, weekday) of a Unix time as Go computes it for any int64."""
    seconds = (seconds + _GO_UNIX_TO_ABSOLUTE) % 2**64 - _GO_UNIX_TO_ABSOLUTE
    days, rest = divmod(seconds, 86_400)
    weekday = (days + 4) % 7  # 1970-01-01 was a Thursday.
    # Howard Hinnant's days-to-civil algorithm; Python ints never overflow.
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day, rest // 3600, (rest % 3600) // 60, weekday


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    return 29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]


def _day_of_year(year: int, month: int, day: int) -> int:
    return sum(_days_in_month(year, m) for m in range(1, month)) + day


def _to_int64(v: float) -> int:
    # Go's float-to-int64 conversion truncates; out of range (and NaN) gives MinInt64 on amd64.
    if math.isnan(v) or not -(2.0**63) <= v < 2.0**63:
        return _MIN_INT64
    return int(v)


_DATE_PARTS: dict[str, Callable[[tuple[int, int, int, int, int, int]], int]] = {
    "year": lambda c: c[0],
    "month": lambda c: c[1],
    "day_of_month": lambda c: c[2],
    "hour": lambda c: c[3],
    "minute": lambda c: c[4],
    "day_of_week": lambda c: c[5],
    "day_of_year": lambda c: _day_of_year(c[0], c[1], c[2]),
    "days_in_month": lambda c: _days_in_month(c[0], c[1]),
}


def _date_function(part: Callable[[tuple[int, int, int, int, int, int]], int]) -> Function:
    def call(args: list[Value], ctx: CallContext) -> Value:
        if not args:
            return [Sample((), float(part(_civil(ctx.t_ms // 1000))), ctx.t_ms)]
        return map_floats(vector_arg(args, 0), ctx, lambda v: float(part(_civil(_to_int64(v)))))

    return call


MATH_FUNCTIONS: dict[str, Function] = {
    **{name: _simple(fn) for name, fn in SIMPLE.items()},
    **{name: _date_function(part) for name, part in _DATE_PARTS.items()},
    "clamp": clamp,
    "clamp_min": clamp_min,
    "clamp_max": clamp_max,
    "round": round_,
    "time": time_,
    "pi": pi,
    "timestamp": timestamp,
    "vector": vector,
    "scalar": scalar,
    "sort": sort,
    "sort_desc": sort_desc,
}
