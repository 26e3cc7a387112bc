"""The same targets scraped by real Prometheus 3.x and by the scrape stage give the same series."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config_scrape import StaticConfig
from exporter.demo.shop import ShopServer, start_shop
from exporter.labels import make_labels
from exporter.scrape import TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.promtool import CACHED_PROMTOOL, PROMTOOL_ENV
from tests.scrape_fixtures import Target, free_port, make_job, respond, wait_until
from tests.shared_data import REQUIRE_ENV

FORMATS = {"text": "text/plain;version=0.0.4",
           "openmetrics": "application/openmetrics-text;version=1.0.0"}
SYNTHETIC = ("up", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added")


def _prometheus() -> Path:
    configured = os.environ.get(PROMTOOL_ENV)
    path = (Path(configured) if configured else CACHED_PROMTOOL).with_name("prometheus")
    if not path.exists():
        message = f"prometheus 3.x not found beside promtool at {path}"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def _proxy(shop: ShopServer, accept: str) -> Any:
    def handle(h: BaseHTTPRequestHandler) -> None:
        req = urllib.request.Request(shop.url + "/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=5) as resp:
            respond(resp.read(), resp.headers["Content-Type"])(h)

    return handle


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


def test_matches_prometheus(shop: ShopServer, tmp_path: Path) -> None:
    """For the demo shop in both formats, with honor_labels off and a conflicting label,
    Prometheus 3.x and the scrape stage store the same label sets and synthetic values."""
    binary = _prometheus()
    proxies = {name: Target(_proxy(shop, accept)) for name, accept in FORMATS.items()}
    port = free_port()
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [
        {"job_name": name, "static_configs": [{"targets": [p.address],
                                               "labels": {"route": "conflict"}}]}
        for name, p in proxies.items()]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [str(binary), f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _ready(port), 20), "prometheus did not start"
        assert wait_until(lambda: len(_query(port, "count_over_time(up[1m]) >= 2")) == 2, 20)
        for name, proxy in proxies.items():
            job = make_job(proxy.address, name=name, labels={"route": "conflict"})
            assert job.static_configs == (StaticConfig((proxy.address,),
                                                       make_labels({"route": "conflict"})),)
            store = SeriesStore()
            scraper = TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                                    keep_names=None)
            scraper.scrape(1000)
            scraper.scrape(2000)
            theirs = {_labels(r["metric"]) for r in _query(port, f'{{job="{name}"}}')}
            ours = {s.labels for s in store}
            assert len(ours) > 100 and ours == theirs
            for metric in SYNTHETIC:
                value = float(_query(port, f'{metric}{{job="{name}"}}')[0]["value"][1])
                mine = store.get(make_labels({**dict(job.static_targets()[0].labels),
                                              "__name__": metric}))
                assert mine is not None and mine.last() == (2000, value), metric
    finally:
        proc.terminate()
        proc.wait(10)
        for p in proxies.values():
            p.stop()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _labels(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return make_labels(metric)

