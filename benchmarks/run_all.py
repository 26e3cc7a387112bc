"""Every benchmark in one run (`make bench`): one table, this project against its peer.

Rows: parse rate against prometheus_client's parser; CPU and wall time per full cycle, resident
memory and startup against a real Prometheus 3 on the same loopback target with the same rules;
memory after 10 simulated minutes; bytes per stored sample; SLO bucket memory per SLO for 30
days; plus the same-run ratios the short test in `make test` checks. Writes benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cycle import CycleFigures, run_prometheus, run_sidecar
from benchmarks.generate import generate
from benchmarks.procs import ROOT, Target
from benchmarks.rulesets import rule_set
from benchmarks.short import (
    SHORT_SERIES,
    calibration_s,
    engine_round_s,
    format_marker,
    parse_times,
    short_cycle_s,
)
from exporter.slo_buckets import BucketRing

RESULTS = ROOT / "benchmarks" / "results.md"
MB = 1024 * 1024
DAY_MS = 86_400_000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Row:
    """One table row: a figure for one job, ours and the peer's (None: no peer figure)."""

    figure: str
    job: str
    ours: float
    peer: float | None
    unit: str
    higher_is_better: bool = False

    def cells(self) -> list[str]:
        ratio = "—" if not self.peer else f"{self.ours / self.peer:.2f}"
        peer = "—" if self.peer is None else _fmt(self.peer, self.unit)
        better = "higher" if self.higher_is_better else "lower"
        return [self.figure, self.job, _fmt(self.ours, self.unit), peer, ratio, better]


def _fmt(value: float, unit: str) -> str:
    if unit == "MB":
        return f"{value / MB:,.1f} MB"
    if unit == "series/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.1f} {unit}"


def parse_rows(sizes: list[int], repeat: int) -> list[Row]:
    """Parse rate (series/s) against prometheus_client, all labels and 5% of families kept."""
    rows = []
    for size in sizes:
        series, client, ours, kept = parse_times(size, repeat)
        job = f"{size:,} series"
        rows.append(Row("parse rate, all labels", job, series / ours, series / client,
                        "series/s", True))
        rows.append(Row("parse rate, 5% of families kept", job, series / kept, series / client,
                        "series/s", True))
    return rows


def interval_for(size: int) -> int:
    """Scrape and evaluation interval (s) for a job: long enough for either side's cycle."""
    return 5 if size >= 100_000 else 2


def cycle_rows(sizes: list[int], rule_counts: list[int], cycles: int,
               prometheus: bool) -> tuple[list[Row], dict[tuple[int, int, bool], int]]:
    """CPU, wall time, resident memory and startup of both daemons, job by job; also the
    Prometheus resident memory of each job, for the simulated-memory rows."""
    rows: list[Row] = []
    peer_rss: dict[tuple[int, int, bool], int] = {}
    for size in sizes:
        target = Target(size)
        try:
            expo = generate(size, utf8_names=False)
            for n_rules in rule_counts:
                rules = rule_set(expo, n_rules)
                for filtered in (True, False):
                    kwargs = {"filtered": filtered, "interval_s": interval_for(size),
                              "cycles": cycles}
                    ours = run_sidecar(target.url, rules, **kwargs)  # type: ignore[arg-type]
                    peer = (run_prometheus(target.url, rules, **kwargs)  # type: ignore[arg-type]
                            if prometheus else None)
                    job = (f"{size:,} series, {n_rules} rules, "
                           f"{'filtered' if filtered else 'all kept'} "
                           f"({ours.kept_series:,} stored)")
                    rows += _cycle_rows(job, ours, peer)
                    if peer is not None:
                        peer_rss[(size, n_rules, filtered)] = peer.rss_bytes
                    print(f"  {job}: {ours} / {peer}", file=sys.stderr)
        finally:
            target.stop()
    return rows, peer_rss


def _cycle_rows(job: str, ours: CycleFigures, peer: CycleFigures | None) -> list[Row]:
    def pick(field: str) -> float | None:
        return None if peer is None else float(getattr(peer, field))

    return [
        Row("CPU per cycle", job, ours.cpu_per_cycle_s, pick("cpu_per_cycle_s"), "s"),
        Row("wall time per cycle", job, ours.wall_per_cycle_s, pick("wall_per_cycle_s"), "s"),
        Row(f"resident memory after {ours.cycles} cycles", job, ours.rss_bytes,
            pick("rss_bytes"), "MB"),
        Row("startup to ready", job, ours.startup_s, pick("startup_s"), "s"),
    ]


def simulated_rows(sizes: list[int], n_rules: int,
                   peer_rss: dict[tuple[int, int, bool], int]) -> list[Row]:
    """Memory after 10 simulated minutes (one fresh process per job) and bytes per sample."""
    rows: list[Row] = []
    for size in sizes:
        for filtered in (True, False):
            args = [sys.executable, str(ROOT / "benchmarks" / "simulate.py"), "--series",
                    str(size), "--rules", str(n_rules)] + ([] if filtered else ["--unfiltered"])
            out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
            sim = json.loads(out.strip().splitlines()[-1])
            job = (f"{size:,} series, {n_rules} rules, {'filtered' if filtered else 'all kept'}"
                   f" ({sim['series']:,} stored)")
            peer = peer_rss.get((size, n_rules, filtered))
            rows.append(Row("resident memory after 10 simulated min (peer: after its cycles)",
                            job, sim["rss_bytes"], peer, "MB"))
            rows.append(Row("sample buffer bytes per stored sample", job,
                            sim["bytes_per_sample"], None, "B"))
            for stage in ("scrape", "evaluate", "render"):
                rows.append(Row(f"CPU per simulated cycle: {stage}", job,
                                sim[f"{stage}_cpu_s"], None, "s"))
    return rows


def engine_rows(sizes: list[int]) -> list[Row]:
    """Evaluation alone: bench_engine's 20 rules, each reading every stored series."""
    return [Row("evaluation, 20 rules reading every series, per round",
                f"{size:,} series (41 samples each)", engine_round_s(size), None, "s")
            for size in sizes if size >= 10_000]


def slo_row() -> Row:
    """Bytes one SLO's good/total buckets take for a 30-day window at one-minute buckets."""
    ring = BucketRing(30 * DAY_MS // MINUTE_MS + 1, MINUTE_MS)
    size = sys.getsizeof(ring.good) + sys.getsizeof(ring.total) + sys.getsizeof(ring)
    return Row("SLO bucket memory per SLO, 30 days", "1-minute buckets", size / 1024, None, "kB")


def machine() -> str:
    """A one-line description of where the figures were measured."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    prom = ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin" / "prometheus"
    version = "absent"
    if prom.exists():
        version = subprocess.run([str(prom), "--version"], capture_output=True,
                                 text=True).stdout.splitlines()[0]
    return (f"{os.cpu_count()} cores, {cpu}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {version}")


def table(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    head = ["figure", "job", "value-exporter", "peer", "ratio (ours/peer)", "better"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rules", default="10,100")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-prometheus", action="store_true")
    parser.add_argument("--output", default=str(RESULTS), help="'-' prints only")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rule_counts = [int(s) for s in args.rules.split(",")]

    rows = parse_rows(sizes, args.repeat)
    cycles, peer_rss = cycle_rows(sizes, rule_counts, args.cycles, not args.no_prometheus)
    simulated = simulated_rows(sizes, max(rule_counts), peer_rss)
    rows += cycles + simulated + engine_rows(sizes) + [slo_row()]

    calibration = calibration_s()
    _, client, ours, kept = parse_times(SHORT_SERIES, args.repeat)
    short = {
        "parse_all": client / ours, "parse_filtered": client / kept,
        "engine_units": engine_round_s(SHORT_SERIES) / calibration,
        "cycle_units": short_cycle_s() / calibration,
    }
    text = table(rows)
    print(text)
    if args.output != "-":
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        Path(args.output).write_text(RESULTS_TEMPLATE.format(
            date=stamp, machine=machine(), table=text, marker=format_marker(short),
            short=", ".join(f"{k} {v:.3g}" for k, v in sorted(short.items()))))
    return 0


RESULTS_TEMPLATE = """# Benchmark results

Written by `make bench` (benchmarks/run_all.py) on {date}.
Machine: {machine}.

The peer is `prometheus_client.parser` for parse rows and a real Prometheus scraping the same
loopback target with the same rules (compiled by `value-exporter compile`) for the others,
measured in the same run. Ratios are ours/peer: below 1 is better for costs, above 1 for rates.
"filtered" means the sidecar keeps only the families its rules read (Prometheus: the same
names in a `metric_relabel_configs` keep); "all kept" stores every scraped series on both
sides. The target serves a fixed-seed exposition (counters, histograms, summaries, gauges,
escaped label values) whose values do not change between scrapes. The sidecar's CPU comes from
/proc, Prometheus's from its own `process_cpu_seconds_total`, each per completed rule-group
iteration over the same wall-clock window; each cycle the harness also reads the derived
series back (sidecar: `/metrics`, Prometheus: `/federate`). Wall time per cycle is mean scrape
duration plus mean rule-group duration plus that read. Startup is process start to `/-/ready`
(the sidecar is ready only after its first scrape and evaluation; Prometheus once its TSDB is
open). Memory after 10 simulated minutes drives the daemon's own scrape, rule-group,
render and housekeeping jobs on a fake clock in a fresh process (no real waiting); its peer
figure is Prometheus's resident memory after its measured cycles. The evaluation rows time
benchmarks/bench_engine.py's 20 rules, each reading every stored series, in-process. Parse rows
and the cycle target include quoted UTF-8 metric and label names (`{{"svc.cache.hits.N",
"cache.tier"="l1"}}`), which both sides accept (Prometheus 3's default utf8 name validation).
The rule sets are still drawn from the legacy-name variant of the exposition (run_all.py,
simulate.py); they read none of the cache families, so every rule reads series the target
serves.

{table}

Same-run ratios the short test (tests/test_bench_short.py) compares against: {short}.
{marker}
"""


if __name__ == "__main__":
    sys.exit(main())
