"""End to end with the real Alertmanager: the demo shop bursts, the page reaches Alertmanager.

One test walks the whole story, since each step starts from the state the previous one left:
fire, read back with annotations, resolve, fire again, Alertmanager down and back, resume.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.daemon import Daemon
from exporter.demo.shop import ShopServer, start_shop
from tests.promtool import AlertmanagerServer, PrometheusServer
from tests.scrape_fixtures import wait_until

# The shop's checkout SLO with windows short enough for a test: the page fires when both the
# 20s and the 5s error ratio exceed 10 x the 0.5% budget (5%); a 50% burst does that at once.
RULES = """
slos:
  - name: checkout-availability
    service: checkout
    description: Checkout requests that complete without a server error.
    owner: Checkout team
    objective: 99.5
    window: 1h
    sli:
      ratio:
        errors: shop_http_requests_total{route="/checkout", code=~"5.."}
        total: shop_http_requests_total{route="/checkout"}
    alerting:
      runbook_url: https://runbooks.example.com/shop/checkout-availability
      tiers:
        page-fast: {long_window: 20s, short_window: 5s, factor: 10}
        page-slow: false
        ticket-fast: false
        ticket-slow: false
      budget_exhausted: false
      no_data: false
"""
PAGE = {"alertname": "SLOErrorBudgetBurn", "slo": "checkout-availability",
        "tier": "page-fast", "severity": "page"}
# Resend every 3s: evaluations every 1s make it every 4s (strictly after the delay), and
# each firing alert is valid for 4 x 3s = 12s, so an expiry is always 8s or more away.
RESEND_DELAY_S = 3


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    folder = tmp_path / "alertmanager"
    folder.mkdir()
    server = AlertmanagerServer(folder)
    yield server
    server.stop()


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    server = start_shop(deterministic=True)
    yield server
    server.stop()


@pytest.fixture
def daemon(tmp_path: Path, shop: ShopServer, alertmanager: AlertmanagerServer,
           ) -> Iterator[Daemon]:
    (tmp_path / "slo.yaml").write_text(RULES)
    config = {
        "listen": "127.0.0.1:0",
        "scrape_interval": "1s", "evaluation_interval": "1s",
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
        "rule_files": ["slo.yaml"], "state_dir": str(tmp_path / "state"),
        "external_labels": {"cluster": "test"},
        "alerting": {"resend_delay": f"{RESEND_DELAY_S}s", "alertmanagers": [
            {"static_configs": [{"targets": [alertmanager.address]}], "timeout": "2s"}]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    d = Daemon(str(path))
    d.start()
    yield d
    d.stop()


def _page(am: AlertmanagerServer) -> dict[str, Any] | None:
    """The checkout page alert as Alertmanager holds it, if it does."""
    try:
        alerts = am.alerts()
    except OSError:
        return None
    found = [a for a in alerts if PAGE.items() <= a["labels"].items()]
    return found[0] if found else None


def _metric(d: Daemon, name: str, labels: dict[str, str] | None = None) -> float:
    got = d.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if got is None else got


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_page_reaches_alertmanager_resolves_and_survives_its_restart(
        daemon: Daemon, shop: ShopServer, alertmanager: AlertmanagerServer) -> None:
    """Burst → page in Alertmanager with annotations → resolution; Alertmanager restart →
    notifications resume, every failed one counted as dropped."""
    shop.burst(600, 0.5)
    assert wait_until(lambda: _page(alertmanager) is not None, 60), "page never arrived"
    page = _page(alertmanager)
    assert page is not None
    # External labels were added; the business annotations came through Alertmanager.
    assert page["labels"]["cluster"] == "test"
    notes = page["annotations"]
    assert "checkout-availability" in notes["summary"]
    assert "99.5%" in notes["description"]
    # How fast the budget burns, in words: a 50% burst is 100x the 0.5% budget.
    assert "error budget is gone in" in notes["description"]
    assert notes["owner"] == "Checkout team"
    assert notes["runbook_url"] == "https://runbooks.example.com/shop/checkout-availability"
    assert page["generatorURL"].startswith("http://")
    # The sidecar's own API shows the same alert firing, in Prometheus's shape.
    api = requests.get(f"http://{daemon.listen_address}/api/v1/alerts", timeout=5).json()
    assert api["status"] == "success"
    firing = [a for a in api["data"]["alerts"] if a["labels"]["tier"] == "page-fast"]
    assert [a["state"] for a in firing] == ["firing"]

    # The burst ends: the short window clears and the resolution reaches Alertmanager. It
    # must vanish before the endsAt it last held, or it merely expired.
    shop.stop_burst()
    last_ends = _parse_time(page["endsAt"])

    def resolved() -> bool:
        nonlocal last_ends
        current = _page(alertmanager)
        if current is not None:
            last_ends = _parse_time(current["endsAt"])
            return False
        return True

    assert wait_until(resolved, 60), "resolution never arrived"
    assert time.time() < last_ends, "the alert expired instead of being resolved"

    # Fire again, then take Alertmanager away while the page is firing.
    shop.burst(600, 0.5)
    assert wait_until(lambda: _page(alertmanager) is not None, 60)
    url = f"http://{alertmanager.address}/api/v2/alerts"
    errors_before = _metric(daemon, "value_exporter_notifications_errors_total",
                            {"alertmanager": url})
    alertmanager.stop()
    assert wait_until(lambda: _metric(daemon, "value_exporter_notifications_errors_total",
                                      {"alertmanager": url}) > errors_before, 30)
    alertmanager.start()  # same port; alerts are not persisted, so it starts empty
    assert wait_until(lambda: _page(alertmanager) is not None, 30), "notifications did not resume"
    assert daemon.notifier.wait_idle(10)
    errors = _metric(daemon, "value_exporter_notifications_errors_total", {"alertmanager": url})
    dropped = _metric(daemon, "value_exporter_notifications_dropped_total")
    # One Alertmanager: every failed alert was dropped and counted, none silently lost, and
    # the queue (10 000) never overflowed.
    assert dropped == errors > 0
    assert _metric(daemon, "value_exporter_notifications_queue_length") == 0
    assert _metric(daemon, "value_exporter_notifications_sent_total", {"alertmanager": url}) > 0


SHAPE_RULES = {"groups": [{"name": "g", "interval": "1s", "rules": [
    {"record": "r:one", "expr": "vector(1)", "labels": {"a": "b"}},
    {"record": "r:two", "expr": "vector(2)"},
    {"alert": "Always", "expr": "vector(1) > 0", "labels": {"severity": "page"},
     "annotations": {"summary": "value {{ $value }}"}},
    {"alert": "Pending", "expr": "vector(1)", "for": "1h"},
    {"alert": "Never", "expr": "vector(1) < 0", "keep_firing_for": "5m"},
]}]}
# Times and durations differ between two processes; everything else must match.
_VOLATILE = {"evaluationTime", "lastEvaluation", "activeAt", "file"}


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in _VOLATILE else _comparable(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _get(base: str, path: str) -> Any:
    response = requests.get(f"{base}{path}", timeout=5)
    body = response.json()
    if body["status"] == "success":
        return body["data"]
    return response.status_code, body


def test_rules_and_alerts_api_match_prometheus(tmp_path: Path, shop: ShopServer) -> None:
    """/api/v1/rules and /api/v1/alerts answer what Prometheus 3 answers for the same rules."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(SHAPE_RULES))
    prometheus = PrometheusServer({"global": {"evaluation_interval": "1s"},
                                   "rule_files": [str(tmp_path / "rules.yml")]}, tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "evaluation_interval": "1s",
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
        "rule_files": ["rules.yml"], "state_dir": str(tmp_path / "state")}))
    d = Daemon(str(config))
    d.start()
    try:
        ours_base = f"http://{d.listen_address}"
        theirs_base = f"http://127.0.0.1:{prometheus.port}"

        def both_evaluated() -> bool:
            return all(len(_get(b, "/api/v1/alerts")["alerts"]) == 2
                       for b in (ours_base, theirs_base))

        assert wait_until(both_evaluated, 30)
        for path in ("/api/v1/rules", "/api/v1/alerts", "/api/v1/rules?type=alert",
                     "/api/v1/rules?type=record", "/api/v1/rules?exclude_alerts=true",
                     "/api/v1/rules?rule_name[]=Always&rule_name[]=r:one",
                     "/api/v1/rules?rule_group[]=g&rule_name[]=Pending",
                     "/api/v1/rules?rule_group[]=other", "/api/v1/rules?rule_name[]=",
                     "/api/v1/rules?type=ALERT", "/api/v1/rules?exclude_alerts=TRUE",
                     # errors too: status code and message
                     "/api/v1/rules?type=foo", "/api/v1/rules?exclude_alerts=maybe"):
            assert _comparable(_get(ours_base, path)) == _comparable(_get(theirs_base, path)), \
                path
    finally:
        d.stop()
        prometheus.stop()
