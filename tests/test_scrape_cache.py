"""The scrape cache (series text -> stored series) and UTF-8 names on the scrape path.

The cached path must store exactly what the plain path (every line parsed and relabelled)
stores, scrape after scrape, over random expositions; and Prometheus 3.5's default name
validation (utf8) must accept quoted UTF-8 names, with legacy validation on request.
"""

from __future__ import annotations

import dataclasses
import random
from http.server import BaseHTTPRequestHandler

import pytest

from exporter.config_scrape import ScrapeJob
from exporter.relabel import RelabelConfig
from exporter.scrape_target import ScrapeReport, TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.scrape_fixtures import OPENMETRICS, TEXT, Target, make_job, respond, series_labels


class _Body:
    """A target whose body and Content-Type the test changes between scrapes."""

    def __init__(self, body: str = "", content_type: str = TEXT) -> None:
        self.body, self.content_type = body, content_type

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        respond(self.body, self.content_type)(h)


def _scraper(job: ScrapeJob, store: SeriesStore, *, cache: bool = True,
             keep_names: frozenset[str] | None = None,
             legacy_names: bool = False) -> TargetScraper:
    return TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                         keep_names=keep_names, series_cache=cache, legacy_names=legacy_names)


# -- UTF-8 names ------------------------------------------------------------------------

UTF8_CASES = [
    # (body, stored labels besides job/instance): Prometheus 3.5 stores the names as written.
    ('{"cache.hits","cache.tier"="l1"} 3\n', {"__name__": "cache.hits", "cache.tier": "l1"}),
    ('cache_hits{"cache.tier"="l1"} 3\n', {"__name__": "cache_hits", "cache.tier": "l1"}),
    ('{"señal.total","región"="eu"} 3\n', {"__name__": "señal.total", "región": "eu"}),
]


@pytest.mark.parametrize(("body", "labels"), UTF8_CASES,
                         ids=["quoted-metric-and-label", "quoted-label", "non-ascii"])
@pytest.mark.parametrize("cache", [True, False], ids=["cached", "plain"])
def test_utf8_names_are_accepted(body: str, labels: dict[str, str], cache: bool) -> None:
    """UTF-8 metric and label names scrape fine under the default (utf8) validation scheme."""
    with Target(respond(body)) as server:
        job = make_job(server.address)
        store = SeriesStore()
        scraper = _scraper(job, store, cache=cache)
        reports = [scraper.scrape(t) for t in (1000, 2000)]
    assert [(r.up, r.error) for r in reports] == [(True, "")] * 2
    others = {k: v for k, v in labels.items() if k != "__name__"}
    series = store.get(series_labels(labels["__name__"], job, **others))
    assert series is not None
    assert list(series.vs) == [3.0, 3.0]  # one sample a scrape


@pytest.mark.parametrize(("body", "error"), [
    ('{"cache.hits"} 3\n', "invalid metric name 'cache.hits'"),
    ('cache_hits{"cache.tier"="l1"} 3\n', "invalid label name 'cache.tier'"),
], ids=["metric-name", "label-name"])
def test_legacy_validation_refuses_utf8_names(body: str, error: str) -> None:
    """With legacy name validation the whole scrape fails on a UTF-8 name, as in Prometheus."""
    with Target(respond(body)) as server:
        job = make_job(server.address)
        report = _scraper(job, SeriesStore(), legacy_names=True).scrape(1000)
    assert (report.up, report.reason, report.error) == (False, "parse_error", error)


# -- cached path == plain path ----------------------------------------------------------

# A pool of sample lines (text format; `{v}` is the value); each scrape serves a random subset,
# so series come, go and come back. Covered: escapes, empty values, quoted names, `le` and
# `quantile` read under different TYPE lines, the same series written two ways, labels that
# clash with the target's, and a line whose labels repeat (an error when served).
POOL = [
    "plain_total {v}",
    'req_total{{code="200",method="get"}} {v}',
    'req_total{{code="500",method="get"}} {v}',
    'req_total{{method="get",code="200"}} {v}',  # the first req_total line, another order
    'esc{{path="a\\\\b\\"c\\nd"}} {v}',
    'empty{{a="",b="x"}} {v}',
    'clash{{job="other",instance="i"}} {v}',
    'lat_bucket{{le="1"}} {v}',
    'lat_bucket{{le="+Inf"}} {v}',
    'lat{{quantile="0.5"}} {v}',
    '{{"cache.hits","cache.tier"="l1"}} {v}',
    'dropme{{x="1"}} {v}',
    'renamed{{x="2"}} {v}',
]
TYPES = ["# TYPE lat_bucket histogram", "# TYPE lat summary", "# TYPE other gauge"]
RELABEL = (
    RelabelConfig(action="drop", source_labels=("__name__",), regex="dropme"),
    RelabelConfig(action="replace", source_labels=("x",), regex="2", target_label="y",
                  replacement="two"),
    RelabelConfig(action="drop", source_labels=("code",), regex="5.."),
)


def _body(rng: random.Random, fmt: str, scrape: int) -> str:
    """One random exposition: a subset of POOL, random values, sometimes timestamps and
    duplicate lines, and TYPE lines that change how `le`/`quantile` are read."""
    lines = []
    for line in rng.sample(POOL, rng.randint(0, len(POOL))):
        value = rng.choice(["1", "2.5", "NaN", "+Inf", str(rng.randint(0, 9))])
        sample = line.format(v=value)
        if rng.random() < 0.15:  # an own timestamp, later each scrape
            sample += f" {scrape}.5" if fmt == OPENMETRICS else f" {scrape * 1000 + 500}"
        lines.append(sample)
        if rng.random() < 0.1:
            lines.append(sample if rng.random() < 0.5 else line.format(v="7"))
        if rng.random() < 0.2:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(TYPES))
    if rng.random() < 0.05:
        lines.append('bad{a="1",a="2"} 1')  # fails the scrape: no new cache entry
    text = "".join(f"{line}\n" for line in lines)
    return text + "# EOF\n" if fmt == OPENMETRICS else text


def _snapshot(store: SeriesStore) -> dict[tuple[tuple[str, str], ...], list[tuple[int, str]]]:
    # repr() so NaN (and the stale-marker NaN) compare equal by value; durations differ.
    return {s.labels: [(t, repr(v)) for t, v in zip(s.ts, s.vs, strict=True)] for s in store
            if ("__name__", "scrape_duration_seconds") not in s.labels}


def _outcome(report: ScrapeReport) -> tuple[object, ...]:
    d = dataclasses.asdict(report)
    del d["duration_seconds"]
    return tuple(d.values())


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed-{s}")
def test_cached_path_agrees_with_plain_path(seed: int) -> None:
    """Over twelve scrapes of random expositions, the cached and the plain scraper write the
    same samples (stale markers included) and the same synthetic series."""
    rng = random.Random(seed)
    fmt = rng.choice([TEXT, OPENMETRICS])
    job_changes = {"honor_labels": rng.random() < 0.5,
                   "honor_timestamps": rng.random() < 0.7,
                   "metric_relabel_configs": RELABEL if rng.random() < 0.7 else ()}
    keep = frozenset({"req_total", "lat_bucket", "cache.hits"}) if seed % 4 == 3 else None
    target = _Body(content_type=fmt)
    with Target(target) as server:
        job = make_job(server.address, **job_changes)
        stores = SeriesStore(), SeriesStore()
        cached = _scraper(job, stores[0], keep_names=keep)
        plain = _scraper(job, stores[1], cache=False, keep_names=keep)
        for scrape in range(1, 13):
            target.body = _body(rng, fmt, scrape)
            t_ms = scrape * 1000
            assert _outcome(cached.scrape(t_ms)) == _outcome(plain.scrape(t_ms)), target.body
    assert _snapshot(stores[0]) == _snapshot(stores[1])


def test_cache_keeps_only_what_the_last_scrape_saw() -> None:
    """Series that leave the exposition leave the cache; a dropped series text is cached too."""
    target = _Body('a{x="1"} 1\na{x="2"} 1\ndropme 1\n')
    with Target(target) as server:
        job = make_job(server.address, metric_relabel_configs=RELABEL[:1])
        scraper = _scraper(job, SeriesStore())
        scraper.scrape(1000)
        first = scraper.cached_series()  # a{x="1"}, a{x="2"}, dropme: 3
        target.body = 'a{x="2"} 1\n'
        scraper.scrape(2000)
        second = scraper.cached_series()  # a{x="2"}: 1
    assert (first, second) == (3, 1)


def test_new_scraper_on_reload_applies_new_relabel_rules() -> None:
    """A reload with other relabel rules hands over series state but not the cache, so known
    series texts are relabelled by the new rules."""
    with Target(respond('a{x="1"} 1\n')) as server:
        job = make_job(server.address)
        store = SeriesStore()
        old = _scraper(job, store)
        old.scrape(1000)
        new_job = dataclasses.replace(job, metric_relabel_configs=(RelabelConfig(
            action="replace", source_labels=("x",), target_label="y", replacement="$1"),))
        new = _scraper(new_job, store)
        old.handover(new)
        report = new.scrape(2000)
    # The old series gets a stale marker (it left the target's output); the new one a sample.
    assert (report.up, report.stale_markers, report.series_added) == (True, 1, 1)
    assert store.get(series_labels("a", job, x="1", y="1")) is not None
