"""The daemon: wires config, scrape, store, rule evaluation, export and web endpoints together."""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import yaml
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.exposition import generate_latest

from exporter import api_views
from exporter.alerts import Alert
from exporter.api import Api
from exporter.backfill import BackfillError, PrometheusClient, backfill_slo
from exporter.config import Config, apply_environment, config_to_public_dict, load_config
from exporter.conventions import SCRAPE_FAILURE_REASONS, SCRAPE_FAILURES
from exporter.errors import Problem, UserError
from exporter.evaluate import GroupEvaluator
from exporter.export import ExportedFamily, RecordedSeriesCollector
from exporter.improvements import MeasuredBaselines, measured_group_keys
from exporter.notify import notifier_from_config
from exporter.overview import TargetRow, build_overview, page_series_names, snapshot_store
from exporter.overview_html import CONTENT_TYPE as OVERVIEW_CONTENT_TYPE
from exporter.overview_html import HEADERS as OVERVIEW_HEADERS
from exporter.overview_html import render_overview
from exporter.promql.analysis import retention_by_name_ms, selected_metric_names
from exporter.rollups import evaluation_rows
from exporter.rollups import prune as prune_rollups
from exporter.rules.generate import generated_groups
from exporter.rules.load import load_rule_files
from exporter.rules.model import RecordingRule, RuleSet
from exporter.rules.slo_model import RollingWindow
from exporter.scrape import ScrapeManager
from exporter.selfmetrics import SelfMetrics
from exporter.slo import SLOEvaluator
from exporter.slo_events import sli_exprs
from exporter.slo_rules import slo_alert_groups
from exporter.slo_windows import period_start_ms
from exporter.state import KIND_RULE_GROUP, KIND_SLO, StateStore, rule_group_key
from exporter.store import SeriesStore
from exporter.web import Request, Response, Router, WebServer
from exporter.web_auth import apply_web_config
from exporter.web_config import WebConfig, load_web_config

log = logging.getLogger("value_exporter")

# Synthetic series every scrape writes; rules may read them even if no family has the name.
_SCRAPE_SERIES = frozenset({
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
})
HOUSEKEEPING_INTERVAL_S = 60
NOTIFIER_DRAIN_S = 5.0  # on stop, queued notifications get this long to reach Alertmanager
# The classic text format every Prometheus reads (prometheus-client 0.26 labels the same
# bytes `version=1.0.0`, which Prometheus before 3.0 does not know).
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Loaded:
    """A configuration with its rules: what a reload swaps in as a whole, or not at all."""

    config: Config
    rules: RuleSet
    evaluators: dict[tuple[str, str], GroupEvaluator]
    families: list[ExportedFamily]
    keep_names: frozenset[str] | None
    retention_ms: int
    # SLOs (issue 4): evaluators by SLO name; the alert group (key) whose job runs each first.
    slo_evaluators: dict[str, SLOEvaluator] = field(default_factory=dict)
    slo_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    # Improvements (issue 5): measured baselines, and the generated group (key) of each.
    baselines: MeasuredBaselines | None = None
    baseline_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    # Names read back further than a day (a journey's long window, summed from its hourly
    # series) keep their samples this long on their own; the rest keep `retention_ms`.
    retention_by_name_ms: dict[str, int] = field(default_factory=dict)
    # --web.config.file: TLS and basic auth for the endpoints, reloaded with the rest.
    web: WebConfig = field(default_factory=WebConfig)


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
        # -- state database hook: rule groups' alert state survives a restart (state.py) --
        self.state = StateStore.open(self._loaded.config.state_dir,
                                     on_write_failure=self.metrics.state_write_failures.inc)
        self.metrics.state_persistent.set(1 if self.state.persistent else 0)
        self._started_ms = self.now_ms()
        self._needs_backfill: set[str] = set()
        self._hold_until_scraped = self._restore_groups()
        # -- end of state database hook ----------------------------------------------------
        # Alertmanager notifier (issue 6); its delivery ledger comes back from the state DB.
        self.notifier = notifier_from_config(self._loaded.config, self.metrics, self.state,
                                             self._clock)

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
        self.notifier.stop(NOTIFIER_DRAIN_S)
        self.state.save_many([self.notifier.state_blob()], self.now_ms())
        self.state.close()
        self.web.stop()
        log.info("event=stopped")

    @property
    def ready(self) -> bool:
        """True after every target was scraped and every group evaluated once."""
        return self._ready.is_set()

    # -- loading and reloading -----------------------------------------------------------------

    def _load(self) -> _Loaded:
        web = load_web_config(self.web_config_file)
        config = apply_environment(load_config(self.config_path))
        for warning in config.warnings:
            log.warning("event=config_warning %s", warning)
        rule_warnings: list[Problem] = []
        rules = load_rule_files(list(config.rule_files), rule_warnings)
        for warning in rule_warnings:
            log.warning("event=rules_warning %s", warning)
        # -- SLOs (issue 4): each SLO's alert group is scheduled like any rule group, and
        # the SLI's own selectors join the keep-list and the raw-sample retention.
        slo_interval = int(config.evaluation_interval)
        slo_groups = slo_alert_groups(rules.slos, slo_interval, rules.values)
        rules = replace(rules, groups=(*rules.groups, *slo_groups,
                                       *generated_groups(rules, slo_interval)))
        exprs = [rule.expr for group in rules.groups for rule in group.rules]
        exprs += [e for slo in rules.slos for e in sli_exprs(slo, slo_interval)]
        # -- end SLOs --
        keep = None if config.keep_all_series else selected_metric_names(exprs)
        if keep is not None:
            keep = keep | _SCRAPE_SERIES
        interval = int(config.evaluation_interval)
        evaluators = {
            group.key: GroupEvaluator(
                group, self.store, external_labels=config.external_labels,
                default_interval_ms=interval, resend_delay_ms=int(config.resend_delay),
                max_samples=config.query_max_samples,
            )
            for group in rules.groups
        }
        families: dict[str, ExportedFamily] = {}
        for group in rules.groups:
            for rule in group.rules:
                if isinstance(rule, RecordingRule) and rule.name not in families:
                    families[rule.name] = ExportedFamily(
                        rule.name, f"Recorded by rule group {group.name!r}: {rule.expr}"
                    )
        # -- SLOs (issue 4): one evaluator per SLO, its series exported on /metrics --------
        slo_evaluators = {slo.name: SLOEvaluator(slo, self.store, interval_ms=interval)
                          for slo in rules.slos}
        for slo_evaluator in slo_evaluators.values():
            for name, kind, help_text in slo_evaluator.series_families():
                families.setdefault(name, ExportedFamily(name, help_text, kind))
        slo_group_names = {g.key: slo.name for slo, g in zip(rules.slos, slo_groups, strict=True)}
        # -- end SLOs --
        retention, longer = retention_by_name_ms(exprs, self.store.lookback_ms)
        retention += 2 * interval
        return _Loaded(config, rules, evaluators, list(families.values()), keep, retention,
                       slo_evaluators, slo_group_names,
                       MeasuredBaselines(rules.improvements, self.store),
                       measured_group_keys(rules),
                       {name: ms + 2 * interval for name, ms in longer.items()}, web=web)

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
            old = self._loaded
            if loaded.baselines is not None:  # improvements (issue 5): the DB has them all
                loaded.baselines.restore(self.state)
            # Groups whose definition did not change keep their evaluator (alert state).
            for key, evaluator in loaded.evaluators.items():
                previous = old.evaluators.get(key)
                if previous is not None and previous.group == evaluator.group:
                    loaded.evaluators[key] = previous
            # SLOs (issue 4): an unchanged SLO keeps its evaluator; a changed one takes over
            # the old buckets through its state (whatever still fits the new definition).
            for slo_name, slo_evaluator in loaded.slo_evaluators.items():
                before = old.slo_evaluators.get(slo_name)
                if before is None:
                    continue
                if before.slo == slo_evaluator.slo and \
                        before.interval_ms == slo_evaluator.interval_ms:
                    loaded.slo_evaluators[slo_name] = before
                else:
                    slo_evaluator.from_state(before.to_state())
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

    def _schedule(self, loaded: _Loaded, *, apply: bool = True) -> None:
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
                self._run_scrape, IntervalTrigger(seconds=interval, start_date=start),
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
        name = evaluator.group.name
        if self._hold_until_scraped and not self._scraped_once():
            return  # restored alerts would resolve against a store that has no samples yet
        loaded = self._loaded
        slo_name = loaded.slo_groups.get(evaluator.group.key)
        blobs: list[tuple[str, str, dict[str, Any]]] = []
        if slo_name is not None:  # SLOs (issue 4): the SLO's series first, then its alerts
            slo_evaluator = loaded.slo_evaluators[slo_name]
            self._run_slo(slo_evaluator, t_ms)
            blobs.append((KIND_SLO, slo_name, slo_evaluator.to_state()))
        # -- improvements (issue 5): a measured baseline persisted once, written back --------
        measured = [n for n in (loaded.baseline_groups.get(evaluator.group.key),) if n]
        if measured and loaded.baselines is not None:
            loaded.baselines.before_evaluation(measured, t_ms)
        result = evaluator.evaluate(t_ms)
        if measured and loaded.baselines is not None:
            blobs.extend(loaded.baselines.after_evaluation(measured, t_ms))
        # -- end improvements --
        blobs.append((KIND_RULE_GROUP, rule_group_key(*evaluator.group.key),
                      evaluator.to_state()))
        # -- Alertmanager (issue 6): due alerts queued, owed resolutions too, ledger saved --
        self.notifier.send_alerts(result.alerts_to_send, t_ms)
        if self.ready and (live := self._live_alerts()) is not None:
            self.notifier.send_orphan_resolutions(live, t_ms)
        blobs.append(self.notifier.state_blob())
        # Hourly rollups (issue 5, exporter/rollups.py) for the report, in the same transaction.
        slo_done = loaded.slo_evaluators.get(slo_name) if slo_name is not None else None
        rollups = evaluation_rows(self.store, evaluator, slo_done, t_ms)
        # One transaction per evaluation: a kill never leaves the SLO and its alerts apart.
        self.state.save_many(blobs, t_ms, rollups=rollups)
        self.metrics.rule_group_iterations.labels(name).inc()
        self.metrics.rule_group_duration.labels(name).observe(result.duration_s)
        self.metrics.rule_group_last_duration.labels(name).set(result.duration_s)
        self.metrics.rule_group_last_evaluation.labels(name).set(t_ms / 1000)
        self.metrics.rule_group_rules.labels(name).set(len(evaluator.group.rules))
        for status in result.errors:
            self.metrics.rule_evaluation_failures.labels(name, status.rule.name).inc()
            log.warning("event=rule_failed group=%r rule=%r error=%r", name, status.rule.name,
                        status.last_error)
        self._first_round_done(job_id)

    def _live_alerts(self) -> list[Alert] | None:
        """Every alert any rule holds (resolved ones included); None when another group's
        evaluation changed its alerts meanwhile (the next evaluation tries again)."""
        try:
            return [a for e in self._loaded.evaluators.values() for s in e.alert_states
                    if s is not None for a in list(s.active.values())]
        except RuntimeError:
            return None

    def _restore_groups(self) -> bool:
        """Load saved alert state into the evaluators; True when some alert was restored."""
        restored = 0
        for key, evaluator in self._loaded.evaluators.items():
            blob = self.state.load(KIND_RULE_GROUP, rule_group_key(*key))
            if blob is None:
                continue
            try:
                evaluator.from_state(blob)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.error("event=state_restore_failed group=%r error=%r", key[1], str(exc))
                continue
            restored += sum(len(s.active_alerts()) for s in evaluator.alert_states if s)
        if self._loaded.baselines is not None:  # improvements (issue 5)
            self._loaded.baselines.restore(self.state)
        slos = 0
        for name, slo_evaluator in self._loaded.slo_evaluators.items():
            blob = self.state.load(KIND_SLO, name)
            if blob is None:
                # Nothing saved for this SLO: a first start, which backfill may fill.
                self._needs_backfill.add(name)
                continue
            try:
                slo_evaluator.from_state(blob)
                slos += 1
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.error("event=state_restore_failed slo=%r error=%r", name, str(exc))
                self._needs_backfill.add(name)
        log.info("event=state_restored rule_groups=%d alerts=%d slos=%d downtime_s=%.1f",
                 len(self._loaded.evaluators), restored, slos,
                 self.state.downtime_ms(self.now_ms()) / 1000)
        return restored > 0

    def _scraped_once(self) -> bool:
        # Restored alerts wait until every target has been scraped twice since the start:
        # rate() and increase() need two samples, and the raw samples did not survive.
        second = self._started_ms
        if all(s.health.last_scrape_ms is not None
               and s.health.last_scrape_ms >= second + int(s.job.scrape_interval) // 2
               for s in self.scrapes.scrapers()):
            self._hold_until_scraped = False
        return not self._hold_until_scraped

    def _backfill(self, slo_evaluator: SLOEvaluator, t_ms: int) -> None:
        """Fill a new SLO's buckets from the configured Prometheus, once, before counting."""
        config = self._loaded.config.backfill
        name = slo_evaluator.slo.name
        self._needs_backfill.discard(name)
        if config is None:
            return
        window = slo_evaluator.slo.window
        if isinstance(window, RollingWindow):
            start = t_ms - window.duration_ms
        else:
            start = period_start_ms(t_ms, window)
        client = PrometheusClient(config)
        try:
            history = backfill_slo(client, slo_evaluator.slo, start_ms=start, end_ms=t_ms,
                                   bucket_ms=slo_evaluator.bucket_ms,
                                   interval_ms=slo_evaluator.interval_ms)
            filled = slo_evaluator.load_backfill(history, t_ms)
            log.info("event=backfilled slo=%r buckets=%d", name, filled)
        except BackfillError as exc:
            log.warning("event=backfill_failed slo=%r error=%r", name, str(exc))
        finally:
            client.close()

    def _run_slo(self, slo_evaluator: SLOEvaluator, t_ms: int) -> None:
        """SLOs (issue 4): count the interval's events and write the SLO series at t."""
        if slo_evaluator.slo.name in self._needs_backfill:
            self._backfill(slo_evaluator, t_ms)
        result = slo_evaluator.evaluate(t_ms)
        name = slo_evaluator.slo.name
        if result.error:
            log.warning("event=slo_failed slo=%r error=%r", name, result.error)
        if result.dropped:
            self.metrics.slo_series_dropped.labels(name).inc(result.dropped)
        if result.data_gap_seconds:
            log.warning("event=slo_data_gap slo=%r seconds=%.1f", name, result.data_gap_seconds)

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
        prune_rollups(self.state, self.now_ms(), int(self._loaded.config.rollup_retention))
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

    def _apply_web(self, loaded: _Loaded) -> None:
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
