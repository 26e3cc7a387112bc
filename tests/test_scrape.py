"""Scrape stage semantics: synthetic series, labels, relabelling, limits, staleness, reloads."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from exporter import conventions as c
from exporter.config_scrape import ScrapeJob
from exporter.demo.shop import ShopServer, start_shop
from exporter.exposition import parse_exposition
from exporter.labels import Labels, is_stale, make_labels
from exporter.relabel import RelabelConfig
from exporter.scrape import ScrapeManager
from exporter.scrape_http import media_type
from exporter.scrape_target import TargetScraper, count_sample_lines
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.scrape_fixtures import (
    OPENMETRICS,
    TEXT,
    Target,
    last_value,
    make_job,
    respond,
    series_labels,
)

SYNTHETIC = (c.UP, c.SCRAPE_DURATION, c.SCRAPE_SAMPLES_SCRAPED,
             c.SCRAPE_SAMPLES_POST_RELABELING, c.SCRAPE_SERIES_ADDED)


def _scraper(job: ScrapeJob, store: SeriesStore,
             keep_names: frozenset[str] | None = None) -> TargetScraper:
    return TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                         keep_names=keep_names)


def _synthetic(store: SeriesStore, job: ScrapeJob) -> dict[str, tuple[int, float] | None]:
    return {name: last_value(store, series_labels(name, job)) for name in SYNTHETIC}


class _Body:
    """A target whose body the test changes between scrapes."""

    def __init__(self, body: str, content_type: str = TEXT) -> None:
        self.body, self.content_type = body, content_type

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        respond(self.body, self.content_type)(h)


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


def _proxy(shop: ShopServer, accept: str) -> Any:
    """A handler that serves the shop's metrics in the format `accept` asks for."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        req = urllib.request.Request(shop.url + "/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=5) as resp:
            respond(resp.read(), resp.headers["Content-Type"])(h)

    return handle


@pytest.mark.parametrize("accept", ["text/plain;version=0.0.4",
                                    "application/openmetrics-text;version=1.0.0"],
                         ids=["text-0.0.4", "openmetrics-1.0.0"])
def test_demo_shop_synthetic_series(shop: ShopServer, accept: str) -> None:
    """The demo shop in each format gives the synthetic series Prometheus writes: up 1, every
    sample counted, all series new on the first scrape and none on the second."""
    with Target(_proxy(shop, accept)) as server:
        job = make_job(server.address, labels={"team": "shop"})
        store = SeriesStore()
        scraper = _scraper(job, store)
        body = urllib.request.urlopen(f"http://{server.address}/metrics").read()
        n = len(parse_exposition(body, server.seen[-1].get("Content-Type") or (
            "application/openmetrics-text" if "openmetrics" in accept else "text/plain")).samples)
        first = scraper.scrape(10_000)
        second = scraper.scrape(25_000)
    assert n > 100 and first.up and second.up
    values = _synthetic(store, job)
    assert values[c.UP] == (25_000, 1.0)
    assert values[c.SCRAPE_SAMPLES_SCRAPED] == (25_000, float(n))
    assert values[c.SCRAPE_SAMPLES_POST_RELABELING] == (25_000, float(n))
    assert values[c.SCRAPE_SERIES_ADDED] == (25_000, 0.0)
    assert (first.series_added, second.series_added) == (n, 0)
    duration = values[c.SCRAPE_DURATION]
    assert duration is not None and 0 < duration[1] == second.duration_seconds < 2
    assert series_labels(c.UP, job) == make_labels(
        {"__name__": "up", "job": "test", "instance": server.address, "team": "shop"})
    family = "shop_http_requests" + ("" if "openmetrics" in accept else "_total")
    assert store.metadata[family].type == "counter"
    assert store.metadata[c.UP].type == "gauge"


@pytest.mark.parametrize("accept", ["text/plain;version=0.0.4",
                                    "application/openmetrics-text;version=1.0.0"],
                         ids=["text-0.0.4", "openmetrics-1.0.0"])
def test_keep_names_filters_but_counts_everything(shop: ShopServer, accept: str) -> None:
    """keep_names stores only the named families, yet scrape_samples_scraped counts them all."""
    keep = frozenset({"shop_http_requests_total", "shop_orders_total"})
    with Target(_proxy(shop, accept)) as server:
        job = make_job(server.address)
        full, filtered = SeriesStore(), SeriesStore()
        all_report = _scraper(job, full).scrape(1000)
        kept_report = _scraper(job, filtered, keep).scrape(1000)
    names = set(filtered.metric_names()) - set(SYNTHETIC)
    assert names == keep & set(full.metric_names())
    assert kept_report.samples_scraped == all_report.samples_scraped
    assert kept_report.samples_post_relabeling < all_report.samples_post_relabeling
    assert any(k.startswith("shop_http_requests") for k in filtered.metadata)
    assert not any(k.startswith("shop_payments") for k in filtered.metadata)
    assert any(k.startswith("shop_payments") for k in full.metadata)


BODY = 'a{instance="scraped",job="scraped",x="1"} 1\nb 2\n'


@pytest.mark.parametrize(("honor", "expected"), [
    (False, {"__name__": "a", "job": "test", "instance": "@", "exported_job": "scraped",
             "exported_instance": "scraped", "x": "1", "env": "prod"}),
    (True, {"__name__": "a", "job": "scraped", "instance": "scraped", "x": "1", "env": "prod"}),
], ids=["honor_labels-false", "honor_labels-true"])
def test_honor_labels(honor: bool, expected: dict[str, str]) -> None:
    """Conflicting scraped labels become exported_<name> unless honor_labels keeps them."""
    with Target(respond(BODY)) as server:
        job = make_job(server.address, honor_labels=honor, labels={"env": "prod"})
        store = SeriesStore()
        assert _scraper(job, store).scrape(1000).up
    want = {k: (server.address if v == "@" else v) for k, v in expected.items()}
    assert store.get(make_labels(want)) is not None


def test_exported_prefix_repeats_until_free() -> None:
    """A scraped exported_job pushes the conflicting job to exported_exported_job, as
    Prometheus 3.5 does."""
    body = 'a{job="x",exported_job="z"} 1\n'
    with Target(respond(body)) as server:
        job = make_job(server.address)
        store = SeriesStore()
        assert _scraper(job, store).scrape(1000).up
    want = series_labels("a", job, exported_job="z", exported_exported_job="x")
    assert store.get(want) is not None


@pytest.mark.parametrize(("action", "stored"), [("keep", {"a"}), ("drop", {"b"})],
                         ids=["keep", "drop"])
def test_metric_relabel(action: str, stored: set[str]) -> None:
    """metric_relabel_configs keep/drop decide what is stored and what post-relabel counts."""
    rule = RelabelConfig(action=action, source_labels=("__name__",), regex="a")
    with Target(respond(BODY)) as server:
        job = make_job(server.address, metric_relabel_configs=(rule,))
        store = SeriesStore()
        report = _scraper(job, store).scrape(1000)
    assert (report.samples_scraped, report.samples_post_relabeling) == (2, 1)
    assert set(store.metric_names()) - set(SYNTHETIC) == stored


@pytest.mark.parametrize(("limits", "up", "reason"), [
    ({"sample_limit": 2}, True, ""),
    ({"sample_limit": 1}, False, "sample_limit"),
    ({"label_limit": 4}, True, ""),
    ({"label_limit": 3}, False, "label_limit"),
    ({"label_name_length_limit": 8}, True, ""),
    ({"label_name_length_limit": 7}, False, "label_limit"),
    ({"label_value_length_limit": 15}, True, ""),
    ({"label_value_length_limit": 14}, False, "label_limit"),
], ids=lambda v: "-".join(f"{k}={n}" for k, n in v.items()) if isinstance(v, dict) else None)
def test_limits_fail_the_whole_scrape(limits: dict[str, int], up: bool, reason: str) -> None:
    """A limit breached by any series fails the scrape and stores none of its samples."""
    # a: __name__, instance, job, x_label (4 labels, longest name 8, longest value 15).
    body = 'a{x_label="short"} 1\nb 2\n'
    with Target(respond(body)) as server:
        job = make_job(server.address, limits=limits)
        store = SeriesStore()
        report = _scraper(job, store).scrape(1000)
    assert (report.up, report.reason) == (up, reason), report.error
    assert (store.get(series_labels("b", job)) is not None) is up
    assert _synthetic(store, job)[c.UP] == (1000, 1.0 if up else 0.0)
    if reason == "sample_limit":
        # Prometheus reads on after the limit, so the counts are complete.
        assert (report.samples_scraped, report.samples_post_relabeling) == (2, 2)


def _stale(store: SeriesStore, labels: Labels, t_ms: int) -> bool:
    last = last_value(store, labels)
    return last is not None and last[0] == t_ms and is_stale(last[1])


def test_stale_markers_on_disappearance_failure_and_close() -> None:
    """A series that disappears, every series on a failed scrape, and everything on close()
    get stale markers at the right timestamps; timestamped series get none."""
    body = _Body("a 1\nb 2\nc 3 500\n")
    with Target(body) as server:
        job = make_job(server.address)
        store = SeriesStore()
        scraper = _scraper(job, store)
        a, b, cc = (series_labels(n, job) for n in "abc")
        assert scraper.scrape(1000).up
        body.body = "a 1\n"
        report = scraper.scrape(2000)
        assert report.up and report.stale_markers == 1
        assert _stale(store, b, 2000) and last_value(store, a) == (2000, 1.0)
        assert last_value(store, cc) == (500, 3.0)  # own timestamp: not tracked
        body.body = "a{"
        report = scraper.scrape(3000)
        assert (report.up, report.reason, report.stale_markers) == (False, "parse_error", 1)
        assert _stale(store, a, 3000)
        assert scraper.scrape(4000).stale_markers == 0  # nothing left to mark
        body.body = "a 5\n"
        recovered = scraper.scrape(5000)
        assert recovered.up and recovered.series_added == 0  # a was known before the failure
        scraper.close(6000)
    assert _stale(store, a, 6000)
    for name in SYNTHETIC:
        assert _stale(store, series_labels(name, job), 6000)
    assert scraper.scrape(7000).error == "target removed"


@pytest.mark.parametrize(("honor", "stored_t"), [(True, 500), (False, 1000)],
                         ids=["honor_timestamps-true", "honor_timestamps-false"])
def test_honor_timestamps(honor: bool, stored_t: int) -> None:
    """Scraped timestamps are kept, or replaced by the scrape time when honor_timestamps is off."""
    with Target(respond("a 1 500\n")) as server:
        job = make_job(server.address, honor_timestamps=honor)
        store = SeriesStore()
        assert _scraper(job, store).scrape(1000).up
    assert last_value(store, series_labels("a", job)) == (stored_t, 1.0)


def test_empty_body_is_an_empty_scrape() -> None:
    """An empty 200 response is a successful scrape with no samples, as in Prometheus."""
    with Target(respond("", content_type=None)) as server:
        report = _scraper(make_job(server.address), SeriesStore()).scrape(1000)
    assert report.up and report.samples_scraped == 0


def test_scrape_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error inside the scrape becomes up 0 with reason other."""
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("exporter.scrape_target.parse_exposition", boom)
    with Target(respond(BODY)) as server:
        report = _scraper(make_job(server.address), SeriesStore()).scrape(1000)
    assert (report.up, report.reason) == (False, "other")


@pytest.mark.parametrize(("content_type", "fallback", "expected"), [
    ("text/plain; version=0.0.4", None, "text/plain"),
    ("Application/OpenMetrics-Text; version=1.0.0", None, "application/openmetrics-text"),
    ("", "OpenMetricsText1.0.0", "application/openmetrics-text"),
    ("text/html", "PrometheusText0.0.4", "text/plain"),
    ("not a type", "PrometheusText1.0.0", "text/plain"),
    ("", None, None),
    ("application/vnd.google.protobuf", None, None),
], ids=["text", "openmetrics-mixed-case", "blank-with-fallback", "html-with-fallback",
        "malformed-with-fallback", "blank", "protobuf"])
def test_media_type(content_type: str, fallback: str | None, expected: str | None) -> None:
    """The parser is chosen from Content-Type, else fallback_scrape_protocol, else failure."""
    if expected is None:
        with pytest.raises(Exception, match="no fallback_scrape_protocol"):
            media_type(content_type, fallback)
    else:
        assert media_type(content_type, fallback) == expected


def test_count_sample_lines() -> None:
    """Sample lines are counted without parsing: comments and blank lines are not samples."""
    assert count_sample_lines(b"# HELP a x\n# TYPE a gauge\na 1\n\nb 2") == 2
    assert count_sample_lines(b"a 1\n# EOF\n") == 1
    assert count_sample_lines(b"") == 0


def test_manager_reload_keeps_replaces_and_closes() -> None:
    """apply() keeps unchanged scrapers, hands state to changed ones without stale markers,
    and closes removed ones with stale markers."""
    with Target(respond("a 1\n")) as one, Target(respond("a 2\n")) as two:
        store = SeriesStore()
        manager = ScrapeManager(store, SelfMetrics(), None)
        job = make_job(one.address)
        job = ScrapeJob(**{**job.__dict__, "static_configs": (
            type(job.static_configs[0])((one.address, two.address)),)})
        manager.apply([job])
        first = {s.target.address: s for s in manager.scrapers()}
        for s in first.values():
            assert s.scrape(1000).up
        manager.apply([job])
        assert {s.target.address: s for s in manager.scrapers()} == first  # same objects
        changed = ScrapeJob(**{**job.__dict__, "honor_timestamps": False,
                               "static_configs": (type(job.static_configs[0])((one.address,)),)})
        targets = manager.apply([changed])
        assert [t.address for t in targets] == [one.address]
        kept = manager.scrapers()[0]
        assert kept is not first[one.address] and kept.health.state == "up"
        a_one = make_labels({"__name__": "a", "job": "test", "instance": one.address})
        a_two = make_labels({"__name__": "a", "job": "test", "instance": two.address})
        assert not _is_stale_now(store, a_one)  # changed config: no stale markers
        assert _is_stale_now(store, a_two)  # removed target: stale
        report = kept.scrape(2000)
        assert report.up and report.series_added == 0
        manager.close()


def _is_stale_now(store: SeriesStore, labels: Labels) -> bool:
    last = last_value(store, labels)
    return last is not None and is_stale(last[1])


def test_openmetrics_target_with_created_series() -> None:
    """An OpenMetrics body is parsed as such (its _created series counted as samples)."""
    body = "# TYPE a counter\na_total 1\na_created 1.5e9\n# EOF\n"
    with Target(respond(body, OPENMETRICS)) as server:
        job = make_job(server.address)
        store = SeriesStore()
        report = _scraper(job, store).scrape(1000)
    assert report.up and report.samples_scraped == 2
    created = last_value(store, series_labels("a_created", job))
    assert created is not None and math.isclose(created[1], 1.5e9)
