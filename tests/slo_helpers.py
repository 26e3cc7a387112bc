"""Shared helpers for the SLO tests: SLOs built in Python, series in promqltest notation."""

from __future__ import annotations

import math

from exporter.labels import is_stale
from exporter.promql.engine import evaluate_instant
from exporter.promql.promqltest_series import parse_series_line
from exporter.promql.values import Vector
from exporter.rules.slo_model import (
    DEFAULT_TIERS,
    SLI,
    SLO,
    AlertTier,
    RatioSLI,
    RollingWindow,
    SLOAlerting,
    Window,
)
from exporter.slo import SLOEvaluation, SLOEvaluator
from exporter.store import SeriesStore

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR

TIERS = tuple(
    AlertTier(name, long_ms, short_ms, fraction, severity=severity)
    for name, long_ms, short_ms, fraction, severity in DEFAULT_TIERS
)

RATIO = RatioSLI(total='req_total{job="a"}', errors='req_total{job="a",code="500"}')


def make_slo(sli: SLI = RATIO, *, window: Window | None = None, objective: float = 99.0,
             tiers: tuple[AlertTier, ...] = (), **kw: object) -> SLO:
    """An SLO named `s` of service `svc`; tiers off unless given, to keep the series few."""
    alerting = kw.pop("alerting", SLOAlerting(tiers=tiers))
    return SLO("s", "svc", objective, window or RollingWindow(HOUR), sli,
               alerting=alerting, **kw)  # type: ignore[arg-type]


def load(store: SeriesStore, series: dict[str, str], step_ms: int = MIN) -> None:
    """Append input series written as in promtool (`0+1x10`) at step_ms apart from 0."""
    for text, values in series.items():
        labels, points = parse_series_line(f"{text} {values}", 1)
        for k, point in enumerate(points):
            if isinstance(point, float):
                store.append(labels, k * step_ms, point)


def run(slo: SLO, series: dict[str, str], until_ms: int, *, interval_ms: int = MIN,
        step_ms: int = MIN, start_ms: int = 0,
        store: SeriesStore | None = None) -> tuple[SeriesStore, SLOEvaluator, list[SLOEvaluation]]:
    """Load the series, then evaluate the SLO at every interval from start to until."""
    store = store or SeriesStore()
    load(store, series, step_ms)
    evaluator = SLOEvaluator(slo, store, interval_ms=interval_ms)
    results = [evaluator.evaluate(t) for t in range(start_ms, until_ms + 1, interval_ms)]
    return store, evaluator, results


def query(store: SeriesStore, expr: str, t_ms: int) -> Vector:
    """An instant query's vector."""
    value = evaluate_instant(expr, store, t_ms).value
    assert isinstance(value, list)
    return value


def one(store: SeriesStore, expr: str, t_ms: int) -> float | None:
    """The single value an instant query returns, or None when it returns nothing."""
    vector = query(store, expr, t_ms)
    assert len(vector) <= 1, vector
    return vector[0].value if vector else None


def no_nan(store: SeriesStore) -> bool:
    """True when no SLO series holds a NaN that is not a stale marker."""
    for series in store:
        if not series.labels or not dict(series.labels).get("slo"):
            continue
        for v in series.vs:
            if math.isnan(v) and not is_stale(v):
                return False
    return True
