"""Run real promtool 3.x as the reference engine: what Prometheus computes for an expression."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scrape_fixtures import free_port
from tests.shared_data import REPO_ROOT, REQUIRE_ENV

PROMTOOL_ENV = "VALUE_EXPORTER_PROMTOOL"
CACHED_PROMTOOL = REPO_ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin" / "promtool"


def require_promtool() -> Path:
    """The promtool binary; skip (in CI: fail) when scripts/fetch-prometheus.sh has not run."""
    configured = os.environ.get(PROMTOOL_ENV)
    path = Path(configured) if configured else CACHED_PROMTOOL
    if path.exists():
        return path
    message = (
        f"promtool 3.x not found at {path}; `make test` fetches it with "
        f"scripts/fetch-prometheus.sh (Debian unstable's promtool package), or set {PROMTOOL_ENV}."
    )
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class ReferenceResult:
    """What promtool computed: samples as (labels text, value), or the error it raised."""

    samples: tuple[tuple[dict[str, str], float], ...] = ()
    error: str | None = None


_HEADER = re.compile(r'^    expr: (?P<expr>"(?:[^"\\]|\\.)*"), time: (?P<time>[^,]+),(?P<rest>.*)$')


def reference_results(
    promtool: Path,
    interval: str,
    series: dict[str, str],
    queries: list[tuple[str, str]],
) -> dict[tuple[str, str], ReferenceResult]:
    """Evaluate (expr, eval_time) pairs with promtool over the series; results by pair.

    Every test is written with no expected samples, so promtool reports what it got for each
    query that returned something; a query it does not report returned an empty vector.
    """
    test = {
        "rule_files": ["empty.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": interval,
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": t, "exp_samples": []} for expr, t in queries
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "empty.yml").write_text("groups: []\n")
        Path(tmp, "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
        proc = subprocess.run(
            [str(promtool), "test", "rules", "test.yml"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    results = {pair: ReferenceResult() for pair in queries}
    lines = (proc.stdout + proc.stderr).splitlines()
    i = 0
    while i < len(lines):
        m = _HEADER.match(lines[i])
        i += 1
        if not m:
            continue
        expr = yaml.safe_load(m["expr"])  # a Go-quoted string is valid YAML double-quoted
        key = (expr, m["time"])
        rest = m["rest"].strip()
        if rest.startswith("err: "):
            results[key] = ReferenceResult(error=rest[5:])
            continue
        got = ""
        while i < len(lines) and not _HEADER.match(lines[i]):
            stripped = lines[i].strip()
            if stripped.startswith("got: "):
                got = stripped[5:]
            i += 1
        results[key] = ReferenceResult(samples=tuple(parse_sample_list(got)))
    return results


def parse_sample_list(text: str) -> list[tuple[dict[str, str], float]]:
    """Parse promtool's `{a="b"} 1E+00, {c="d"} NaN` listing."""
    samples: list[tuple[dict[str, str], float]] = []
    pos = 0
    while pos < len(text):
        assert text[pos] == "{", text[pos:]
        labels: dict[str, str] = {}
        pos += 1
        while text[pos] != "}":
            eq = text.index("=", pos)
            name = text[pos:eq].strip().strip(",").strip()
            assert text[eq + 1] == '"'
            j = eq + 2
            chars: list[str] = []
            while text[j] != '"':
                if text[j] == "\\":
                    nxt = text[j + 1]
                    chars.append({"n": "\n", "\\": "\\", '"': '"'}.get(nxt, nxt))
                    j += 2
                else:
                    chars.append(text[j])
                    j += 1
            labels[name] = "".join(chars)
            pos = j + 1
            while text[pos] in ", ":
                pos += 1
        pos += 2  # "} "
        end = text.find(", {", pos)
        end = len(text) if end < 0 else end
        samples.append((labels, float(text[pos:end])))
        pos = end + 2
    return samples


def require_prometheus() -> Path:
    """The prometheus 3.x binary beside promtool; skip (in CI: fail) when absent."""
    configured = os.environ.get(PROMTOOL_ENV)
    path = (Path(configured) if configured else CACHED_PROMTOOL).with_name("prometheus")
    if path.exists():
        return path
    message = (f"prometheus 3.x not found beside promtool at {path}; `make test` fetches it "
               "with scripts/fetch-prometheus.sh (Debian unstable's prometheus package).")
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _ready(port: int) -> bool:
    """Whether a Prometheus-family server on 127.0.0.1:port answers /-/ready with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _wait_ready(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Wait up to 30 s for /-/ready; if it never comes, end the process and say why."""
    deadline = time.monotonic() + 30
    while not _ready(port):
        if time.monotonic() > deadline or proc.poll() is not None:
            _terminate(proc)
            raise RuntimeError(f"{what} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server and wait for it (killed after 15 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class PrometheusServer:
    """Real Prometheus on 127.0.0.1 with a free port and a throwaway TSDB; stop() ends it."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        binary = require_prometheus()
        self.port = free_port()
        config_path = folder / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._log = (folder / "prometheus.log").open("w")
        self._proc = subprocess.Popen(
            [str(binary), f"--config.file={config_path}", f"--storage.tsdb.path={folder / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(self.port, self._proc, "prometheus", folder / "prometheus.log")
        except RuntimeError:
            self._log.close()
            raise

    def ready(self) -> bool:
        """Whether /-/ready answers 200."""
        return _ready(self.port)

    def query(self, expr: str, t: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result list."""
        params = {"query": expr, **({"time": repr(t)} if t is not None else {})}
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
        return result

    def stop(self) -> None:
        """Terminate Prometheus and wait for it."""
        _terminate(self._proc)
        self._log.close()


def promtool_test_compiled(promtool: Path, test: dict[str, Any], compiled: dict[str, str],
                           folder: Path) -> subprocess.CompletedProcess[str]:
    """Run a promtool-format unit test on `compile` output in real promtool.

    `compiled` maps each rule file name the test refers to onto its compiled text. Groups
    run in the compiled files' order, as the sidecar runs them: promtool orders groups the
    test does not list in group_eval_order at random, and SLO or value groups read the
    series that earlier groups record at the same step.
    """
    order: list[str] = []
    for name, text in compiled.items():
        (folder / name).write_text(text)
        order += [g["name"] for g in yaml.safe_load(text)["groups"]]
    (folder / "t.yaml").write_text(
        yaml.safe_dump({**test, "group_eval_order": order}, sort_keys=False))
    return subprocess.run([str(promtool), "test", "rules", "t.yaml"], cwd=folder,
                          capture_output=True, text=True, timeout=300, check=False)


def require_alertmanager() -> Path:
    """The Alertmanager 0.2x binary beside promtool; skip (in CI: fail) when absent."""
    configured = os.environ.get(PROMTOOL_ENV)
    path = (Path(configured) if configured else CACHED_PROMTOOL).with_name(
        "prometheus-alertmanager")
    if path.exists():
        return path
    message = (f"prometheus-alertmanager not found beside promtool at {path}; `make test` "
               "fetches it with scripts/fetch-prometheus.sh (Debian unstable's package).")
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


DEBIAN_ALERTMANAGER_SHARE = Path("/usr/share/prometheus/alertmanager")


def alertmanager_command(binary: Path, args: list[str]) -> list[str]:
    """How to run the extracted Debian Alertmanager.

    Debian's build reads its default notification template from a fixed path under
    /usr/share. Unless the package is installed, the process runs in a private mount
    namespace where a read-only overlay adds the extracted package's /usr/share to the
    system's (nothing outside that process sees it; no root needed).
    """
    if (DEBIAN_ALERTMANAGER_SHARE / "default.tmpl").exists():
        return [str(binary), *args]
    if shutil.which("unshare") is None:
        message = ("running the extracted Alertmanager needs `unshare` (util-linux) or the "
                   "installed prometheus-alertmanager package's /usr/share files")
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    share = binary.parent.parent / "share"
    script = f'mount -t overlay overlay -o "lowerdir=/usr/share:{share}" /usr/share && ' \
             'exec "$0" "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, str(binary), *args]


# A null receiver: alerts are held and grouped, nothing is sent anywhere.
ALERTMANAGER_CONFIG = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}


class AlertmanagerServer:
    """Real Alertmanager on 127.0.0.1 (gossip off, throwaway storage); stop() ends it and
    start() brings it back on the same port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self._binary = require_alertmanager()
        self._folder = folder
        self.port = port if port is not None else free_port()
        (folder / "alertmanager.yml").write_text(yaml.safe_dump(ALERTMANAGER_CONFIG))
        self._proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def address(self) -> str:
        """host:port, for `alerting.alertmanagers[].static_configs`."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) the process and wait until it is ready."""
        log_path = self._folder / "alertmanager.log"
        with log_path.open("a") as log:
            self._proc = subprocess.Popen(
                alertmanager_command(self._binary, [
                    f"--config.file={self._folder / 'alertmanager.yml'}",
                    f"--storage.path={self._folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]),
                stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(self.port, self._proc, "alertmanager", log_path)
        except RuntimeError:
            self._proc = None
            raise

    def ready(self) -> bool:
        """Whether /-/ready answers 200."""
        return _ready(self.port)

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: the alerts Alertmanager holds (resolved ones drop out)."""
        url = f"http://127.0.0.1:{self.port}/api/v2/alerts"
        with urllib.request.urlopen(url, timeout=10) as resp:
            result: list[dict[str, Any]] = json.load(resp)
        return result

    def stop(self) -> None:
        """Terminate Alertmanager and wait for it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc)
