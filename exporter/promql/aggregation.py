"""Aggregation operators over one instant vector, with Prometheus's arithmetic and ordering."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from exporter.labels import METRIC_NAME, Labels
from exporter.promql.functions_common import quantile
from exporter.promql.gofloat import kahan_sum_inc
from exporter.promql.plan import AggregateNode
from exporter.promql.values import PromQLError, Sample, Vector

_MAX_INT64 = float(2**63)
GroupFn = Callable[[Labels], tuple[object, Labels]]




def grouping_fn(node: AggregateNode) -> GroupFn:
    """Group key and output labels of a label set under by(...) / without(...)."""
    names = node.grouping
    if node.without:
        dropped = frozenset((*names, METRIC_NAME))

        def without(labels: Labels) -> tuple[object, Labels]:
            # A list comprehension is markedly faster than tuple(generator) on this hot path.
            kept = tuple([p for p in labels if p[0] not in dropped])
            return kept, kept

        return without
    if not names:
        return lambda labels: ((), ())
    wanted = frozenset(names)

    def by(labels: Labels) -> tuple[object, Labels]:
        kept = tuple([p for p in labels if p[0] in wanted])
        return kept, kept

    return by


class _Group:
    """Running state of one output group (mirrors Prometheus's groupedAggregation)."""

    __slots__ = ("c", "count", "incremental", "labels", "mean", "value", "values")

    def __init__(self, labels: Labels, f: float) -> None:
        self.labels = labels
        self.value = f
        self.mean = f
        self.c = 0.0
        self.count = 1.0
        self.incremental = False
        self.values: list[float] = []


def aggregate(node: AggregateNode, vec: Vector, param: float, group: GroupFn, t_ms: int) -> Vector:
    """sum, avg, count, group, min, max, stddev, stdvar and quantile."""
    op = node.op
    if op == "sum":
        return _sum(vec, group, t_ms)
    groups: dict[object, _Group] = {}
    for s in vec:
        f = s.value
        key, labels = group(s.labels)
        g = groups.get(key)
        if g is None:
            g = groups[key] = _Group(labels, f)
            if op in ("stddev", "stdvar"):
                g.value = math.nan if math.isnan(f) or math.isinf(f) else 0.0
            elif op == "quantile":
                g.values.append(f)
            elif op == "group":
                g.value = 1.0
            continue
        if op == "sum":
            g.value, g.c = kahan_sum_inc(f, g.value, g.c)
        elif op == "avg":
            _avg_step(g, f)
        elif op == "max":
            if g.value < f or g.value != g.value:
                g.value = f
        elif op == "min":
            if g.value > f or g.value != g.value:
                g.value = f
        elif op == "count":
            g.count += 1
        elif op in ("stddev", "stdvar"):
            g.count += 1
            delta = f - g.mean
            g.mean += delta / g.count
            g.value += delta * (f - g.mean)
        elif op == "quantile":
            g.values.append(f)
        elif op != "group":
            raise PromQLError(f"unsupported aggregation {op}")

    out: Vector = []
    for g in groups.values():
        out.append(Sample(g.labels, _final(op, g, param), t_ms))
    return out


def _sum(vec: Vector, group: GroupFn, t_ms: int) -> Vector:
    """sum: the same Neumaier-compensated steps as gofloat.kahan_sum_inc, inlined.

    sum is the most common aggregation in rule files and the function call per sample was
    a third of its cost; tests/test_promql_fastpaths.py checks it against kahan_sum_inc.
    """
    groups: dict[object, list[Any]] = {}  # key -> [labels, running sum, compensation]
    isinf = math.isinf
    for s in vec:
        f = s.value
        key, labels = group(s.labels)
        g = groups.get(key)
        if g is None:
            groups[key] = [labels, f, 0.0]
            continue
        total = g[1]
        t = total + f
        if isinf(t):
            g[2] = 0.0
        elif abs(total) >= abs(f):
            g[2] += (total - t) + f
        else:
            g[2] += (f - t) + total
        g[1] = t
    return [Sample(g[0], g[1] + g[2], t_ms) for g in groups.values()]


def _avg_step(g: _Group, f: float) -> None:
    # Direct mean (Kahan-summed) while the running sum stays finite; after that an
    # incremental mean, exactly as Prometheus 3.5 switches over.
    g.count += 1
    if not g.incremental:
        new_v, new_c = kahan_sum_inc(f, g.value, g.c)
        if not math.isinf(new_v):
            g.value, g.c = new_v, new_c
            return
        g.incremental = True
        g.mean = g.value / (g.count - 1)
        g.c /= g.count - 1
    q = (g.count - 1) / g.count
    g.mean, g.c = kahan_sum_inc(f / g.count, q * g.mean, q * g.c)


def _final(op: str, g: _Group, param: float) -> float:
    if op == "sum":
        return g.value + g.c
    if op == "avg":
        if g.incremental:
            return g.mean + g.c
        return g.value / g.count + g.c / g.count
    if op == "count":
        return g.count
    if op == "stdvar":
        return g.value / g.count
    if op == "stddev":
        return math.sqrt(g.value / g.count)
    if op == "quantile":
        return quantile(param, g.values)
    return g.value


def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if v != v else (1, v)


def count_values(node: AggregateNode, vec: Vector, label: str, t_ms: int) -> Vector:
    """count_values: one output series per distinct value, the value as a label."""
    names = node.grouping
    if node.without:
        dropped = frozenset((*names, METRIC_NAME))
    else:
        wanted = frozenset((*names, label))
    counts: dict[Labels, float] = {}
    for s in vec:
        d = dict(s.labels)
        d[label] = format_go_float(s.value)
        if node.without:
            kept = tuple(sorted((k, v) for k, v in d.items() if k not in dropped))
        else:
            kept = tuple(sorted((k, v) for k, v in d.items() if k in wanted and v))
        counts[kept] = counts.get(kept, 0.0) + 1.0
    return [Sample(labels, n, t_ms) for labels, n in counts.items()]


def format_go_float(f: float) -> str:
    """strconv.FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent."""
    if f != f:
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    text = format(Decimal(repr(f)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def k_param(param: float) -> int:
    """topk/bottomk/limitk's k, with Prometheus's overflow check."""
    if not (-_MAX_INT64 <= param <= _MAX_INT64):
        raise PromQLError(f"Scalar value {format_go_value(param)} overflows int64")
    return int(param)


def format_go_value(f: float) -> str:
    """Go's %v for a float64."""
    if f != f:
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    return repr(f) if f != int(f) or abs(f) >= 1e21 else str(int(f))


def topk(node: AggregateNode, vec: Vector, k: int, group: GroupFn, t_ms: int) -> Vector:
    """topk / bottomk / limitk: whole input samples, k per group, in Prometheus's order."""
    op = node.op
    if k > len(vec):
        k = len(vec)
    if k < 1:
        return []
    heaps: dict[object, list[Sample]] = {}
    # The heap root is the element to evict: the smallest for topk, the largest for bottomk.
    less = _top_less if op == "topk" else _bottom_less
    for s in vec:
        key, _ = group(s.labels)
        h = heaps.get(key)
        if h is None:
            heaps[key] = [s]
            continue
        if op == "limitk":
            if len(h) < k:
                h.append(s)
            continue
        if len(h) < k:
            h.append(s)
            _sift_up(h, len(h) - 1, less)
            continue
        root = h[0].value
        v = s.value
        replace = root < v if op == "topk" else root > v
        if replace or (root != root and v == v):
            h[0] = s
            if k > 1:
                _sift_down(h, 0, less)
    out: Vector = []
    for h in heaps.values():
        if op != "limitk" and len(h) > 1:
            h = _go_sort_reverse(h, less)
        out.extend(Sample(s.labels, s.value, t_ms) for s in h)
    return out


def _top_less(a: float, b: float) -> bool:
    return a != a or a < b


def _bottom_less(a: float, b: float) -> bool:
    return a != a or a > b


def _sift_up(h: list[Sample], j: int, less: Callable[[float, float], bool]) -> None:
    # container/heap.up, so ties land where Go's heap puts them.
    while j > 0:
        i = (j - 1) // 2
        if i == j or not less(h[j].value, h[i].value):
            break
        h[i], h[j] = h[j], h[i]
        j = i


def _sift_down(h: list[Sample], i: int, less: Callable[[float, float], bool]) -> None:
    n = len(h)
    while True:
        j1 = 2 * i + 1
        if j1 >= n:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and less(h[j2].value, h[j1].value):
            j = j2
        if not less(h[j].value, h[i].value):
            break
        h[i], h[j] = h[j], h[i]
        i = j


def _go_sort_reverse(h: list[Sample], less: Callable[[float, float], bool]) -> list[Sample]:
    """sort.Sort(sort.Reverse(heap)): Go insertion-sorts short slices, which is stable."""
    items = list(h)
    if len(items) <= 12:
        for i in range(1, len(items)):
            j = i
            while j > 0 and less(items[j - 1].value, items[j].value):
                items[j], items[j - 1] = items[j - 1], items[j]
                j -= 1
        return items
    reverse_key = (lambda s: _nan_first(s.value)) if less is _top_less else _bottom_key
    return sorted(items, key=reverse_key, reverse=True)


def _bottom_key(s: Sample) -> tuple[int, float]:
    v = s.value
    return (0, 0.0) if v != v else (1, -v)
