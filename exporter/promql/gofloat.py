"""Go's float semantics that PromQL inherits: division, modulo, power and compensated sums.

Python raises where Go returns Inf or NaN, so every operator and function goes through these.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable

_INF = math.inf
_NAN = math.nan


def go_div(a: float, b: float) -> float:
    """IEEE division as Go does it: x/0 is ±Inf or NaN, never an exception."""
    if b == 0:
        if a != a or a == 0:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)
    return a / b


def go_mod(a: float, b: float) -> float:
    """Go's math.Mod: the remainder takes the dividend's sign; NaN where undefined."""
    if b == 0 or math.isinf(a) or a != a or b != b:
        return _NAN
    if math.isinf(b):
        return a
    return math.fmod(a, b)


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and abs(y) < 2**53 and int(y) % 2 == 1


def go_pow(x: float, y: float) -> float:
    """Go's math.Pow special cases on top of C's pow (which raises where Go returns Inf/NaN)."""
    try:
        return math.pow(x, y)
    except OverflowError:
        negative = x < 0 and _is_odd_int(y)
        return -_INF if negative else _INF
    except ValueError:
        if x == 0:
            # Pow(±0, y<0): ±Inf for odd integer y, else +Inf.
            if _is_odd_int(y):
                return math.copysign(_INF, x)
            return _INF
        return _NAN


def kahan_sum_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Neumaier-compensated summation, as Prometheus's kahanSumInc."""
    t = total + inc
    if math.isinf(t):
        c = 0.0
    elif abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def kahan_sum(values: Iterable[float]) -> float:
    """The compensated sum, as sum_over_time computes it."""
    total = c = 0.0
    for v in values:
        total, c = kahan_sum_inc(v, total, c)
    if math.isinf(total):
        return total
    return total + c


_MIN_NORMAL = 2.2250738585072014e-308  # the smallest normal float64


def almost_equal(a: float, b: float, epsilon: float) -> bool:
    """Prometheus's util/almost.Equal: relative difference below epsilon; NaN equals NaN."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, sys.float_info.max) < epsilon
