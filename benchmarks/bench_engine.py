"""Benchmark: one round of a realistic 20-rule recording set over 10k and 100k stored series."""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.labels import make_labels
from exporter.promql.engine import evaluate_instant
from exporter.promql.parse import parse_expr
from exporter.store import SeriesStore

SCRAPE_INTERVAL_MS = 15_000
HISTORY_MS = 10 * 60 * 1000
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
METHODS = ("GET", "POST", "PUT", "DELETE")
CODES = ("200", "201", "204", "301", "400", "404", "429", "500", "502", "503")

# The kinds of rule a service's recording set holds: rates, sums by label, ratio joins,
# histogram quantiles, with a few aggregations on top of recorded series.
RULES: list[tuple[str, str]] = [
    ("job:http_requests:rate5m", "sum by (job) (rate(http_requests_total[5m]))"),
    ("job_code:http_requests:rate5m", "sum by (job, code) (rate(http_requests_total[5m]))"),
    ("job_route:http_requests:rate5m", "sum by (job, route) (rate(http_requests_total[5m]))"),
    ("job:http_errors:rate5m", 'sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))'),
    ("job:http_error_ratio:rate5m", "job:http_errors:rate5m / job:http_requests:rate5m"),
    (
        "job_route:http_error_ratio:rate5m",
        'sum by (job, route) (rate(http_requests_total{code=~"5.."}[5m]))'
        " / sum by (job, route) (rate(http_requests_total[5m]))",
    ),
    ("instance:http_requests:rate1m", "sum by (instance) (rate(http_requests_total[1m]))"),
    ("job:http_requests:increase10m", "sum by (job) (increase(http_requests_total[10m]))"),
    (
        "job:http_latency_seconds:p99",
        "histogram_quantile(0.99,"
        " sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "job:http_latency_seconds:p50",
        "histogram_quantile(0.5,"
        " sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "job_route:http_latency_seconds:p95",
        "histogram_quantile(0.95, sum by (job, route, le)"
        " (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "job:http_latency_seconds:mean5m",
        "sum by (job) (rate(http_request_duration_seconds_sum[5m]))"
        " / sum by (job) (rate(http_request_duration_seconds_count[5m]))",
    ),
    (
        "job:http_fast_requests:ratio5m",
        'sum by (job) (rate(http_request_duration_seconds_bucket{le="0.25"}[5m]))'
        " / sum by (job) (rate(http_request_duration_seconds_count[5m]))",
    ),
    ("job:up:avg", "avg by (job) (up)"),
    ("job:inflight:max", "max by (job) (http_inflight_requests)"),
    ("job:inflight:avg_over_time5m", "avg by (job) (avg_over_time(http_inflight_requests[5m]))"),
    (
        "instance_route:http_requests:rate5m_joined",
        "sum by (instance, route) (rate(http_requests_total[5m]))"
        " * on (instance) group_left (version) build_info",
    ),
    ("job:http_requests:top5_routes", "topk(5, job_route:http_requests:rate5m)"),
    ("job:http_requests:count_series", "count by (job) (http_requests_total)"),
    ("job:http_5xx_present", 'sum by (job) (rate(http_requests_total{code=~"5.."}[5m]) > 0)'),
]


def fill_store(store: SeriesStore, series_target: int, seed: int = 42) -> int:
    """Fill a store with about `series_target` series of realistic shape; returns series count."""
    rng = random.Random(seed)
    routes_per_instance = 10
    label_sets: list[tuple[tuple[tuple[str, str], ...], float]] = []
    for i in itertools.count():
        inst = f"10.0.{i // 250}.{i % 250}:8080"
        job = f"svc-{i % 8}"
        label_sets.append((make_labels({"__name__": "up", "job": job, "instance": inst}), 0.0))
        label_sets.append(
            (
                make_labels(
                    {"__name__": "build_info", "job": job, "instance": inst, "version": "1.2.3"}
                ),
                0.0,
            )
        )
        label_sets.append(
            (make_labels({"__name__": "http_inflight_requests", "job": job, "instance": inst}), -1)
        )
        for r in range(routes_per_instance):
            route = f"/api/v1/resource{r}/{{id}}"
            for method in METHODS[: 1 + r % 4]:
                for code in CODES[: 2 + r % 8]:
                    labels = {"job": job, "instance": inst, "route": route, "method": method}
                    label_sets.append(
                        (make_labels({"__name__": "http_requests_total", "code": code, **labels}),
                         rng.uniform(0.1, 20))
                    )
                base = {"job": job, "instance": inst, "route": route, "method": method}
                for le in BUCKETS:
                    label_sets.append(
                        (make_labels({"__name__": "http_request_duration_seconds_bucket",
                                      "le": le, **base}), rng.uniform(0.1, 5))
                    )
                for suffix in ("_sum", "_count"):
                    label_sets.append(
                        (make_labels({"__name__": "http_request_duration_seconds" + suffix,
                                      **base}), rng.uniform(0.1, 5))
                    )
        if len(label_sets) >= series_target:
            break
    label_sets = label_sets[:series_target]
    for t in range(0, HISTORY_MS + 1, SCRAPE_INTERVAL_MS):
        for labels, rate in label_sets:
            if rate < 0:  # a gauge
                value = float(rng.randint(0, 50))
            elif rate == 0.0:
                value = 1.0
            else:
                value = rate * t / 1000.0
            store.append(labels, t, value)
    return len(label_sets)


def bench(series_target: int, rounds: int) -> None:
    gc.collect()
    tracemalloc.start()
    store = SeriesStore()
    n_series = fill_store(store, series_target)
    store_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    samples = store.sample_count()
    exprs = [(name, parse_expr(text)) for name, text in RULES]
    t_eval = HISTORY_MS
    durations = []
    for _ in range(rounds):
        start = time.perf_counter()
        for name, expr in exprs:
            result = evaluate_instant(expr, store, t_eval)
            value = result.value
            if isinstance(value, list):
                for sample in value:
                    labels = dict(sample.labels)
                    labels["__name__"] = name
                    store.append(make_labels(labels), t_eval, sample.value)
        durations.append(time.perf_counter() - start)
    best = min(durations)
    print(
        f"{n_series:>7} series, {samples:>8} samples: {len(RULES)} rules in "
        f"{best * 1000:8.1f} ms per round (best of {rounds}); "
        f"store {store_bytes / samples:5.1f} bytes per sample incl. labels and index"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated series counts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        bench(size, args.rounds)


if __name__ == "__main__":
    main()
