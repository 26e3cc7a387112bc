"""Restart safety: a daemon killed with SIGKILL comes back with its alerts as they were."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
import yaml

from exporter.demo.shop import ShopServer, start_shop
from exporter.state import DB_NAME
from tests.scrape_fixtures import free_port, wait_until

RULES = """
groups:
  - name: restart
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: ShopUpFiring
        expr: up{job="shop"} == 1
        for: 2s
        labels: {severity: info}
      - alert: ShopUpPending
        expr: up{job="shop"} == 1
        for: 1h
"""


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


class _Run:
    """One `value-exporter run` process with its log in a file."""

    def __init__(self, config: Path, folder: Path, name: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"{name}.log"
        self._log: IO[str] = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "run", "--config", str(config),
             "--web.listen-address", f"127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, text=True,
        )

    def get(self, path: str) -> Any:
        try:
            return requests.get(self.base + path, timeout=2).json()
        except (requests.RequestException, ValueError):
            return None

    def ready(self) -> bool:
        try:
            return requests.get(self.base + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def alerts(self) -> dict[str, dict[str, Any]]:
        body = self.get("/api/v1/alerts")
        if body is None:
            return {}
        return {a["labels"]["alertname"]: a for a in body["data"]["alerts"]}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()


def _config(folder: Path, shop: ShopServer) -> Path:
    (folder / "rules.yaml").write_text(RULES)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0",
        "scrape_interval": "1s",
        "scrape_timeout": "500ms",
        "evaluation_interval": "1s",
        "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
    }))
    return path


def test_firing_alert_survives_sigkill(tmp_path: Path, shop: ShopServer) -> None:
    """After SIGKILL and a restart, the firing and the pending alert are back at once with the
    same activeAt, stay so after the next evaluations, and the state database is intact."""
    config = _config(tmp_path, shop)
    first = _Run(config, tmp_path, "first")
    try:
        assert wait_until(lambda: first.alerts().get("ShopUpFiring", {}).get("state")
                          == "firing", 30), first.log()
        time.sleep(1.5)  # a few more evaluations (and saves) while firing
        before = first.alerts()
    finally:
        first.kill()
    assert before["ShopUpPending"]["state"] == "pending"

    second = _Run(config, tmp_path, "second")
    try:
        # The first answer of the API, before any new evaluation could have fired anything.
        assert wait_until(lambda: second.alerts() != {}, 30), second.log()
        restored = second.alerts()
        for name in ("ShopUpFiring", "ShopUpPending"):
            assert restored[name]["state"] == before[name]["state"], name
            assert restored[name]["activeAt"] == before[name]["activeAt"], name
        assert wait_until(second.ready, 30), second.log()
        time.sleep(3)  # evaluations after the restart keep the alerts as they were
        after = second.alerts()
        for name in ("ShopUpFiring", "ShopUpPending"):
            assert after[name]["state"] == before[name]["state"], name
            assert after[name]["activeAt"] == before[name]["activeAt"], name
        metrics = requests.get(second.base + "/metrics", timeout=5).text
        assert "value_exporter_state_persistent 1.0" in metrics
        conn = sqlite3.connect(tmp_path / "state" / DB_NAME)  # a reader beside the daemon
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    finally:
        second.kill()
    log = second.log()
    assert "event=state_opened" in log and "status=opened" in log, log
    assert "alerts=2" in log, log
    assert not any(".corrupt-" in p.name for p in (tmp_path / "state").iterdir())


SLO_RULES = """
version: value-exporter/v1
slos:
  - name: checkout
    service: shop
    objective: 98
    window: 30d
    sli:
      ratio:
        errors: shop_http_requests_total{route="/checkout", code=~"5.."}
        total: shop_http_requests_total{route="/checkout"}
"""


def _value(run: _Run, expr: str) -> float | None:
    body = run.get(f"/api/v1/query?query={expr}")
    if not body or not body["data"]["result"]:
        return None
    return float(body["data"]["result"][0]["value"][1])


def test_error_budget_survives_sigkill(tmp_path: Path, shop: ShopServer) -> None:
    """After SIGKILL and a restart the SLO's events keep counting from where they were, the
    remaining budget continues, and the downtime is reported as a data gap, not as good."""
    (tmp_path / "slos.yaml").write_text(SLO_RULES)
    config = _config(tmp_path, shop)
    raw = yaml.safe_load(config.read_text())
    raw["rule_files"] = ["slos.yaml"]
    config.write_text(yaml.safe_dump(raw))
    events = 'slo:events:total{slo="checkout"}'
    remaining = 'slo:error_budget_remaining:ratio{slo="checkout"}'
    first = _Run(config, tmp_path, "first")
    try:
        assert wait_until(lambda: (_value(first, events) or 0) > 5, 30), first.log()
        before_events = _value(first, events)
        before_remaining = _value(first, remaining)
    finally:
        first.kill()
    assert before_events is not None and before_remaining is not None
    time.sleep(3)  # downtime: these seconds must show up as a gap, not as good events

    second = _Run(config, tmp_path, "second")
    try:
        assert wait_until(second.ready, 30), second.log()
        assert wait_until(lambda: (_value(second, events) or 0) > before_events, 30)
        after_events = _value(second, events)
        after_remaining = _value(second, remaining)
        gap = _value(second, 'value_exporter_slo_data_gap_seconds_total{slo="checkout"}')
    finally:
        second.kill()
    assert after_events is not None and after_remaining is not None
    # The deterministic shop fails a constant share of checkouts: the remaining budget of the
    # cumulative counts stays where it was, rather than restarting from a full budget.
    assert after_remaining == pytest.approx(before_remaining, rel=0.05)
    assert after_remaining < 0.99
    assert gap is not None and gap >= 2.0
    assert "slos=1" in second.log()
