"""The daemon: schedules scrapes and rule groups, serves the web endpoints, starts and stops.

Loading lives in daemon_load.py, each evaluation's state and delivery in daemon_state.py.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.exposition import generate_latest

from exporter import api_views
from exporter.api import Api
from exporter.config import config_to_public_dict
from exporter.conventions import SCRAPE_FAILURE_REASONS, SCRAPE_FAILURES
from exporter.daemon_load import Loaded, carry_over, load
from exporter.daemon_state import EvaluationFlow
from exporter.errors import UserError
from exporter.evaluate import GroupEvaluator
from exporter.export import RecordedSeriesCollector
from exporter.notify import notifier_from_config
from exporter.overview import TargetRow, build_overview, page_series_names, snapshot_store
from exporter.overview_html import CONTENT_TYPE as OVERVIEW_CONTENT_TYPE
from exporter.overview_html import HEADERS as OVERVIEW_HEADERS
from exporter.overview_html import render_overview
from exporter.scrape import ScrapeManager, SpreadTrigger
from exporter.selfmetrics import SelfMetrics
from exporter.state import StateStore
from exporter.store import SeriesStore
from exporter.web import Request, Response, Router, WebServer
from exporter.web_auth import apply_web_config

log = logging.getLogger("value_exporter")

HOUSEKEEPING_INTERVAL_S = 60
NOTIFIER_DRAIN_S = 5.0  # on stop, queued notifications get this long to reach Alertmanager
# The classic text format every Prometheus reads (prometheus-client 0.26 labels the same
# bytes `version=1.0.0`, which Prometheus before 3.0 does not know).
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Daemon:
    """One running value-exporter: `start()`, then `stop()`; `reload()` any time."""

    def __init__(self, config_path: str, *, listen: str | None = None,
                 clock: Callable[[], float] = time.time,
                 web_config_file: str | None = None) -> None:
        self.config_path = config_path
        self.web_config_file = web_config_file
        self._listen_override = listen
        self._clock = clock
        self.store = SeriesStore()
        self.metrics = SelfMetrics()
        self.metrics.registry.register(
            RecordedSeriesCollector(self.store, lambda: self._loaded.families, self.now_ms)
        )
        self._reload_lock = threading.Lock()
        self._loaded = self._load()
        self.scrapes = ScrapeManager(self.store, self.metrics, self._loaded.keep_names)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self._pending_first_round: set[str] = set()
        self._pool_size = 0
        self._pool_generation = 0
        self._pool_alias = "default"
        self._ready = threading.Event()
        self._stopped = threading.Event()
        router = Router()
        self._routes(router)
        self.web = WebServer(listen or self._loaded.config.listen, router)
        self._apply_web(self._loaded)
        # Opened last, so a failed start (port in use) leaves no file lock behind.
        self.state = StateStore.open(self._loaded.config.state_dir,
                                     on_write_failure=self.metrics.state_write_failures.inc)
        self.metrics.state_persistent.set(1 if self.state.persistent else 0)
        self._started_ms = self.now_ms()
        # Alertmanager notifier (issue 6); its delivery ledger comes back from the state DB.
        self.notifier = notifier_from_config(self._loaded.config, self.metrics, self.state,
                                             self._clock)
        self.flow = EvaluationFlow(self.store, self.state, self.notifier, self.metrics)
        # Restored alerts hold every group's evaluation until the targets have been scraped.
        self._hold_until_scraped = self.flow.restore(self._loaded, self._started_ms)

    # -- lifecycle -------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The daemon's clock in milliseconds."""
        return int(self._clock() * 1000)

    def start(self) -> None:
        """Start scraping, evaluating and serving."""
        self._schedule(self._loaded)
        self.scheduler.start()
        self.web.start()
        # Prometheus's default --web.external-url: http://<hostname>:<port>.
        self.notifier.external_url = f"{self.web_scheme}://{socket.gethostname()}:{self.web.port}"
        self.notifier.start()
        log.info("event=started listen=%s targets=%d rule_groups=%d", self.listen_address,
                 len(self.scrapes.scrapers()), len(self._loaded.evaluators))

    @property
    def web_scheme(self) -> str:
        """`https` when the web config turns TLS on, else `http`."""
        return "https" if self._loaded.web.tls is not None else "http"

    @property
    def listen_address(self) -> str:
        """Where the web endpoints are served (with the real port when 0 was asked)."""
        host = (self._listen_override or self._loaded.config.listen).rpartition(":")[0]
        return f"{host}:{self.web.port}"

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop scheduling, let running scrapes finish (bounded by their timeout), stop serving."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.scheduler.shutdown(wait=True)
        self.flow.close(NOTIFIER_DRAIN_S, self.now_ms())
        self.web.stop()
        log.info("event=stopped")

    @property
    def ready(self) -> bool:
        """True after every target was scraped and every group evaluated once."""
        return self._ready.is_set()

    # -- loading and reloading -----------------------------------------------------------------

    def _load(self) -> Loaded:
        return load(self.config_path, self.web_config_file, self.store)

    def reload(self) -> list[str]:
        """Load config and rules again; on any error keep the running ones and return the errors."""
        with self._reload_lock:
            try:
                loaded = self._load()
            except UserError as exc:
                self.metrics.config_last_reload_successful.set(0)
                for line in exc.lines():
                    log.error("event=reload_failed problem=%r", line)
                return exc.lines()
            self.flow.restore_baselines(loaded)
            carry_over(self._loaded, loaded)
            self._loaded = loaded
            self._apply_web(loaded)
            self.scrapes.keep_names = loaded.keep_names
            self.notifier.apply(loaded.config)
            self._unschedule()
            self._schedule(loaded)
            self.metrics.config_last_reload_successful.set(1)
            self.metrics.config_last_reload_success_time.set(self._clock())
            log.info("event=reloaded targets=%d rule_groups=%d", len(self.scrapes.scrapers()),
                     len(loaded.evaluators))
            return []

    # -- scheduling ------------------------------------------------------------------------

    def _schedule(self, loaded: Loaded, *, apply: bool = True) -> None:
        if apply:
            self.scrapes.apply(list(loaded.config.scrape_jobs))
        scrapers = self.scrapes.scrapers()
        start = datetime.now(UTC)
        executor = self._executor(len(scrapers) + len(loaded.evaluators) + 2)
        for scraper in scrapers:
            job_id = f"scrape:{scraper.name}"
            self._pending_first_round.add(job_id)
            interval = int(scraper.job.scrape_interval) / 1000
            self.scheduler.add_job(
                self._run_scrape, SpreadTrigger(interval, scraper.name),
                args=(scraper, job_id), id=job_id, name=f"scrape {scraper.target.address}",
                next_run_time=start, coalesce=True, max_instances=1, executor=executor,
                misfire_grace_time=max(1, math.ceil(interval)), replace_existing=True,
            )
        for key, evaluator in loaded.evaluators.items():
            job_id = f"rules:{key[0]}:{key[1]}"
            self._pending_first_round.add(job_id)
            interval = evaluator.interval_ms / 1000
            self.scheduler.add_job(
                self._run_group, IntervalTrigger(seconds=interval, start_date=start),
                args=(evaluator, job_id, start.timestamp(), interval), id=job_id,
                name=f"rule group {key[1]}", next_run_time=start, coalesce=True,
                max_instances=1, misfire_grace_time=max(1, math.ceil(interval)),
                replace_existing=True, executor=executor,
            )
        self.scheduler.add_job(
            self._housekeeping, IntervalTrigger(seconds=HOUSEKEEPING_INTERVAL_S),
            id="housekeeping", coalesce=True, max_instances=1, replace_existing=True,
            executor=executor,
        )
        refresh_s = self.scrapes.discovery_interval_seconds()
        if refresh_s is not None:
            self.scheduler.add_job(
                self._refresh_discovery, IntervalTrigger(seconds=refresh_s), id="discovery",
                coalesce=True, max_instances=1, replace_existing=True, executor=executor,
            )

    def _executor(self, jobs: int) -> str:
        """An executor whose pool is at least as large as the job count, so no job queues.

        A reload that adds jobs gets a new, larger pool; jobs still running finish on the old.
        """
        if jobs > self._pool_size:
            self._pool_generation += 1
            self._pool_alias = f"pool{self._pool_generation}"
            self._pool_size = jobs
            self.scheduler.add_executor(ThreadPoolExecutor(jobs), self._pool_alias)
        return self._pool_alias

    def _refresh_discovery(self) -> None:
        # Targets found or lost by DNS get scrape jobs, or lose them, as a reload would.
        before = {s.name for s in self.scrapes.scrapers()}
        self.scrapes.refresh_discovery()
        if before != {s.name for s in self.scrapes.scrapers()}:
            with self._reload_lock:
                self._unschedule()
                self._schedule(self._loaded, apply=False)

    def _unschedule(self) -> None:
        for job in self.scheduler.get_jobs():
            job.remove()
        self._pending_first_round.clear()

    def _run_scrape(self, scraper: Any, job_id: str) -> None:
        scraper.scrape(self.now_ms())
        self._first_round_done(job_id)

    def _run_group(self, evaluator: GroupEvaluator, job_id: str, start_s: float,
                   interval_s: float) -> None:
        # The scheduled run time, not the moment the thread got to it: with coalescing and a
        # grace time of one interval, that is the latest grid point at or before now.
        now_s = self._clock()
        scheduled_s = start_s + math.floor((now_s - start_s) / interval_s) * interval_s
        t_ms = round(scheduled_s * 1000)
        if self._hold_until_scraped and not self._scraped_once():
            return  # restored alerts would resolve against a store that has no samples yet
        self.flow.run_group(self._loaded, evaluator, t_ms, ready=self.ready)
        self._first_round_done(job_id)

    def _scraped_once(self) -> bool:
        # Restored alerts wait until every target has been scraped twice since the start:
        # rate() and increase() need two samples, and the raw samples did not survive.
        second = self._started_ms
        if all(s.health.last_scrape_ms is not None
               and s.health.last_scrape_ms >= second + int(s.job.scrape_interval) // 2
               for s in self.scrapes.scrapers()):
            self._hold_until_scraped = False
        return not self._hold_until_scraped

    def _first_round_done(self, job_id: str) -> None:
        if self._ready.is_set():
            return
        self._pending_first_round.discard(job_id)
        if not self._pending_first_round:
            self._ready.set()
            self.metrics.ready.set(1)
            log.info("event=ready")

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        kind, _, rest = str(event.job_id).partition(":")
        if kind == "scrape":
            self.metrics.scrape_iterations_missed.labels(rest).inc()
        elif kind == "rules":
            self.metrics.rule_group_iterations_missed.labels(rest.rpartition(":")[2]).inc()

    def _housekeeping(self) -> None:
        now = self.now_ms()
        self.store.truncate(now - self._loaded.retention_ms,
                            {n: now - ms for n, ms in self._loaded.retention_by_name_ms.items()})
        self.flow.prune(self._loaded, now)
        self.metrics.store_series.set(len(self.store))
        self.metrics.store_samples.set(self.store.sample_count())

    # -- web ---------------------------------------------------------------------------------

    def _routes(self, router: Router) -> None:
        router.add("/", self._serve_overview)  # issue 7: the built-in overview page
        router.add("/metrics", self._serve_metrics)
        router.add("/-/healthy", lambda r: Response.text("value-exporter is Healthy.\n"))
        router.add("/-/ready", self._serve_ready)
        router.add("/-/reload", self._serve_reload, ("POST",))  # changes state: POST only
        Api(self).register(router)

    def _apply_web(self, loaded: Loaded) -> None:
        failures = self.metrics.http_tls_handshake_failures
        apply_web_config(self.web, loaded.web, self.metrics.http_auth_failures,
                         lambda reason: failures.labels(reason).inc())

    def _serve_metrics(self, request: Request) -> Response:
        # Always the text format: prometheus-client 0.26 escapes the colons of recording-rule
        # names in OpenMetrics sample lines (not in their HELP/TYPE lines), which would break
        # every `level:metric:operations` series. Scrapers all accept text 0.0.4.
        return Response(200, generate_latest(self.metrics.registry), TEXT_CONTENT_TYPE)

    def _serve_overview(self, request: Request) -> Response:
        # Issue 7: the page reads the same newest samples /metrics exports (exporter/overview.py).
        loaded, now = self._loaded, self.now_ms()
        snap = snapshot_store(self.store, page_series_names(loaded.rules), now)
        failures = self.metrics.registry.get_sample_value
        targets = [TargetRow(
            s.name, s.job.job_name, s.target.url, s.health.state, s.health.last_scrape_ms,
            s.health.last_duration_s, s.health.last_error,
            sum(failures(SCRAPE_FAILURES, {"target": s.name, "reason": r}) or 0.0
                for r in SCRAPE_FAILURE_REASONS),
        ) for s in self.scrapes.scrapers()]
        evaluated = any(e.last_evaluation_ms is not None for e in loaded.evaluators.values())
        refresh_s = max(5, math.ceil(int(loaded.config.evaluation_interval) / 1000))
        page = render_overview(build_overview(loaded.rules, snap, targets, evaluated=evaluated,
                                              refresh_s=refresh_s))
        return Response(200, page.encode("utf-8"), OVERVIEW_CONTENT_TYPE, dict(OVERVIEW_HEADERS))

    def _serve_ready(self, request: Request) -> Response:
        if self.ready:
            return Response.text("value-exporter is Ready.\n")
        return Response.text("value-exporter is not ready yet.\n", 503)

    def _serve_reload(self, request: Request) -> Response:
        errors = self.reload()
        if errors:
            return Response.text("failed to reload config:\n" + "\n".join(errors) + "\n", 500)
        return Response.text("")

    # -- read API view (shapes in exporter/api_views.py) ----------------------------------------

    @property
    def query_max_samples(self) -> int:
        """The loaded config's bound on samples one API query may load."""
        return self._loaded.config.query_max_samples

    def config_yaml(self) -> str:
        """The loaded configuration with secrets masked."""
        return yaml.safe_dump(config_to_public_dict(self._loaded.config), sort_keys=False)

    def targets_payload(self) -> dict[str, Any]:
        """`/api/v1/targets` in Prometheus's shape."""
        return api_views.targets_payload(self.scrapes.scrapers())

    def rules_payload(self, kind: str | None) -> dict[str, Any]:
        """`/api/v1/rules` in Prometheus's shape (`type=alert|record` filters)."""
        return api_views.rules_payload(self._loaded.evaluators, kind)

    def alerts_payload(self) -> dict[str, Any]:
        """`/api/v1/alerts`: every pending and firing alert."""
        return api_views.alerts_payload(self._loaded.evaluators.values())
