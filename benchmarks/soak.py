"""Soak run (not in `make test`): the daemon scrapes loopback targets that inject random faults.

Run: .venv/bin/python benchmarks/soak.py [--targets 50] [--series 2000] [--interval 5]
     [--duration 600] [--fault-rate 0.05] [--seed 1]
The targets live in a child process (so the daemon's resident memory is this process's);
every response is, at random, a timeout, a 5xx, garbage, a slow but good answer, or a good one.
Prints resident memory and series over time, missed scrapes and evaluations, failures by
reason next to the faults injected, and the errors logged. tests/test_soak_short.py runs a
30-second version of the same thing.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter import conventions as c
from exporter.daemon import HOUSEKEEPING_INTERVAL_S, Daemon

# Each fault kind and the failure reason the daemon must count for it (None: must succeed).
FAULTS: dict[str, str | None] = {
    "timeout": "timeout",
    "http_5xx": "http_status",
    "garbage": "parse_error",
    "slow": None,
}
_KINDS = list(FAULTS)
RULES = """\
groups:
  - name: soak
    rules:
      - record: job:soak_requests:rate1m
        expr: sum by (job) (rate(soak_requests_total[1m]))
      - record: route:soak_requests:rate1m
        expr: sum by (route) (rate(soak_requests_total[1m]))
      - record: soak:targets_up:count
        expr: count(up == 1)
      - alert: SoakTargetDown
        expr: up == 0
        for: 1m
"""


@dataclass(frozen=True)
class SoakSettings:
    """What one soak run does."""

    targets: int = 50
    series: int = 2000
    interval_s: int = 5
    duration_s: float = 600.0
    fault_rate: float = 0.05
    seed: int = 1
    sample_every_s: float = 30.0


@dataclass
class SoakResult:
    """What one soak run measured."""

    settings: SoakSettings
    # (seconds, RSS MB, series, samples held, live Python memory blocks) every sample_every_s
    timeline: list[tuple[float, float, int, int, int]] = field(default_factory=list)
    warm_up_s: float = 0.0  # sample retention plus one housekeeping pass: memory full by then
    scrapes: int = 0
    expected_scrapes: int = 0
    missed_scrapes: int = 0
    evaluations: int = 0
    missed_evaluations: int = 0
    rule_failures: int = 0
    evaluation_mean_s: float = 0.0
    evaluation_max_le_s: float = 0.0  # the smallest duration bucket holding every evaluation
    cpu_seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)  # injected, by kind
    failures: dict[str, int] = field(default_factory=dict)  # counted by the daemon, by reason
    unreported: dict[str, int] = field(default_factory=dict)  # per target: injected - counted
    errors: list[str] = field(default_factory=list)  # ERROR log lines and exceptions

    def warm_rss_mb(self) -> tuple[float, float, float]:
        """RSS after warm-up: at its end, the lowest and the highest sample since."""
        after = [row[1] for row in self.timeline if row[0] >= self.warm_up_s]
        after = after or [self.timeline[-1][1]]
        return after[0], min(after), max(after)


def _body(target: int, series: int, scrape: int) -> bytes:
    # Counters rise by a different step per route, so rates are not all equal.
    lines = ["# HELP soak_requests_total Requests served.", "# TYPE soak_requests_total counter"]
    lines.extend(f'soak_requests_total{{route="r{j:04d}",code="{200 + j % 3}"}} '
                 f"{scrape * (1 + j % 7)}" for j in range(series))
    lines.append(f"soak_target_info{{target=\"t{target}\"}} 1")
    return ("\n".join(lines) + "\n").encode()


def _serve_targets(count: int, series: int, fault_rate: float, timeout_s: float, seed: int,
                   ports: Any, tallies: SynchronizedArray[int], stop: Any) -> None:
    """The child process: `count` HTTP servers on 127.0.0.1; tallies[i * kinds + k] counts
    the faults of kind k served by target i."""
    rng = random.Random(seed)
    lock = threading.Lock()
    servers: list[ThreadingHTTPServer] = []

    def handler_for(index: int) -> type[BaseHTTPRequestHandler]:
        scrape = [0]

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionResetError:
                    # The daemon may drop a kept-alive connection (after a timeout, say) while
                    # this side waits for the next request: the scraper's right, not a fault.
                    self.close_connection = True

            def do_GET(self) -> None:
                with lock:
                    roll = rng.random()
                    kind = _KINDS[rng.randrange(len(_KINDS))] if roll < fault_rate else ""
                    scrape[0] += 1
                    if kind:
                        with tallies.get_lock():
                            tallies[index * len(_KINDS) + _KINDS.index(kind)] += 1
                try:
                    self._answer(kind, scrape[0])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _answer(self, kind: str, n: int) -> None:
                status, body = 200, b""
                if kind == "timeout":
                    stop.wait(timeout_s * 2)  # past the scrape timeout: the daemon gives up
                    self.close_connection = True
                    return
                if kind == "http_5xx":
                    status, body = 503, b"unavailable\n"
                elif kind == "garbage":
                    body = b"<html>\x00 not an exposition {{{\n"
                else:
                    if kind == "slow":
                        stop.wait(timeout_s * 0.3)  # slow but inside the timeout
                    body = _body(index, series, n)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return _Handler

    for i in range(count):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(i))
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
        ports[i] = server.server_address[1]
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()


class _ErrorLog(logging.Handler):
    """Keeps every ERROR record and every record with an exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.lines.append(f"{record.levelname} {record.getMessage()}"[:300])


def _rss_mb() -> float:
    """Resident memory of this process (Linux /proc; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _write_config(folder: Path, ports: list[int], s: SoakSettings) -> Path:
    (folder / "rules.yaml").write_text(RULES)
    timeout_ms = s.interval_s * 1000 // 2
    config = {
        "listen": "127.0.0.1:0",
        "scrape_interval": f"{s.interval_s}s",
        "scrape_timeout": f"{timeout_ms}ms",
        "evaluation_interval": f"{s.interval_s}s",
        "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": [{"name": f"t{i:02d}", "url": f"http://127.0.0.1:{port}/metrics"}
                    for i, port in enumerate(ports)],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _counter_sum(daemon: Daemon, name: str, **labels: str) -> float:
    total = 0.0
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def run_soak(s: SoakSettings, progress: Callable[[str], None] | None = None) -> SoakResult:
    """Start the targets and the daemon, let it run for s.duration_s, stop, and measure."""
    ctx = mp.get_context("spawn")  # a clean child: no copy of this process's threads
    ports = ctx.Array("i", s.targets, lock=False)
    tallies = ctx.Array("i", s.targets * len(_KINDS))
    stop = ctx.Event()
    timeout_s = s.interval_s / 2
    child = ctx.Process(target=_serve_targets, daemon=True,
                        args=(s.targets, s.series, s.fault_rate, timeout_s, s.seed, ports,
                              tallies, stop))
    child.start()
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    result = SoakResult(s)
    try:
        deadline = time.monotonic() + 30
        while not all(ports[:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        with tempfile.TemporaryDirectory() as tmp:
            daemon = Daemon(str(_write_config(Path(tmp), list(ports[:]), s)))
            result.warm_up_s = (daemon._loaded.retention_ms / 1000
                                + HOUSEKEEPING_INTERVAL_S)
            cpu0 = time.process_time()
            start = time.monotonic()
            daemon.start()
            try:
                next_sample = 0.0
                while (elapsed := time.monotonic() - start) < s.duration_s:
                    if elapsed >= next_sample:
                        result.timeline.append((elapsed, _rss_mb(), len(daemon.store),
                                                daemon.store.sample_count(),
                                                sys.getallocatedblocks()))
                        if progress:
                            progress(_timeline_row(*result.timeline[-1]))
                        next_sample += s.sample_every_s
                    time.sleep(min(0.5, max(0.01, next_sample - elapsed)))
            finally:
                daemon.stop()
            result.cpu_seconds = time.process_time() - cpu0
            result.timeline.append((time.monotonic() - start, _rss_mb(), len(daemon.store),
                                    daemon.store.sample_count(), sys.getallocatedblocks()))
            _collect(daemon, s, result, list(ports[:]), list(tallies[:]))
    finally:
        logging.getLogger().removeHandler(errors)
        stop.set()
        child.join(10)
    result.errors = errors.lines
    return result


def _collect(daemon: Daemon, s: SoakSettings, result: SoakResult, ports: list[int],
             tallies: list[int]) -> None:
    m = daemon.metrics
    # Target i of the child listens on ports[i]; the daemon names it job/127.0.0.1:port.
    index = {port: i for i, port in enumerate(ports)}
    names = {index[int(sc.target.address.rpartition(":")[2])]: sc.name
             for sc in daemon.scrapes.scrapers()}
    result.scrapes = int(_counter_sum(daemon, c.SCRAPES))
    # One at once, then one on each target's grid point from one interval on: about this many.
    result.expected_scrapes = int(s.targets * (s.duration_s // s.interval_s))
    result.missed_scrapes = int(_counter_sum(daemon, c.SCRAPE_ITERATIONS_MISSED))
    result.evaluations = int(_counter_sum(daemon, c.RULE_GROUP_ITERATIONS))
    result.missed_evaluations = int(
        _counter_sum(daemon, c.RULE_GROUP_ITERATIONS_MISSED))
    result.rule_failures = int(_counter_sum(daemon, c.RULE_EVALUATION_FAILURES))
    count = _counter_sum(daemon, c.RULE_GROUP_DURATION + "_count")
    if count:
        result.evaluation_mean_s = _counter_sum(daemon, c.RULE_GROUP_DURATION + "_sum") / count
        result.evaluation_max_le_s = min(
            float(sample.labels["le"])
            for family in m.registry.collect() for sample in family.samples
            if sample.name == c.RULE_GROUP_DURATION + "_bucket" and sample.value == count)
    for k, kind in enumerate(_KINDS):
        result.faults[kind] = sum(tallies[i * len(_KINDS) + k] for i in range(s.targets))
    for reason in c.SCRAPE_FAILURE_REASONS:
        counted = int(_counter_sum(daemon, c.SCRAPE_FAILURES, reason=reason))
        if counted:
            result.failures[reason] = counted
    for i, name in sorted(names.items()):
        for k, kind in enumerate(_KINDS):
            expected = FAULTS[kind]
            if expected is None:
                continue
            counted = m.scrape_failures.labels(name, expected)._value.get()
            gap = tallies[i * len(_KINDS) + k] - int(counted)
            if gap:
                result.unreported[f"{name}:{kind}"] = gap


def _timeline_row(t: float, rss: float, series: int, samples: int, blocks: int) -> str:
    return (f"  t={t:6.0f}s  rss={rss:7.1f} MB  series={series}  samples={samples}  "
            f"python_blocks={blocks}")


def format_report(r: SoakResult) -> str:
    """The figures as the README's Reliability section quotes them."""
    s = r.settings
    warm, low, high = r.warm_rss_mb()
    lines = [
        f"soak: {s.targets} targets x {s.series} series every {s.interval_s}s for "
        f"{s.duration_s:.0f}s, fault rate {s.fault_rate:.0%}",
        "resident memory, series and samples held over time:",
        *(_timeline_row(*row) for row in r.timeline),
        f"after warm-up ({r.warm_up_s:.0f}s: retention + housekeeping) rss {warm:.1f} MB, "
        f"then between {low:.1f} and {high:.1f} MB, at end {r.timeline[-1][1]:.1f} MB "
        f"({(r.timeline[-1][1] - warm) / warm:+.1%})",
        f"cpu {r.cpu_seconds:.0f}s over {s.duration_s:.0f}s "
        f"({r.cpu_seconds / s.duration_s:.0%} of one core)",
        f"scrapes {r.scrapes} of ~{r.expected_scrapes} scheduled, missed {r.missed_scrapes}",
        f"evaluations {r.evaluations}, missed {r.missed_evaluations}, "
        f"rule failures {r.rule_failures}; evaluation time mean {r.evaluation_mean_s:.2f}s, "
        f"max at most {r.evaluation_max_le_s:g}s (interval {s.interval_s}s)",
        f"faults injected {r.faults}",
        f"failures counted {r.failures}",
        f"faults not reported {r.unreported or 'none'}",
        f"errors logged {len(r.errors)}",
        *(f"  {line}" for line in r.errors[:20]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print the report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=50)
    p.add_argument("--series", type=int, default=2000)
    p.add_argument("--interval", type=int, default=5, help="scrape/evaluation interval, s")
    p.add_argument("--duration", type=float, default=600.0, help="seconds")
    p.add_argument("--fault-rate", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample-every", type=float, default=30.0, help="seconds between RSS samples")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(message)s")
    settings = SoakSettings(a.targets, a.series, a.interval, a.duration, a.fault_rate, a.seed,
                            a.sample_every)
    result = run_soak(settings, progress=lambda line: print(line, flush=True))
    print(format_report(result))
    return 1 if result.errors or result.unreported else 0


if __name__ == "__main__":
    sys.exit(main())
