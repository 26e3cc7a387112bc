"""The scrape stage (config -> discovery -> scrape -> store): one TargetScraper per target.

Like Prometheus's scrape manager on reload: a target whose job, address and labels are unchanged
keeps its scraper (and series state); one whose job settings changed gets a new scraper that
inherits that state, so no stale markers are written; a target that went away is closed, which
writes stale markers for its series.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from exporter.config_scrape import DNSSDConfig, ScrapeJob, ScrapeTarget
from exporter.discovery import Discoverer, Resolver
from exporter.labels import Labels
from exporter.scrape_target import ScrapeReport, TargetHealth, TargetKey, TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore

__all__ = ["ScrapeManager", "ScrapeReport", "SpreadTrigger", "TargetHealth", "TargetKey",
           "TargetScraper"]

log = logging.getLogger("value_exporter.scrape")

_DiscoveryKey = tuple[str, DNSSDConfig]


class SpreadTrigger(BaseTrigger):  # type: ignore[misc]  # apscheduler ships no type hints
    """When a target is scraped after its first scrape: every interval, at a phase of its own.

    As in Prometheus, each target's scrapes keep a fixed offset within the interval, taken from
    a hash of its name, so the targets' parsing spreads over the interval instead of all running
    at once, which starved the rule groups evaluated at the same instant (the soak missed 7 of
    120 evaluations). The first scrape still runs at once (the job's next_run_time), so that
    readiness waits for no offset; no run comes less than an interval after the previous one,
    so the first (slower: every series is new) is not still running when the second is due.
    """

    def __init__(self, interval_s: float, key: str) -> None:
        self.interval = timedelta(seconds=interval_s)
        # The phase is relative to the epoch, so a restart keeps each target's phase.
        offset_s = zlib.crc32(key.encode()) / 2**32 * interval_s
        self.anchor = datetime.fromtimestamp(offset_s, UTC)

    def get_next_fire_time(self, previous: datetime | None, now: datetime) -> datetime:
        """The first time on the target's grid at least an interval after its previous run
        (or after now): the next grid point after a run on the grid."""
        if previous is None:
            steps = math.floor((now - self.anchor) / self.interval) + 1
        else:
            steps = math.ceil((previous + self.interval - self.anchor) / self.interval)
        return self.anchor + steps * self.interval

    def __str__(self) -> str:
        return f"spread[interval={self.interval}, phase={self.anchor.time()}]"


class ScrapeManager:
    """Reconciles the configured and discovered targets with the running scrapers."""

    def __init__(self, store: SeriesStore, metrics: SelfMetrics,
                 keep_names: frozenset[str] | None, *, resolver: Resolver | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self._keep_names = keep_names
        self._resolver = resolver
        self._lock = threading.RLock()
        self._jobs: list[ScrapeJob] = []
        self._discoverers: dict[_DiscoveryKey, Discoverer] = {}
        self._scrapers: dict[TargetKey, TargetScraper] = {}

    def apply(self, jobs: Sequence[ScrapeJob]) -> list[ScrapeTarget]:
        """Take a new configuration: resolve new DNS configs now, then reconcile scrapers."""
        with self._lock:
            self._jobs = list(jobs)
            wanted: dict[_DiscoveryKey, Discoverer] = {}
            for job in self._jobs:
                for cfg in job.dns_sd_configs:
                    key = (job.job_name, cfg)
                    old = self._discoverers.get(key)
                    if old is not None and key not in wanted:
                        if old.job != job:
                            old.rebind(job)
                        wanted[key] = old
                    elif key not in wanted:
                        disc = Discoverer(job, cfg, self._resolver)
                        disc.refresh()
                        wanted[key] = disc
            self._discoverers = wanted
            return self._reconcile()

    def refresh_discovery(self, *, force: bool = False) -> list[ScrapeTarget]:
        """Re-resolve DNS configs whose refresh_interval has passed (all with force)."""
        with self._lock:
            discs = [d for d in self._discoverers.values() if force or d.due()]
        for disc in discs:
            disc.refresh()  # network I/O outside the lock: scrapers() stays responsive
        with self._lock:
            return self._reconcile()

    def discovery_interval_seconds(self) -> float | None:
        """How often refresh_discovery() needs calling: the shortest refresh_interval."""
        with self._lock:
            return min((d.refresh_seconds for d in self._discoverers.values()), default=None)

    @property
    def keep_names(self) -> frozenset[str] | None:
        """The metric names rules read (None: all); setting it applies to running scrapers."""
        return self._keep_names

    @keep_names.setter
    def keep_names(self, keep_names: frozenset[str] | None) -> None:
        with self._lock:
            self._keep_names = keep_names
            for scraper in self._scrapers.values():
                scraper.set_keep_names(keep_names)

    def scrapers(self) -> list[TargetScraper]:
        """The running scrapers, in configuration order."""
        with self._lock:
            return list(self._scrapers.values())

    def targets(self) -> list[ScrapeTarget]:
        with self._lock:
            return [s.target for s in self._scrapers.values()]

    def close(self, *, stale: bool = False) -> None:
        """Stop every scraper (at shutdown no stale markers are needed: the store goes too)."""
        with self._lock:
            scrapers, self._scrapers = list(self._scrapers.values()), {}
        for scraper in scrapers:
            scraper.close(stale=stale)

    def _desired(self) -> dict[TargetKey, tuple[ScrapeTarget, Labels]]:
        out: dict[TargetKey, tuple[ScrapeTarget, Labels]] = {}
        for job in self._jobs:
            found: list[tuple[ScrapeTarget, Labels]] = [(t, ()) for t in job.static_targets()]
            for (job_name, _), disc in self._discoverers.items():
                if job_name == job.job_name:
                    found.extend((d.target, d.meta) for d in disc.discovered())
            for target, meta in found:
                # The same address from two sources is one target, as in a Prometheus pool.
                out.setdefault((job.job_name, target.address, target.labels), (target, meta))
        return out

    def _reconcile(self) -> list[ScrapeTarget]:
        desired = self._desired()
        old = self._scrapers
        new: dict[TargetKey, TargetScraper] = {}
        added = changed = 0
        for key, (target, meta) in desired.items():
            current = old.get(key)
            if current is not None and current.target == target:
                new[key] = current
                continue
            scraper = TargetScraper(
                target, target.job, self.store, self.metrics, keep_names=self._keep_names,
                meta=meta, legacy_names=target.job.metric_name_validation_scheme == "legacy")
            if current is not None:
                current.handover(scraper)
                changed += 1
            else:
                added += 1
            new[key] = scraper
        removed = [s for k, s in old.items() if k not in new]
        self._scrapers = new
        for scraper in removed:
            scraper.close()
        if added or changed or removed:
            log.info("event=targets_reconciled targets=%d added=%d changed=%d removed=%d",
                     len(new), added, changed, len(removed))
        return [s.target for s in new.values()]
