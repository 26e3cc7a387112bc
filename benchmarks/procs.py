"""Processes the harness runs on 127.0.0.1: the target, the sidecar daemon, Prometheus.

CPU and resident memory of the sidecar come from /proc (what its process collector would
report); Prometheus's from its own process_cpu_seconds_total / process_resident_memory_bytes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin" / "prometheus"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 30) -> bytes:
    """The body of a GET (raises on a non-2xx answer)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> float:
    """Seconds until `url` answers 200 (polled every 20 ms); raises if the process dies."""
    start = time.monotonic()
    while True:
        try:
            get(url, timeout=2)
            return time.monotonic() - start
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"{url} not ready after {timeout_s} s")
        time.sleep(0.02)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def metric_sum(text: str, name: str, label_filter: str = "") -> float:
    """The sum of every sample of `name` (whose label text contains label_filter)."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)", re.M)
    for m in pattern.finditer(text):
        if label_filter in (m.group(1) or ""):
            total += float(m.group(2))
    return total


class Proc:
    """A child process with its log file; stop() ends it."""

    def __init__(self, args: list[str], log: Path, **kwargs: object) -> None:
        self._log = log.open("wb")
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, **kwargs)  # type: ignore[call-overload]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


class Target:
    """The loopback target (benchmarks/target.py) serving an exposition of `series` lines."""

    def __init__(self, series: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "target.py"), "--series", str(series)],
            stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/metrics"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
