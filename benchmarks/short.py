"""Machine-independent figures: each a ratio to something measured in the same run.

`make bench` commits them to results.md; tests/test_bench_short.py measures them again in a
few seconds and fails only when one is more than 3x worse, so a gross regression shows on
any machine while absolute times (which depend on the machine and its load) never fail a test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from benchmarks.generate import generate, pick_families
from exporter.exposition import parse_exposition

MARKER = "bench-short"
SHORT_SERIES = 10_000
SHORT_RULES = 100


def calibration_s() -> float:
    """Best of 5 runs of a fixed pure-Python loop: the unit the cycle figures are counted in."""
    def loop() -> int:
        total = 0
        for i in range(300_000):
            total += i * i % 7
        return total

    return best_of(5, loop)[0]


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """The shortest wall time of `repeat` runs and what the last run returned."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def parse_times(series: int, repeat: int = 3) -> tuple[int, float, float, float]:
    """Series parsed, and best seconds for prometheus_client's full parse, ours with all labels
    and ours keeping 5% of the families."""
    from prometheus_client.parser import text_string_to_metric_families

    expo = generate(series)
    data = expo.text.encode()
    keep = pick_families(expo, 0.05)
    client, _ = best_of(repeat, lambda: sum(
        len(f.samples) for f in text_string_to_metric_families(expo.text)))
    ours, _ = best_of(repeat, lambda: len(parse_exposition(data, "text/plain").samples))
    kept, _ = best_of(repeat, lambda: len(
        parse_exposition(data, "text/plain", keep_names=keep).samples))
    return expo.series, client, ours, kept


def engine_round_s(series: int, repeat: int = 3) -> float:
    """Best time of one round of bench_engine's 20 rules over a store of `series` series."""
    from benchmarks.bench_engine import HISTORY_MS, RULES, fill_store
    from exporter.promql.engine import evaluate_instant
    from exporter.store import SeriesStore

    store = SeriesStore()
    fill_store(store, series)

    def round_() -> int:
        return sum(len(evaluate_instant(expr, store, HISTORY_MS).value)  # type: ignore[arg-type]
                   for _, expr in RULES)

    return best_of(repeat, round_)[0]


def format_marker(figures: dict[str, float]) -> str:
    """The results.md line the short test reads back."""
    body = " ".join(f"{k}={v:.4g}" for k, v in sorted(figures.items()))
    return f"<!-- {MARKER}: {body} -->"


def read_marker(text: str) -> dict[str, float]:
    """The figures of the marker line in results.md text (empty if there is none)."""
    found = re.search(rf"<!-- {MARKER}: (.*?) -->", text)
    if not found:
        return {}
    return {k: float(v) for k, v in (item.split("=") for item in found.group(1).split())}


def short_cycle_s() -> float:
    """CPU seconds of one full sidecar cycle (scrape over loopback, parse, store, evaluate,
    render) at SHORT_SERIES series, every series kept, SHORT_RULES rules: 2 simulated minutes."""
    import logging

    from benchmarks.procs import Target
    from benchmarks.simulate import simulate

    logging.disable(logging.WARNING)
    target = Target(SHORT_SERIES)
    try:
        sim = simulate(target.url, SHORT_SERIES, SHORT_RULES, filtered=False, seconds=120)
    finally:
        target.stop()
        logging.disable(logging.NOTSET)
    return sim.scrape_cpu_s + sim.evaluate_cpu_s + sim.render_cpu_s
