"""Differential test: our engine against real promtool 3.5 on the same data and expressions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.labels import Labels
from exporter.promql.engine import evaluate_instant
from exporter.promql.promqltest_parse import parse_duration, parse_series_line
from exporter.promql.values import PromQLError, Scalar
from exporter.store import SeriesStore
from tests.promtool import ReferenceResult, reference_results, require_promtool

CASES = Path(__file__).parent / "promql_reference" / "cases.yaml"
DATASETS: list[dict[str, Any]] = yaml.safe_load(CASES.read_text())["datasets"]

# Known, explained differences from Prometheus. Keep this list honest: an entry that no
# longer differs fails the test, so fixed behaviour is noticed.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def _load(dataset: dict[str, Any]) -> SeriesStore:
    # promtool loads input samples only up to the last evaluation time, which a negative
    # offset can see; load the same.
    until = max(parse_duration(t) for t in dataset["eval_times"])
    store = SeriesStore()
    interval = parse_duration(dataset["interval"])
    for series, values in dataset["series"].items():
        labels, points = parse_series_line(f"{series} {values}", 0)
        for i, point in enumerate(points):
            if isinstance(point, float) and i * interval <= until:
                store.append(labels, i * interval, point)
    return store


def _ours(store: SeriesStore, expr: str, t_ms: int) -> ReferenceResult:
    try:
        value = evaluate_instant(expr, store, t_ms).value
    except PromQLError as err:
        return ReferenceResult(error=str(err))
    if isinstance(value, Scalar):
        return ReferenceResult(samples=(({}, value.value),))
    if not isinstance(value, list):
        return ReferenceResult(error="rule result is not a vector or scalar")
    return ReferenceResult(samples=tuple((dict(s.labels), s.value) for s in value))


def _key(labels: dict[str, str] | Labels) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(labels).items()))


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def _diff(ours: ReferenceResult, ref: ReferenceResult) -> str | None:
    if ref.error is not None or ours.error is not None:
        if (ref.error is None) != (ours.error is None):
            return f"promtool error={ref.error!r}, ours error={ours.error!r}"
        return None
    want = {_key(labels): v for labels, v in ref.samples}
    got = {_key(labels): v for labels, v in ours.samples}
    if want.keys() != got.keys():
        return f"series differ:\n  promtool {sorted(want)}\n  ours     {sorted(got)}"
    bad = [(k, want[k], got[k]) for k in want if not _same(want[k], got[k])]
    if bad:
        return "values differ: " + "; ".join(f"{k}: promtool {w!r} ours {g!r}" for k, w, g in bad)
    return None


@pytest.mark.parametrize("dataset", DATASETS, ids=[d["name"] for d in DATASETS])
def test_engine_matches_promtool(dataset: dict[str, Any]) -> None:
    """Every expression at every evaluation time gives what Prometheus 3.5 gives."""
    promtool = require_promtool()
    queries = [(expr, t) for expr in dataset["exprs"] for t in dataset["eval_times"]]
    reference = reference_results(promtool, dataset["interval"], dataset["series"], queries)
    store = _load(dataset)
    failures: list[str] = []
    stale_known: list[tuple[str, str]] = []
    for expr, t in queries:
        diff = _diff(_ours(store, expr, parse_duration(t)), reference[(expr, t)])
        known = (expr, t) in KNOWN_DIFFERENCES
        if diff and not known:
            failures.append(f"{expr} @ {t}: {diff}")
        if known and not diff:
            stale_known.append((expr, t))
    print(f"{dataset['name']}: {len(queries) - len(failures)}/{len(queries)} agree with promtool")
    assert not stale_known, f"listed as known differences but now agree: {stale_known}"
    assert not failures, "\n".join(failures)
