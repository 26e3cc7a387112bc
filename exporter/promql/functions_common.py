"""Helpers every PromQL function module shares: argument access, name dropping, Kahan sums."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from exporter.labels import METRIC_NAME, Labels, drop_metric_name, make_labels
from exporter.promql.values import (
    CallContext,
    Matrix,
    PromQLError,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
)

Function = Callable[[list[Value], CallContext], Value]
# A range function's per-series body: timestamps and values in, a value (or None) out.
# Range functions read a window's samples without copying them (arrays from the store, lists
# from subqueries); none may modify them.
RangeCalc = Callable[[Sequence[int], Sequence[float]], float | None]

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


def vector_arg(args: list[Value], i: int) -> Vector:
    """Argument i, which the engine evaluated as an instant vector."""
    value = args[i]
    if not isinstance(value, list):
        raise PromQLError(f"expected instant vector argument {i + 1}, got {type(value).__name__}")
    return value


def matrix_arg(args: list[Value], i: int) -> Matrix:
    """Argument i, which the engine evaluated as a range vector."""
    value = args[i]
    if not isinstance(value, Matrix):
        raise PromQLError(f"expected range vector argument {i + 1}, got {type(value).__name__}")
    return value


def scalar_arg(args: list[Value], i: int) -> float:
    """Argument i as a float (a Scalar, or a one-element vector the engine passed along)."""
    value = args[i]
    if isinstance(value, Scalar):
        return value.value
    if isinstance(value, list) and len(value) == 1:
        return value[0].value
    raise PromQLError(f"expected scalar argument {i + 1}, got {type(value).__name__}")


def string_arg(args: list[Value], i: int) -> str:
    """Argument i as a string literal."""
    value = args[i]
    if not isinstance(value, String):
        raise PromQLError(f"expected string argument {i + 1}, got {type(value).__name__}")
    return value.value


def check_unique(out: Vector) -> Vector:
    """Prometheus refuses a result in which two samples share a label set."""
    if len(out) > 1 and len({s.labels for s in out}) != len(out):
        raise PromQLError(DUPLICATE_LABELSET)
    return out


def without_name(labels: Labels) -> Labels:
    """drop_metric_name, with a fast path for the usual case of `__name__` sorting first."""
    if labels and labels[0][0] == METRIC_NAME:
        return labels[1:]  # label sets hold each name once, so the rest has no __name__
    return drop_metric_name(labels)


def map_floats(vec: Vector, ctx: CallContext, fn: Callable[[float], float]) -> Vector:
    """Apply fn to every sample, dropping `__name__` as value-changing functions do."""
    out = [Sample(without_name(s.labels), fn(s.value), ctx.t_ms) for s in vec]
    return check_unique(out)


def per_series(
    matrix: Matrix,
    ctx: CallContext,
    fn: RangeCalc,
    keep_name: bool = False,
) -> Vector:
    """Apply a range function to each series with samples; None means no output for it."""
    out: Vector = []
    for s in matrix.series:
        if not s.vs:
            continue
        result = fn(s.ts, s.vs)
        if result is None:
            continue
        labels: Labels = s.labels if keep_name else without_name(s.labels)
        out.append(Sample(labels, result, ctx.t_ms))
    return check_unique(out)



def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if math.isnan(v) else (1, v)


def quantile(q: float, values: Sequence[float]) -> float:
    """The q-quantile by linear interpolation between the closest ranks (NaNs sort first)."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values, key=_nan_first)
    n = float(len(ordered))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[int(lower)] * (1 - weight) + ordered[int(upper)] * weight


def go_sqrt(x: float) -> float:
    """math.Sqrt: NaN for negative input instead of an exception."""
    return math.nan if x < 0 else math.sqrt(x)


def absent_labels(expr: object) -> Labels:
    """The labels absent() reports: those set by exactly one equality matcher of a selector."""
    import promql_parser

    while isinstance(expr, promql_parser.ParenExpr):
        expr = expr.expr
    if isinstance(expr, promql_parser.MatrixSelector):
        expr = expr.vector_selector
    if not isinstance(expr, promql_parser.VectorSelector):
        return ()
    pairs: dict[str, str] = {}
    seen: set[str] = set()
    for m in expr.matchers.matchers:
        if m.name == METRIC_NAME:
            continue
        # A second matcher on the same name removes the label (upstream's historic rule).
        if m.op == promql_parser.MatchOp.Equal and m.name not in seen:
            pairs[m.name] = m.value
            seen.add(m.name)
        else:
            pairs.pop(m.name, None)
    return make_labels(pairs)
