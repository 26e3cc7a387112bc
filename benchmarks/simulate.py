"""Ten minutes of simulated scrapes through the real daemon's stages, in one process.

The daemon is built from its config (not started): a fake clock advances one scrape interval
per cycle, and each cycle runs what its scheduled jobs would run: scrape the loopback target
over HTTP, parse, store, evaluate the rule group (with its state write), render /metrics, and
housekeeping once a simulated minute. No real waiting, so memory reflects 10 minutes of
samples. Run as a script it prints one JSON line; run_all.py starts one process per job so
each resident-memory figure starts from a clean interpreter.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.exposition import generate_latest

from benchmarks.cycle import sidecar_config
from benchmarks.generate import generate
from benchmarks.procs import Target, rss_bytes
from benchmarks.rulesets import rule_set
from exporter.daemon import Daemon

SIMULATED_S = 600
INTERVAL_S = 15
START_S = 1_800_000_000.0


@dataclass(frozen=True)
class SimFigures:
    """Per-stage CPU per cycle (mean over the measured cycles) and memory at the end."""

    scrape_cpu_s: float  # fetch over loopback, parse, store
    evaluate_cpu_s: float  # the rule group, including its state write
    render_cpu_s: float  # /metrics
    rss_bytes: int
    stored_samples: int
    bytes_per_sample: float  # sample buffers (timestamps and values) per stored sample
    series: int


class _Clock:
    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now


def simulate(target_url: str, series: int, n_rules: int, *, filtered: bool,
             seconds: int = SIMULATED_S) -> SimFigures:
    """Drive the daemon's stages for `seconds` of simulated time at a 15 s interval."""
    rules = rule_set(generate(series, utf8_names=False), n_rules)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        path = sidecar_config(Path(tmp), "127.0.0.1:0", target_url, rules, filtered=filtered,
                              interval_s=INTERVAL_S)
        daemon = Daemon(str(path), clock=clock)
        # The daemon's scheduled jobs, called in order on simulated time (private on purpose:
        # the benchmark measures exactly what the scheduler would run).
        daemon.scrapes.apply(list(daemon._loaded.config.scrape_jobs))
        scraper = daemon.scrapes.scrapers()[0]
        evaluators = list(daemon._loaded.evaluators.values())
        spent = [0.0, 0.0, 0.0]
        cycles = seconds // INTERVAL_S + 1
        for i in range(cycles):
            clock.now = START_S + i * INTERVAL_S
            t0 = time.process_time()
            daemon._run_scrape(scraper, "scrape")
            t1 = time.process_time()
            for evaluator in evaluators:
                daemon._run_group(evaluator, "rules", START_S, INTERVAL_S)
            t2 = time.process_time()
            generate_latest(daemon.metrics.registry)
            t3 = time.process_time()
            if i % (60 // INTERVAL_S) == 0:
                daemon._housekeeping()
            if i == 0:  # the first cycle creates every series: not a steady-state cost
                continue
            for k, dt in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                spent[k] += dt / (cycles - 1)
        rss = rss_bytes_self()
        samples = daemon.store.sample_count()
        figures = SimFigures(spent[0], spent[1], spent[2], rss, samples,
                             buffer_bytes(daemon) / max(1, samples), len(daemon.store))
        daemon.scrapes.close()
        daemon.state.close()
    return figures


def rss_bytes_self() -> int:
    """This process's resident set size."""
    return rss_bytes(os.getpid())


def buffer_bytes(daemon: Daemon) -> int:
    """Bytes the stored series' sample arrays take, over-allocation included."""
    return sum(sys.getsizeof(s.ts) + sys.getsizeof(s.vs) for s in daemon.store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, required=True)
    parser.add_argument("--rules", type=int, required=True)
    parser.add_argument("--unfiltered", action="store_true")
    parser.add_argument("--seconds", type=int, default=SIMULATED_S)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    target = Target(args.series)
    try:
        figures = simulate(target.url, args.series, args.rules, filtered=not args.unfiltered,
                           seconds=args.seconds)
    finally:
        target.stop()
    print(json.dumps(asdict(figures)))


if __name__ == "__main__":
    main()
