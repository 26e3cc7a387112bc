"""The scrape stage for one target (scrape -> parse -> relabel -> store): TargetScraper.

Follows Prometheus 3.5's scrapeLoop: target labels attached (honor_labels), metric_relabel_configs
applied, limits checked with the whole scrape failing on any breach, samples appended at the
scrape timestamp, stale markers for series that disappeared, and the synthetic `up` and
`scrape_*` series written after every attempt. scrape() never raises: a failure is `up 0`, a
counter increment and one log line.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from exporter import conventions as c
from exporter.config_scrape import ScrapeJob, ScrapeTarget
from exporter.exposition import ExpositionError, Miss, parse_exposition
from exporter.labels import METRIC_NAME, STALE_NAN, Labels
from exporter.scrape_http import FetchError, HTTPFetcher, media_type
from exporter.scrape_series import (
    DROPPED_SAMPLE,
    Dropped,
    SeriesCache,
    check_labels,
    mutate_labels,
)
from exporter.selfmetrics import SelfMetrics
from exporter.store import MetricMetadata, Series, SeriesStore, append_sample

log = logging.getLogger("value_exporter.scrape")

TargetKey = tuple[str, str, Labels]  # job name, address, target labels

# What Prometheus's scrape loop says about its synthetic series.
_REPORT_HELP: Final = {
    c.UP: "Health of the scrape target. 1 means the target is healthy, 0 if the scrape failed.",
    c.SCRAPE_DURATION: "Duration of the last scrape in seconds.",
    c.SCRAPE_SAMPLES_SCRAPED: "Number of samples last scraped.",
    c.SCRAPE_SAMPLES_POST_RELABELING: "Number of samples remaining after metric relabeling "
                                      "was applied.",
    c.SCRAPE_SERIES_ADDED: "Number of series in the last scrape.",
}


@dataclass(frozen=True)
class ScrapeReport:
    """The outcome of one scrape, as the synthetic series report it."""

    t_ms: int
    up: bool
    duration_seconds: float
    samples_scraped: int
    samples_post_relabeling: int
    series_added: int
    stale_markers: int = 0
    error: str = ""
    reason: str = ""  # one of conventions.SCRAPE_FAILURE_REASONS, "" when up


@dataclass(frozen=True)
class TargetHealth:
    """What /api/v1/targets shows for a target: state is "up", "down" or "unknown"."""

    state: str = "unknown"
    last_scrape_ms: int | None = None
    last_duration_s: float = 0.0
    last_error: str = ""


def discovered_labels(target: ScrapeTarget, meta: Labels = ()) -> Labels:
    """The labels Prometheus lists as discoveredLabels: target settings before relabelling."""
    job = target.job
    d = {
        "__address__": target.address, "__metrics_path__": job.metrics_path,
        "__scheme__": job.scheme, "__scrape_interval__": str(job.scrape_interval),
        "__scrape_timeout__": str(job.scrape_timeout),
    }
    d.update((k, v) for k, v in target.labels if k != "instance")
    d.update(meta)
    return tuple(sorted(d.items()))


def may_rename_metrics(job: ScrapeJob) -> bool:
    """Whether metric_relabel_configs can write `__name__`, so filtering by name before
    relabelling could drop what a rule needs."""
    for cfg in job.metric_relabel_configs:
        if cfg.action == "labelmap" or cfg.target_label == METRIC_NAME or "$" in cfg.target_label:
            return True
    return False


def count_sample_lines(body: bytes) -> int:
    """Lines that are neither blank nor comments: the samples a body holds, counted in C.

    Exact for ordinary expositions; off only for lines the parser joins or that start with
    blanks before `#`."""
    if not body:
        return 0
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    comments = body.count(b"\n#") + (1 if body.startswith(b"#") else 0)
    blanks = body.count(b"\n\n") + (1 if body.startswith(b"\n") else 0)
    return max(lines - comments - blanks, 0)


# What a scrape hands on: a stored series, or final labels not yet stored (a new series).
_Out = tuple[Series | Labels, float, int | None]


@dataclass
class _Carry:
    """State a scraper hands to its replacement when only its config changed (a reload)."""

    prev: set[Series]
    known: set[Series]
    health: TargetHealth
    last_t_ms: int | None


class TargetScraper:
    """Scrapes one target into the store; one requests.Session; safe to close mid-scrape."""

    def __init__(self, target: ScrapeTarget, job: ScrapeJob, store: SeriesStore,
                 metrics: SelfMetrics, *, keep_names: frozenset[str] | None,
                 meta: Labels = (), series_cache: bool = True,
                 legacy_names: bool = False) -> None:
        self.target = target
        self.job = job
        self.store = store
        self.metrics = metrics
        self.keep_names = None if may_rename_metrics(job) else keep_names
        self.name = f"{job.job_name}/{target.address}"  # the `target` label of self-metrics
        self.discovered_labels = discovered_labels(target, meta)
        self._fetcher = HTTPFetcher(job)
        self._lock = threading.Lock()
        self._closed = False
        self._prev: set[Series] = set()  # series the last successful scrape wrote, no own ts
        self._known: set[Series] = set()  # series seen before, for scrape_series_added
        self._unstored: set[Labels] = set()  # ... and those a sample_limit failure saw
        # None: the plain path, every line parsed and relabelled (tests compare the two).
        self._cache = SeriesCache() if series_cache else None
        self.legacy_names = legacy_names
        self._health = TargetHealth()
        self._last_t_ms: int | None = None
        self._target_pairs = tuple(p for p in target.labels if not p[0].startswith("__"))
        self._report_labels = {
            name: tuple(sorted(((METRIC_NAME, name), *self._target_pairs)))
            for name in _REPORT_HELP
        }

    def set_keep_names(self, keep_names: frozenset[str] | None) -> None:
        """Change the families kept (the rules changed); applies from the next scrape."""
        with self._lock:
            self.keep_names = None if may_rename_metrics(self.job) else keep_names

    @property
    def key(self) -> TargetKey:
        """Job, address and target labels: what a reload compares to keep this scraper."""
        return (self.job.job_name, self.target.address, self.target.labels)

    def cached_series(self) -> int:
        """Series texts in the scrape cache (kept or dropped by relabelling)."""
        return 0 if self._cache is None else len(self._cache)

    @property
    def health(self) -> TargetHealth:
        """A snapshot of the last scrape's outcome."""
        return self._health

    def scrape(self, t_ms: int) -> ScrapeReport:
        """Scrape once with timestamp t_ms; never raises."""
        with self._lock:
            if self._closed:
                return ScrapeReport(t_ms, False, 0.0, 0, 0, 0, error="target removed",
                                    reason="other")
            start = time.monotonic()
            try:
                report = self._scrape(t_ms, start)
            except Exception as exc:  # a bug must cost one scrape, never the daemon
                log.exception("event=scrape_crashed target=%s", self.name)
                report = self._fail(t_ms, start, "other", f"internal error: {type(exc).__name__}")
            self._finish(report)
            return report

    def close(self, t_ms: int | None = None, *, stale: bool = True) -> None:
        """Stop for good: stale markers for everything last written (as Prometheus does when a
        target goes away), then drop the connections. stale=False skips the markers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if stale and self._last_t_ms is not None:
                now = int(time.time() * 1000) if t_ms is None else t_ms
                ts = max(now, self._last_t_ms + 1)
                for labels in (*(s.labels for s in self._prev), *self._report_labels.values()):
                    self.store.append(labels, ts, STALE_NAN)
                self._prev = set()
            self._fetcher.close()

    def handover(self, successor: TargetScraper) -> None:
        """Give series state to the scraper replacing this one after a config change, so the
        reload writes no stale markers (Prometheus reuses the scrape cache on reload)."""
        with self._lock:
            carry = _Carry(set(self._prev), set(self._known), self._health, self._last_t_ms)
        successor._adopt(carry)
        self.close(stale=False)

    def _adopt(self, carry: _Carry) -> None:
        with self._lock:
            self._prev, self._known = carry.prev, carry.known
            self._health, self._last_t_ms = carry.health, carry.last_t_ms

    # -- one scrape --------------------------------------------------------------------

    def _scrape(self, t_ms: int, start: float) -> ScrapeReport:
        deadline = start + self.job.scrape_timeout / 1000
        try:
            fetched = self._fetcher.fetch(self.target.url, deadline)
            if not fetched.body:
                # An empty body is an empty scrape to Prometheus, whatever its Content-Type.
                return self._succeed(t_ms, start, [], 0)
            media = media_type(fetched.content_type, self.job.fallback_scrape_protocol)
            parsed = parse_exposition(fetched.body, media, keep_names=self.keep_names,
                                      refs=None if self._cache is None else self._cache.refs)
            if self.keep_names is not None and not parsed.samples:
                # The name filter reads no line of other families, so a body that is not an
                # exposition at all (an HTML error page, garbage) would pass as empty. When
                # nothing was kept, parse everything once so such a body fails as it should.
                parse_exposition(fetched.body, media)
        except FetchError as exc:
            return self._fail(t_ms, start, exc.reason, exc.message)
        except ExpositionError as exc:
            return self._fail(t_ms, start, "parse_error", str(exc))
        if self.keep_names is None:
            total = len(parsed.samples)
        else:
            # The parser skips other families unread; count their lines instead.
            total = max(count_sample_lines(fetched.body), len(parsed.samples))
        self._store_metadata(parsed.metadata)
        honor_ts = self.job.honor_timestamps
        samples = parsed.samples
        firsts = list(map(_first, samples))
        kinds = set(map(type, firsts))
        # Cache hits (stored series, or Dropped for texts relabelling drops) stay as they are,
        # in C; only label sets (the plain path, new series texts) are relabelled and checked.
        hits: set[object] = set(firsts) if tuple not in kinds else {
            x for x in firsts if type(x) is not tuple}
        todo = [] if tuple not in kinds else [i for i, x in enumerate(firsts) if type(x) is tuple]
        del firsts
        out: list[Any] = list(samples)
        new: list[tuple[Miss, Labels | None]] = []  # cache entries to add, with final labels
        misses = iter(parsed.misses)
        miss = next(misses, None)
        dropped = Dropped in kinds
        for i in todo:
            item, value, ts = samples[i]
            final = mutate_labels(item, self._target_pairs, self.job.honor_labels,
                                  self.job.metric_relabel_configs)
            problem = None if final is None else check_labels(final, self.job.limits,
                                                              self.legacy_names)
            if problem is not None:
                counted = i + 1 if self.keep_names is None else total
                added = sum(1 for x in out[:i] if type(x[0]) is not Dropped)
                return self._fail(t_ms, start, *problem, total=counted, added=added)
            while miss is not None and miss[0] < i:
                miss = next(misses, None)
            if miss is not None and miss[0] == i:
                new.append((miss, final))
            if final is None:
                out[i] = DROPPED_SAMPLE
                dropped = True
            else:
                out[i] = (final, value, ts)
        if dropped:
            out = [x for x in out if type(x[0]) is not Dropped]
        if not honor_ts:
            out = [(item, value, None) for item, value, _ in out]
        limit = self.job.limits.sample_limit
        if limit and len(out) > limit:
            # Prometheus counts the series the first `limit` appends created before failing.
            known, unstored = self._known, self._unstored
            first = {self._labels_of(x[0]) for x in out[:limit]}
            added = len({labels for labels in first if labels not in unstored
                         and self.store.get(labels) not in known})
            # Known from now on (Prometheus's head keeps the series after the rollback); the
            # store gets nothing, so remember their labels until a scrape succeeds.
            unstored.update(self._labels_of(x[0]) for x in out)
            return self._fail(t_ms, start, "sample_limit", "sample limit exceeded",
                              total=total, added=len(out), series_added=added)
        return self._succeed(t_ms, start, out, total, hits, new)

    @staticmethod
    def _labels_of(item: Series | Labels) -> Labels:
        return item.labels if isinstance(item, Series) else item

    def _succeed(self, t_ms: int, start: float, out: list[_Out], total: int,
                 hits: set[object] | None = None,
                 new: list[tuple[Miss, Labels | None]] | None = None) -> ScrapeReport:
        known = self._known
        series_list = self._stored(out)
        if self._cache is not None:
            self._cache.update(self.store, hits or set(), new or [])
        seen = set(series_list)
        stamps = list(map(_third, out))
        own_ts = len(stamps) - stamps.count(None)
        cur = seen if not own_ts else {s for s, ts in zip(series_list, stamps, strict=True)
                                       if ts is None}
        added = seen - known
        unstored, self._unstored = self._unstored, set()
        if unstored:
            added = {s for s in added if s.labels not in unstored}
        refused = 0
        with self.store.write_lock:  # one scrape's samples land whole, never mid-truncation
            for series, (_, value, ts) in zip(series_list, out, strict=True):
                if append_sample(series, t_ms if ts is None else ts, value) != "ok":
                    refused += 1
        if refused:
            log.warning("event=samples_refused target=%s count=%d "
                        "cause=out_of_order_or_duplicate", self.name, refused)
        stale = self._write_stale(self._prev - cur, t_ms)
        self._prev, self._known = cur, seen
        return self._report(t_ms, start, True, total, len(out), len(added), stale)

    def _stored(self, out: list[_Out]) -> list[Series]:
        """The stored series of each out item: new ones created, and a cached series the store
        deleted meanwhile (truncation) looked up again by its labels."""
        store = self.store
        by_id = store.holds
        result: list[Series] = []
        for item, _, _ in out:
            if isinstance(item, Series):
                result.append(item if by_id(item) else store.get_or_create(item.labels))
            else:
                result.append(store.get_or_create(item))
        return result

    def _fail(self, t_ms: int, start: float, reason: str, error: str, *, total: int = 0,
              added: int = 0, series_added: int = 0) -> ScrapeReport:
        # Like Prometheus's empty append after a failure: every series the last successful
        # scrape wrote ends now; the next success starts from nothing.
        stale = self._write_stale(self._prev, t_ms)
        self._prev = set()
        return self._report(t_ms, start, False, total, added, series_added, stale, reason, error)

    def _write_stale(self, gone: set[Series], t_ms: int) -> int:
        for series in gone:
            self.store.append(series.labels, t_ms, STALE_NAN)
        return len(gone)

    def _report(self, t_ms: int, start: float, up: bool, total: int, added: int,
                series_added: int, stale: int, reason: str = "", error: str = "") -> ScrapeReport:
        duration = time.monotonic() - start
        values = {
            c.UP: 1.0 if up else 0.0,
            c.SCRAPE_DURATION: duration,
            c.SCRAPE_SAMPLES_SCRAPED: float(total),
            c.SCRAPE_SAMPLES_POST_RELABELING: float(added),
            c.SCRAPE_SERIES_ADDED: float(series_added),
        }
        for name, value in values.items():
            self.store.append(self._report_labels[name], t_ms, value)
            if name not in self.store.metadata:
                self.store.metadata[name] = MetricMetadata("gauge", _REPORT_HELP[name])
        return ScrapeReport(t_ms, up, duration, total, added, series_added, stale, error, reason)

    def _store_metadata(self, metadata: dict[str, MetricMetadata]) -> None:
        keep = self.keep_names
        target = self.store.metadata
        for family, meta in metadata.items():
            if keep is None or _family_kept(family, keep):
                target[family] = meta

    def _finish(self, report: ScrapeReport) -> None:
        self._last_t_ms = report.t_ms
        self._health = TargetHealth(
            state="up" if report.up else "down",
            last_scrape_ms=report.t_ms,
            last_duration_s=report.duration_seconds,
            last_error=report.error,
        )
        m, name = self.metrics, self.name
        m.scrapes.labels(name).inc()
        m.scrape_duration.labels(name).observe(report.duration_seconds)
        m.target_up.labels(name).set(1 if report.up else 0)
        if not report.up:
            m.scrape_failures.labels(name, report.reason).inc()
            log.warning("event=scrape_failed target=%s job=%s url=%s reason=%s "
                        "duration_seconds=%.3f stale_markers=%d error=%s", name,
                        _quote(self.job.job_name), _quote(_safe_url(self.target.url)),
                        report.reason, report.duration_seconds, report.stale_markers,
                        _quote(report.error))


_first: Final = itemgetter(0)
_third: Final = itemgetter(2)


def _family_kept(family: str, keep: frozenset[str]) -> bool:
    if family in keep:
        return True
    return any(name.startswith(family) and name[len(family):] in _FAMILY_SUFFIXES
               for name in keep)


_FAMILY_SUFFIXES: Final = frozenset(
    ("_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info"))


def _quote(value: str) -> str:
    """A logfmt value: quoted when it has spaces, quotes or `=`."""
    if value and not any(ch in value for ch in ' "=\n\t'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _safe_url(url: str) -> str:
    # Query parameters can carry tokens on some exporters; the log needs only where.
    return url.split("?", 1)[0]

