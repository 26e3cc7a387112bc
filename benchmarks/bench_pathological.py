"""Benchmark of the parse stage on pathological bodies: the bounds issue 8 states.

Run: .venv/bin/python benchmarks/bench_pathological.py [--repeat R]
Prints, for a 10 MB label value (plain, escaped, OpenMetrics), the parse time (bound: under
2 s) and the peak extra memory as a multiple of the body (bound: under 5x, which
tests/test_faults_exposition.py asserts); then, for a million tiny series and for deeply
repeated escapes, the time at 1x, 2x and 4x the size and the ratio to 1x (linear: about 2
and 4). Times are the best of R runs.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.exposition import parse_exposition

TEXT = "text/plain; version=0.0.4"
OM = "application/openmetrics-text; version=1.0.0"
BIG = 10 * 1024 * 1024


def best_time(repeat: int, run: Callable[[], object]) -> float:
    """The shortest wall time of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def peak_ratio(body: bytes, ctype: str) -> float:
    """Peak memory allocated while parsing, as a multiple of the body's size."""
    tracemalloc.start()
    try:
        parse_exposition(body, ctype)
        return tracemalloc.get_traced_memory()[1] / len(body)
    finally:
        tracemalloc.stop()


def tiny_series(n: int) -> bytes:
    """n one-sample families with no labels: the most lines per byte."""
    return b"".join(b"m%d %d\n" % (i, i) for i in range(n))


def repeated_escapes(n: int) -> bytes:
    """One label value of n escaped backslash, quote and newline triples."""
    return b'm{l="' + b'\\\\\\"\\n' * n + b'"} 1\n'


def main(argv: list[str] | None = None) -> int:
    """Build each body, time and measure it, print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    worst = 0.0
    print("10 MB label value            time (bound 2 s)   peak memory (bound 5x)")
    for name, body, ctype in [
        ("plain, text", b'm{l="' + b"a" * BIG + b'"} 1\n', TEXT),
        ("plain, OpenMetrics", b'm{l="' + b"a" * BIG + b'"} 1\n# EOF\n', OM),
        ("escaped backslashes, text", b'm{l="' + b"\\\\" * (BIG // 2) + b'"} 1\n', TEXT),
        ("escaped newlines, OpenMetrics", b'm{l="' + b"\\n" * (BIG // 2) + b'"} 1\n# EOF\n',
         OM),
        ("HELP of escapes, text", b"# HELP m " + b"\\n" * (BIG // 2) + b"\nm 1\n", TEXT),
    ]:
        seconds = best_time(a.repeat, lambda b=body, c=ctype: parse_exposition(b, c))
        worst = max(worst, seconds)
        print(f"  {name:<29} {seconds:8.3f} s         {peak_ratio(body, ctype):5.2f}x")
    for title, make, base in [("tiny series (m123 123)", tiny_series, 250_000),
                              ("repeated escapes in one value", repeated_escapes, 700_000)]:
        print(f"{title}: size, time, ratio to 1x (linear: 1, 2, 4)")
        first = 0.0
        for k in (1, 2, 4):
            body = make(base * k)
            seconds = best_time(a.repeat, lambda b=body: parse_exposition(b, TEXT))
            first = first or seconds
            print(f"  {k}x {base * k:>9} units {len(body) / 1e6:6.1f} MB {seconds:8.3f} s "
                  f"{seconds / first:5.2f}")
    return 0 if worst < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
