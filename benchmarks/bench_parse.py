"""Benchmark of the parse stage (scrape -> parse -> store) against prometheus_client's parser.

Run: .venv/bin/python benchmarks/bench_parse.py [--series N] [--repeat R]
Prints series/s for prometheus_client's full parse, our scrape-mode parse, our strict parse and
our filtered parse (keep_names of 5% of the families), each with its ratio to
prometheus_client. Every timing is the best of R runs, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import generate, pick_families
from exporter.exposition import parse_exposition


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """The shortest wall time of `repeat` runs and what the run returned."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    """Generate the exposition, time every parser, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from prometheus_client.parser import text_string_to_metric_families

    expo = generate(args.series)
    data = expo.text.encode()
    keep = pick_families(expo, 0.05)

    def client() -> int:
        return sum(len(f.samples) for f in text_string_to_metric_families(expo.text))

    runs: list[tuple[str, Callable[[], int]]] = [
        ("prometheus_client full parse", client),
        ("scrape mode, all labels", lambda: len(parse_exposition(data, "text/plain").samples)),
        ("strict mode", lambda: len(parse_exposition(data, "text/plain", strict=True).samples)),
        (
            "scrape mode, keep_names 5% of families",
            lambda: len(parse_exposition(data, "text/plain", keep_names=keep).samples),
        ),
    ]
    print(f"exposition: {expo.series} series, {len(expo.families)} families, "
          f"{len(data) / 1e6:.1f} MB; best of {args.repeat}")
    baseline = 0.0
    for label, run in runs:
        seconds, samples = best_of(args.repeat, run)
        rate = expo.series / seconds
        baseline = baseline or rate
        print(f"{label:40s} {seconds:8.3f} s {rate:12,.0f} series/s {rate / baseline:7.1f}x"
              f"  ({samples} samples returned)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
