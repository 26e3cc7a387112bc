"""Full cycles side by side: the real sidecar daemon and a real Prometheus on one target.

Both scrape the same loopback target over HTTP and evaluate the same rules (Prometheus's copy
written by `value-exporter compile`); the harness reads the derived series back every cycle
(the sidecar's /metrics, Prometheus's /federate) and measures CPU per completed rule-group
iteration over the same wall-clock window, resident memory at the end, and startup to ready.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.procs import (
    PROMETHEUS,
    Proc,
    cpu_seconds,
    free_port,
    get,
    metric_sum,
    rss_bytes,
    wait_ready,
)
from benchmarks.rulesets import Rule, rule_file
from exporter.promql.analysis import selected_metric_names


@dataclass(frozen=True)
class CycleFigures:
    """What one system cost for one job."""

    startup_s: float
    cpu_per_cycle_s: float
    wall_per_cycle_s: float
    rss_bytes: int
    cycles: int
    kept_series: int  # what the scrape kept after its filter (Prometheus: metric relabeling)


def _measure(pid: int, cpu_of: str, metrics_url: str, export_url: str, cycles: int,
             interval_s: float) -> tuple[str, str, float, float]:
    """Metrics text before and after `cycles` intervals, CPU seconds spent in between (from
    /proc for the sidecar, from process_cpu_seconds_total for Prometheus), and the mean time
    to read the derived series once per interval."""
    def cpu() -> float:
        if cpu_of == "proc":
            return cpu_seconds(pid)
        return metric_sum(get(metrics_url).decode(), "process_cpu_seconds_total")

    time.sleep(interval_s)  # one cycle of warm-up after ready
    before = get(metrics_url).decode()
    cpu0 = cpu()
    reads: list[float] = []
    deadline = time.monotonic() + cycles * interval_s
    while time.monotonic() < deadline:
        start = time.monotonic()
        get(export_url)
        reads.append(time.monotonic() - start)
        time.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))
    cpu1 = cpu()
    after = get(metrics_url).decode()
    return before, after, cpu1 - cpu0, sum(reads) / len(reads)


def _delta(before: str, after: str, name: str) -> float:
    return metric_sum(after, name) - metric_sum(before, name)


def sidecar_config(folder: Path, listen: str, target_url: str, rules: list[Rule], *,
                   filtered: bool, interval_s: int) -> Path:
    """Write the sidecar's rules.yaml and config.yaml into `folder`; returns the config path."""
    (folder / "rules.yaml").write_text(rule_file(rules, f"{interval_s}s"))
    config = {
        "listen": listen, "scrape_interval": f"{interval_s}s",
        "scrape_timeout": f"{interval_s * 900}ms", "evaluation_interval": f"{interval_s}s",
        "rule_files": [str(folder / "rules.yaml")], "state_dir": str(folder / "state"),
        "targets": [{"name": "bench", "url": target_url}],
        # Unfiltered: every scraped series is stored, as with a Prometheus without `keep`.
        "keep_all_series": not filtered,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_sidecar(target_url: str, rules: list[Rule], *, filtered: bool, interval_s: int,
                cycles: int) -> CycleFigures:
    """The sidecar daemon (`value-exporter run`) on the target, measured."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        sidecar_config(folder, f"127.0.0.1:{port}", target_url, rules, filtered=filtered,
                       interval_s=interval_s)
        binary = Path(sys.executable).with_name("value-exporter")
        started = time.monotonic()
        proc = Proc([str(binary), "run", "--config", str(folder / "config.yaml")],
                    folder / "daemon.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/-/ready", proc.proc)
            startup = time.monotonic() - started
            before, after, cpu, read_s = _measure(proc.pid, "proc", f"{base}/metrics",
                                                  f"{base}/metrics", cycles, interval_s)
            rss = rss_bytes(proc.pid)
            kept = query_value(base, "scrape_samples_post_metric_relabeling")
        finally:
            proc.stop()
    done = _delta(before, after, "value_exporter_rule_group_iterations_total")
    scrape = _ratio(before, after, "value_exporter_scrape_duration_seconds")
    evaluate = _ratio(before, after, "value_exporter_rule_group_duration_seconds")
    return CycleFigures(startup, cpu / max(done, 1), scrape + evaluate + read_s, rss, int(done),
                        int(kept))


def _ratio(before: str, after: str, name: str) -> float:
    count = _delta(before, after, f"{name}_count")
    return _delta(before, after, f"{name}_sum") / count if count else 0.0


def run_prometheus(target_url: str, rules: list[Rule], *, filtered: bool, interval_s: int,
                   cycles: int) -> CycleFigures | None:
    """Prometheus 3 on the same target with the compiled rules; None when it is not installed."""
    if not PROMETHEUS.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "rules.yaml").write_text(rule_file(rules, f"{interval_s}s"))
        binary = Path(sys.executable).with_name("value-exporter")
        subprocess.run([str(binary), "compile", str(folder / "rules.yaml"), "-o",
                        str(folder / "compiled")], check=True, capture_output=True)
        job: dict[str, object] = {
            "job_name": "bench", "metrics_path": urllib.parse.urlsplit(target_url).path,
            "static_configs": [{"targets": [urllib.parse.urlsplit(target_url).netloc]}],
        }
        if filtered:
            names = selected_metric_names([expr for _, expr in rules]) or frozenset()
            regex = "|".join(re.escape(n) for n in sorted(names))
            job["metric_relabel_configs"] = [
                {"source_labels": ["__name__"], "regex": f"({regex})", "action": "keep"}]
        config = {
            "global": {"scrape_interval": f"{interval_s}s", "evaluation_interval": f"{interval_s}s",
                       "scrape_timeout": f"{interval_s * 900}ms"},
            "rule_files": [str(folder / "compiled" / "rules.yaml")],
            "scrape_configs": [job],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        started = time.monotonic()
        proc = Proc([str(PROMETHEUS), f"--config.file={folder / 'prometheus.yml'}",
                     f"--storage.tsdb.path={folder / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{port}"], folder / "prometheus.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(f"{base}/-/ready", proc.proc)
            startup = time.monotonic() - started
            federate = f"{base}/federate?" + urllib.parse.urlencode(
                {"match[]": '{__name__=~".+:.+"}'})
            before, after, cpu, read_s = _measure(proc.pid, "self", f"{base}/metrics", federate,
                                                  cycles, interval_s)
            rss = int(metric_sum(after, "process_resident_memory_bytes"))
            scrape = query_value(base, "avg_over_time(scrape_duration_seconds[1m])")
            kept = query_value(base, "scrape_samples_post_metric_relabeling")
        finally:
            proc.stop()
    done = _delta(before, after, "prometheus_rule_group_iterations_total")
    evaluate = _ratio(before, after, "prometheus_rule_group_duration_seconds")
    return CycleFigures(startup, cpu / max(done, 1), scrape + evaluate + read_s, rss, int(done),
                        int(kept))


def query_value(base: str, expr: str) -> float:
    """The first value an instant query at `base` returns (0 when empty)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    found = re.search(rb'"value":\[[^,]+,"([^"]+)"\]', get(url))
    return float(found.group(1)) if found else 0.0
