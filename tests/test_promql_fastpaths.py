"""The engine's fast paths agree with the plain versions they replace, on random input."""

from __future__ import annotations

import math
import random
import struct

import pytest

from exporter.labels import Labels, drop_metric_name, make_labels
from exporter.promql.aggregation import aggregate, grouping_fn
from exporter.promql.functions_common import without_name
from exporter.promql.gofloat import kahan_sum_inc
from exporter.promql.plan import AggregateNode, NumberNode
from exporter.promql.values import Sample

# Values that stress compensated summation: huge and tiny magnitudes, cancellation, inf, NaN.
VALUES = (1e16, -1e16, 1.0, 0.1, 3e-300, -2.5, math.inf, -math.inf, math.nan, 7.0)


def _random_vector(rng: random.Random, n: int) -> list[Sample]:
    return [Sample(make_labels({"__name__": "m", "job": rng.choice("abc"), "i": str(i)}),
                   rng.choice(VALUES), 0) for i in range(n)]


def _plain_sum(vec: list[Sample], by: tuple[str, ...]) -> dict[Labels, float]:
    """The plain version: one kahan_sum_inc step per sample, in input order, per group."""
    groups: dict[Labels, tuple[float, float]] = {}
    for s in vec:
        key = tuple(p for p in s.labels if p[0] in by)
        if key not in groups:
            groups[key] = (s.value, 0.0)
        else:
            groups[key] = kahan_sum_inc(s.value, *groups[key])
    return {k: total + c for k, (total, c) in groups.items()}


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)  # compares NaN to NaN and -0.0 apart from 0.0


@pytest.mark.parametrize("seed", range(6), ids=[f"seed-{i}" for i in range(6)])
@pytest.mark.parametrize("by", [(), ("job",)], ids=["sum", "sum-by-job"])
def test_sum_fast_path_matches_kahan_steps(seed: int, by: tuple[str, ...]) -> None:
    """sum's inlined loop gives bit-for-bit the values of kahan_sum_inc applied step by step."""
    vec = _random_vector(random.Random(seed), 40)
    node = AggregateNode("sum", NumberNode(0.0), None, by, False)
    got = {s.labels: _bits(s.value) for s in aggregate(node, vec, math.nan, grouping_fn(node), 0)}
    assert got == {k: _bits(v) for k, v in _plain_sum(vec, by).items()}


@pytest.mark.parametrize("pairs", [
    {"__name__": "up", "job": "a"},  # the usual: __name__ sorts first
    {"Zone": "eu", "__name__": "up"},  # an upper-case label sorts before __name__
    {"job": "a"},  # no name at all
    {},
], ids=["name-first", "name-second", "no-name", "empty"])
def test_without_name_matches_drop_metric_name(pairs: dict[str, str]) -> None:
    """The slice fast path drops exactly what drop_metric_name drops."""
    labels = make_labels(pairs)
    assert without_name(labels) == drop_metric_name(labels)
