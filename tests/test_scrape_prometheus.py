"""The same targets scraped by real Prometheus 3.x and by the scrape stage give the same series."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from exporter.config_scrape import StaticConfig
from exporter.demo.shop import ShopServer, start_shop
from exporter.labels import make_labels
from exporter.relabel import RelabelConfig
from exporter.scrape import TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.promtool import PrometheusServer
from tests.scrape_fixtures import Target, make_job, respond, wait_until

FORMATS = {"text": "text/plain;version=0.0.4",
           "openmetrics": "application/openmetrics-text;version=1.0.0"}
SYNTHETIC = ("up", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added")


def _proxy(shop: ShopServer, accept: str) -> Any:
    def handle(h: BaseHTTPRequestHandler) -> None:
        req = urllib.request.Request(shop.url + "/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=5) as resp:
            respond(resp.read(), resp.headers["Content-Type"])(h)

    return handle


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


def test_matches_prometheus(shop: ShopServer, tmp_path: Path) -> None:
    """For the demo shop in both formats, with honor_labels off and a conflicting label,
    Prometheus 3.x and the scrape stage store the same label sets and synthetic values."""
    proxies = {name: Target(_proxy(shop, accept)) for name, accept in FORMATS.items()}
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [
        {"job_name": name, "static_configs": [{"targets": [p.address],
                                               "labels": {"route": "conflict"}}]}
        for name, p in proxies.items()]}
    try:
        prometheus = PrometheusServer(config, tmp_path)
    except BaseException:
        for p in proxies.values():
            p.stop()
        raise
    _query = prometheus.query
    try:
        assert wait_until(lambda: len(_query("count_over_time(up[1m]) >= 2")) == 2, 20)
        for name, proxy in proxies.items():
            job = make_job(proxy.address, name=name, labels={"route": "conflict"})
            assert job.static_configs == (StaticConfig((proxy.address,),
                                                       make_labels({"route": "conflict"})),)
            store = SeriesStore()
            scraper = TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                                    keep_names=None)
            scraper.scrape(1000)
            scraper.scrape(2000)
            theirs = {_labels(r["metric"]) for r in _query(f'{{job="{name}"}}')}
            ours = {s.labels for s in store}
            assert len(ours) > 100 and ours == theirs
            for metric in SYNTHETIC:
                value = float(_query(f'{metric}{{job="{name}"}}')[0]["value"][1])
                mine = store.get(make_labels({**dict(job.static_targets()[0].labels),
                                              "__name__": metric}))
                assert mine is not None and mine.last() == (2000, value), metric
    finally:
        prometheus.stop()
        for p in proxies.values():
            p.stop()


def _labels(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return make_labels(metric)



UTF8_BODY = """# TYPE "cache.hits" gauge
{"cache.hits","cache.tier"="l1",instance="a"} 3
{"cache.hits","cache.tier"="l2",instance="a"} 4
plain_total{"http.route"="/x",code="200"} 5
plain_total{"http.route"="/x",code="500"} 6
"""


def test_utf8_names_match_prometheus(tmp_path: Path) -> None:
    """Quoted UTF-8 metric and label names, with a metric_relabel_configs drop, scraped twice
    (the second time from the series cache): Prometheus 3.5 and the scrape stage store the
    same label sets."""
    relabel = [{"action": "drop", "source_labels": ["code"], "regex": "5.."}]
    with Target(respond(UTF8_BODY)) as target:
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                  "scrape_configs": [{"job_name": "utf8", "metric_relabel_configs": relabel,
                                      "static_configs": [{"targets": [target.address]}]}]}
        prometheus = PrometheusServer(config, tmp_path)
        try:
            query = prometheus.query
            assert wait_until(lambda: len(query("count_over_time(up[1m]) >= 2")) == 1, 20)
            theirs = {_labels(r["metric"]) for r in query('{job="utf8"}')}
        finally:
            prometheus.stop()
        job = make_job(target.address, name="utf8", metric_relabel_configs=(RelabelConfig(
            action="drop", source_labels=("code",), regex="5.."),))
        store = SeriesStore()
        scraper = TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                                keep_names=None)
        reports = [scraper.scrape(1000), scraper.scrape(2000)]
    assert [r.up for r in reports] == [True, True]
    ours = {s.labels for s in store}
    # 3 kept samples (the code="500" one dropped) plus the 5 synthetic series, on both sides.
    assert len(ours) == 8 and ours == theirs
