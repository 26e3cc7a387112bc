"""Tests for the running daemon: scrape, evaluate, export, read API, reload, bad inputs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.daemon import Daemon
from exporter.demo.shop import ShopServer, start_shop
from exporter.demo.simulation import Conditions, deterministic_rates
from tests.scrape_fixtures import Target, free_port, respond, wait_until

RULES = """
groups:
  - name: shop
    interval: 1s
    rules:
      - record: shop:checkout_conversion:ratio_rate1m
        expr: |
          sum(rate(shop_journey_events_total{stage="order_paid"}[1m]))
            / sum(rate(shop_journey_events_total{stage="checkout_started"}[1m]))
      - record: route:shop_http_requests:rate1m
        expr: sum by (route) (rate(shop_http_requests_total[1m]))
      - record: shop:routes:count
        expr: count(route:shop_http_requests:rate1m)
      - alert: ShopUp
        expr: up{job="shop"} == 1
        labels: {severity: info}
        annotations: {summary: "shop {{ $labels.instance }} is up ({{ $value }})"}
"""


def _write_config(folder: Path, targets: list[dict[str, Any]], rules: str = RULES) -> Path:
    (folder / "rules.yaml").write_text(rules)
    config = {
        "listen": "127.0.0.1:0",
        "scrape_interval": "1s",
        "scrape_timeout": "500ms",
        "evaluation_interval": "1s",
        "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": targets,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


@pytest.fixture
def daemon(tmp_path: Path, shop: ShopServer) -> Iterator[Daemon]:
    path = _write_config(tmp_path, [{"name": "shop", "url": f"{shop.url}/metrics"}])
    d = Daemon(str(path))
    d.start()
    yield d
    d.stop()


def _url(d: Daemon, path: str) -> str:
    return f"http://{d.listen_address}{path}"


def _query(d: Daemon, expr: str) -> list[dict[str, Any]]:
    body = requests.get(_url(d, "/api/v1/query"), params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_scrapes_evaluates_and_exports(daemon: Daemon) -> None:
    """Recorded series appear on /metrics and in the query API with the exact derived values."""
    assert wait_until(lambda: daemon.ready, 10)
    assert requests.get(_url(daemon, "/-/ready"), timeout=5).status_code == 200
    assert wait_until(lambda: bool(_query(daemon, "shop:checkout_conversion:ratio_rate1m")), 10)
    rates = deterministic_rates(Conditions())
    paid = rates[("shop_journey_events_total", (("stage", "order_paid"),))]
    started = rates[("shop_journey_events_total", (("stage", "checkout_started"),))]
    value = float(_query(daemon, "shop:checkout_conversion:ratio_rate1m")[0]["value"][1])
    assert value == pytest.approx(paid / started, rel=1e-9)
    metrics = requests.get(_url(daemon, "/metrics"), timeout=5).text
    assert "# TYPE shop:checkout_conversion:ratio_rate1m gauge" in metrics
    assert 'route:shop_http_requests:rate1m{route="/checkout"}' in metrics
    assert "value_exporter_ready 1.0" in metrics
    assert 'value_exporter_rule_group_last_evaluation_timestamp_seconds{rule_group="shop"}' \
        in metrics
    # Raw scraped families are not re-exported: only what the rules derive.
    assert "shop_http_requests_total" not in metrics.replace("rate(shop_http_requests_total", "")


def test_read_api_shapes(daemon: Daemon) -> None:
    """Targets, rules, alerts, labels, series and range queries answer in Prometheus's shape."""
    assert wait_until(lambda: bool(_query(daemon, 'ALERTS{alertname="ShopUp"}')), 10)
    targets = requests.get(_url(daemon, "/api/v1/targets"), timeout=5).json()["data"]
    assert targets["activeTargets"][0]["health"] == "up"
    rules = requests.get(_url(daemon, "/api/v1/rules"), timeout=5).json()["data"]["groups"]
    assert [r["type"] for r in rules[0]["rules"]] == ["recording"] * 3 + ["alerting"]
    alerts = requests.get(_url(daemon, "/api/v1/alerts"), timeout=5).json()["data"]["alerts"]
    assert alerts[0]["state"] == "firing"
    assert alerts[0]["annotations"]["summary"].startswith("shop 127.0.0.1:")
    labels = requests.get(_url(daemon, "/api/v1/labels"), timeout=5).json()["data"]
    assert {"__name__", "job", "instance", "route"} <= set(labels)
    values = requests.get(_url(daemon, "/api/v1/label/job/values"), timeout=5).json()["data"]
    assert values == ["shop"]
    series = requests.get(_url(daemon, "/api/v1/series"), params={"match[]": "up"},
                          timeout=5).json()["data"]
    assert series == [{"__name__": "up", "instance": series[0]["instance"], "job": "shop"}]
    now = time.time()
    matrix = requests.get(_url(daemon, "/api/v1/query_range"), timeout=5, params={
        "query": "up", "start": now - 1, "end": now, "step": "0.5"}).json()["data"]
    assert matrix["resultType"] == "matrix" and len(matrix["result"][0]["values"]) == 3
    bad = requests.get(_url(daemon, "/api/v1/query"), params={"query": "sum("}, timeout=5)
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
    buildinfo = requests.get(_url(daemon, "/api/v1/status/buildinfo"), timeout=5).json()
    assert buildinfo["data"]["application"] == "value-exporter"


def test_reload_keeps_running_config_on_error(daemon: Daemon, tmp_path: Path) -> None:
    """A reload with a broken rule file reports it and keeps the old rules; a good one applies."""
    assert wait_until(lambda: daemon.ready, 10)
    assert requests.get(_url(daemon, "/-/reload"), timeout=5).status_code == 405
    rules = tmp_path / "rules.yaml"
    good = rules.read_text()
    rules.write_text(good.replace("expr: count(route:shop_http_requests:rate1m)", "expr: sum("))
    response = requests.post(_url(daemon, "/-/reload"), timeout=5)
    assert response.status_code == 500
    assert "rules.yaml:13:15" in response.text and "parse error" in response.text
    metrics = requests.get(_url(daemon, "/metrics"), timeout=5).text
    assert "value_exporter_config_last_reload_successful 0.0" in metrics
    assert wait_until(lambda: bool(_query(daemon, "shop:routes:count")), 10)
    rules.write_text(good.replace("shop:routes:count", "shop:routes:total"))
    assert requests.post(_url(daemon, "/-/reload"), timeout=5).status_code == 200
    assert wait_until(lambda: bool(_query(daemon, "shop:routes:total")), 10)


def test_bad_targets_never_stop_the_daemon(tmp_path: Path, shop: ShopServer) -> None:
    """Down, hanging, garbage and huge targets are each reported; the good one still works."""

    def hang(h: Any) -> None:
        time.sleep(3)

    huge = b"x" * (100 * 1024 * 1024)
    with Target(hang) as hanging, Target(respond("this is {not metrics\n")) as garbage, \
            Target(respond(huge)) as large:
        down = f"127.0.0.1:{free_port()}"
        targets = [
            {"name": "shop", "url": f"{shop.url}/metrics"},
            {"name": "down", "url": f"http://{down}/metrics"},
            {"name": "hangs", "url": f"http://{hanging.address}/metrics"},
            {"name": "garbage", "url": f"http://{garbage.address}/metrics"},
            {"name": "huge", "url": f"http://{large.address}/metrics",
             "body_size_limit": "10MB"},
        ]
        d = Daemon(str(_write_config(tmp_path, targets)))
        d.start()
        try:
            assert wait_until(lambda: d.ready, 15)
            reasons = {"down": "refused", "hangs": "timeout", "garbage": "parse_error",
                       "huge": "too_large"}

            def all_reported() -> bool:
                text = requests.get(_url(d, "/metrics"), timeout=5).text
                return all(f'target="{name}/' in text and f'reason="{why}"' in text
                           for name, why in reasons.items())

            assert wait_until(all_reported, 15)
            health = {t["labels"]["job"]: t for t in requests.get(
                _url(d, "/api/v1/targets"), timeout=5).json()["data"]["activeTargets"]}
            assert health["shop"]["health"] == "up"
            for name in reasons:
                assert health[name]["health"] == "down" and health[name]["lastError"], name
            ups = {r["metric"]["job"]: r["value"][1] for r in _query(d, "up")}
            assert ups == {"shop": "1", "down": "0", "hangs": "0", "garbage": "0", "huge": "0"}
            assert requests.get(_url(d, "/-/healthy"), timeout=5).status_code == 200
        finally:
            d.stop()


def test_skipped_iterations_are_counted(tmp_path: Path, shop: ShopServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape or rule group slower than its interval is skipped and counted, never silent."""
    from exporter.evaluate import GroupEvaluator
    from exporter.scrape import TargetScraper

    slow_scrape, slow_eval = TargetScraper.scrape, GroupEvaluator.evaluate

    def scrape(self: TargetScraper, t_ms: int) -> Any:
        time.sleep(2.5)
        return slow_scrape(self, t_ms)

    def evaluate(self: GroupEvaluator, t_ms: int) -> Any:
        time.sleep(2.5)
        return slow_eval(self, t_ms)

    monkeypatch.setattr(TargetScraper, "scrape", scrape)
    monkeypatch.setattr(GroupEvaluator, "evaluate", evaluate)
    d = Daemon(str(_write_config(tmp_path, [{"name": "shop", "url": f"{shop.url}/metrics"}])))
    d.start()
    try:
        def missed(metric: str) -> float:
            text = requests.get(_url(d, "/metrics"), timeout=5).text
            lines = [ln for ln in text.splitlines() if ln.startswith(metric + "{")]
            return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines)

        assert wait_until(lambda: missed("value_exporter_scrape_iterations_missed_total") > 0, 10)
        assert wait_until(
            lambda: missed("value_exporter_rule_group_iterations_missed_total") > 0, 10)
    finally:
        d.stop()


def _spawn(args: list[str]) -> Any:
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "exporter.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_run_command_reload_on_sighup_and_clean_exit_on_sigterm(
    tmp_path: Path, shop: ShopServer,
) -> None:
    """`run` serves, reloads on SIGHUP, and exits 0 soon after SIGTERM."""
    import signal

    port = free_port()
    path = _write_config(tmp_path, [{"name": "shop", "url": f"{shop.url}/metrics"}])
    proc = _spawn(["run", "--config", str(path), "--web.listen-address", f"127.0.0.1:{port}"])
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{base}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        assert wait_until(ready, 20)
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules.read_text().replace("shop:routes:count", "shop:routes:renamed"))
        proc.send_signal(signal.SIGHUP)

        def renamed() -> bool:
            body = requests.get(f"{base}/api/v1/rules", timeout=5).text
            return "shop:routes:renamed" in body

        assert wait_until(renamed, 10)
        proc.send_signal(signal.SIGTERM)
        # A clean exit, not a speed check: the wait only guards against a hang (stopping is
        # bounded by the scrape timeout plus the web server's shutdown, well under a second).
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "event=reloaded" in stderr and "event=stopped" in stderr


def test_run_command_rejects_a_rule_file_with_a_typo(tmp_path: Path) -> None:
    """A typo in a rule file stops `run` at once with file:line:col messages and exit 1."""
    path = _write_config(tmp_path, [{"name": "x", "url": "http://127.0.0.1:9/metrics"}],
                         rules=RULES.replace("expr: count(", "exprr: count("))
    proc = _spawn(["run", "--config", str(path)])
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert 'rules.yaml:13:9: groups[0] "shop", rule 3 "shop:routes:count": unknown key "exprr"' \
        in stderr
    assert "Traceback" not in stderr


def test_dns_discovered_targets_are_scheduled_as_they_come_and_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Targets found by DNS get scrape jobs, and lose them when DNS stops returning them."""
    import functools

    import exporter.daemon
    from exporter.discovery import DNSRecord
    from exporter.scrape import ScrapeManager

    shops = [start_shop("127.0.0.1:0", deterministic=True) for _ in range(2)]
    ports = {shop.port for shop in shops}
    assert len(ports) == 2

    class FakeResolver:
        """Answers the service's A record with one loopback address per listed port."""

        def __init__(self) -> None:
            self.answers = [DNSRecord("127.0.0.1")]

        def lookup(self, name: str, rdtype: str) -> list[DNSRecord]:
            return list(self.answers)

    resolver = FakeResolver()
    monkeypatch.setattr(exporter.daemon, "ScrapeManager",
                        functools.partial(ScrapeManager, resolver=resolver))
    first, second = shops
    (tmp_path / "rules.yaml").write_text(RULES)
    config = {
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "scrape_timeout": "500ms",
        "evaluation_interval": "1s", "rule_files": ["rules.yaml"],
        "state_dir": str(tmp_path / "state"),
        "scrape_configs": [
            {"job_name": "shop", "dns_sd_configs": [
                {"names": ["shop.svc"], "type": "A", "port": first.port,
                 "refresh_interval": "1s"}]},
            {"job_name": "shop2", "dns_sd_configs": [
                {"names": ["shop2.svc"], "type": "A", "port": second.port,
                 "refresh_interval": "1s"}]},
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    d = Daemon(str(path))
    d.start()
    try:
        def jobs_up() -> set[str]:
            return {r["metric"]["job"] for r in _query(d, "up == 1")}

        assert wait_until(lambda: jobs_up() == {"shop", "shop2"}, 10)
        resolver.answers = []  # the pods are gone
        assert wait_until(lambda: not d.scrapes.scrapers(), 10)
        assert wait_until(lambda: jobs_up() == set(), 10)
        resolver.answers = [DNSRecord("127.0.0.1")]
        assert wait_until(lambda: jobs_up() == {"shop", "shop2"}, 10)
    finally:
        d.stop()
        for shop in shops:
            shop.stop()


def test_backfill_fills_a_new_slo_from_prometheus(tmp_path: Path, shop: ShopServer) -> None:
    """A new SLO's window is filled from the configured Prometheus before live counting."""
    import json
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    queries: list[str] = []

    class FakePrometheus(BaseHTTPRequestHandler):
        """Every bucket held 100 requests, 10 of them failed."""

        def do_POST(self) -> None:
            form = urllib.parse.parse_qs(
                self.rfile.read(int(self.headers["Content-Length"])).decode())
            query = form["query"][0]
            queries.append(query)
            start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
            value = "10" if "code" in query else "100"
            points = []
            t = start
            while t <= end:
                points.append([t, value])
                t += step
            body = json.dumps({"status": "success", "data": {
                "resultType": "matrix", "result": [{"metric": {}, "values": points}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "slos.yaml").write_text("""
slos:
  - name: legacy
    service: old
    objective: 95
    window: 1h
    sli:
      ratio:
        errors: legacy_requests_total{code="500"}
        total: legacy_requests_total
    alerting:
      tiers: {page-slow: false, ticket-fast: false, ticket-slow: false}
""")
    path = _write_config(tmp_path, [{"name": "shop", "url": f"{shop.url}/metrics"}])
    raw = yaml.safe_load(path.read_text())
    raw["rule_files"] = ["slos.yaml"]
    raw["backfill"] = {"prometheus_url": f"http://127.0.0.1:{server.server_address[1]}"}
    path.write_text(yaml.safe_dump(raw))
    d = Daemon(str(path))
    d.start()
    try:
        def period_ratio() -> list[dict[str, Any]]:
            return _query(d, 'slo:sli_error:ratio_period{slo="legacy"}')

        assert wait_until(lambda: bool(period_ratio()), 10)
        # No live traffic for this SLI: the whole hour comes from Prometheus, 10 of 100 bad.
        assert float(period_ratio()[0]["value"][1]) == pytest.approx(0.1)
        remaining = _query(d, 'slo:error_budget_remaining:ratio{slo="legacy"}')
        assert float(remaining[0]["value"][1]) == pytest.approx(1 - 0.1 / 0.05)
        assert any("increase(legacy_requests_total" in q for q in queries)
    finally:
        d.stop()
        server.shutdown()
        server.server_close()


def test_metrics_keep_recording_rule_names_whatever_the_accept_header(daemon: Daemon) -> None:
    """An OpenMetrics Accept header still gets the text format with `level:metric:op` names."""
    assert wait_until(lambda: bool(_query(daemon, "route:shop_http_requests:rate1m")), 10)
    response = requests.get(
        _url(daemon, "/metrics"), timeout=5,
        headers={"Accept": "application/openmetrics-text;version=1.0.0;q=0.6,*/*;q=0.1"})
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'route:shop_http_requests:rate1m{route="/checkout"}' in response.text
    assert "route_shop_http_requests_rate1m" not in response.text
