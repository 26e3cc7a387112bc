"""One rule group's evaluation along the data flow: restore, SLO + backfill, baselines, rules,
notifications, rollups, and the one state transaction that saves them all."""

from __future__ import annotations

import logging
from typing import Any

from exporter.alerts import Alert
from exporter.backfill import BackfillError, PrometheusClient, backfill_slo
from exporter.daemon_load import Loaded
from exporter.evaluate import GroupEvaluator
from exporter.notify import Notifier
from exporter.rollups import evaluation_rows
from exporter.rollups import prune as prune_rollups
from exporter.rules.slo_model import RollingWindow
from exporter.selfmetrics import SelfMetrics
from exporter.slo import SLOEvaluator
from exporter.slo_windows import period_start_ms
from exporter.state import KIND_RULE_GROUP, KIND_SLO, StateStore, rule_group_key
from exporter.store import SeriesStore

log = logging.getLogger("value_exporter")


class EvaluationFlow:
    """Runs a group's evaluation and persists its state; the daemon only schedules it."""

    def __init__(self, store: SeriesStore, state: StateStore, notifier: Notifier,
                 metrics: SelfMetrics) -> None:
        self.store = store
        self.state = state
        self.notifier = notifier
        self.metrics = metrics
        # SLOs with nothing saved (a first start): backfill fills them before they count.
        self.needs_backfill: set[str] = set()

    # -- restore -----------------------------------------------------------------------------

    def restore(self, loaded: Loaded, now_ms: int) -> bool:
        """Load saved alert, baseline and SLO state; True when some alert was restored."""
        restored = 0
        for key, evaluator in loaded.evaluators.items():
            blob = self.state.load(KIND_RULE_GROUP, rule_group_key(*key))
            if blob is None:
                continue
            try:
                evaluator.from_state(blob)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.error("event=state_restore_failed group=%r error=%r", key[1], str(exc))
                continue
            restored += sum(len(s.active_alerts()) for s in evaluator.alert_states if s)
        self.restore_baselines(loaded)
        slos = 0
        for name, slo_evaluator in loaded.slo_evaluators.items():
            blob = self.state.load(KIND_SLO, name)
            if blob is None:
                self.needs_backfill.add(name)
                continue
            try:
                slo_evaluator.from_state(blob)
                slos += 1
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.error("event=state_restore_failed slo=%r error=%r", name, str(exc))
                self.needs_backfill.add(name)
        log.info("event=state_restored rule_groups=%d alerts=%d slos=%d downtime_s=%.1f",
                 len(loaded.evaluators), restored, slos, self.state.downtime_ms(now_ms) / 1000)
        return restored > 0

    def restore_baselines(self, loaded: Loaded) -> None:
        """Improvements (issue 5): measured baselines come back from the database (a reload
        too: the database holds every one ever measured)."""
        if loaded.baselines is not None:
            loaded.baselines.restore(self.state)

    # -- one evaluation ------------------------------------------------------------------------

    def run_group(self, loaded: Loaded, evaluator: GroupEvaluator, t_ms: int, *,
                  ready: bool) -> None:
        """Evaluate the group at t (its SLO first), send due alerts, save in one transaction."""
        name = evaluator.group.name
        slo_name = loaded.slo_groups.get(evaluator.group.key)
        slo_evaluator = loaded.slo_evaluators[slo_name] if slo_name is not None else None
        blobs: list[tuple[str, str, dict[str, Any]]] = []
        if slo_evaluator is not None:
            self._run_slo(loaded, slo_evaluator, t_ms)
            blobs.append((KIND_SLO, slo_evaluator.slo.name, slo_evaluator.to_state()))
        # Improvements (issue 5): a measured baseline is persisted once, then written back.
        measured = [n for n in (loaded.baseline_groups.get(evaluator.group.key),) if n]
        if measured and loaded.baselines is not None:
            loaded.baselines.before_evaluation(measured, t_ms)
        result = evaluator.evaluate(t_ms)
        if measured and loaded.baselines is not None:
            blobs.extend(loaded.baselines.after_evaluation(measured, t_ms))
        blobs.append((KIND_RULE_GROUP, rule_group_key(*evaluator.group.key),
                      evaluator.to_state()))
        # Alertmanager (issue 6): due alerts queued, owed resolutions too, ledger saved.
        self.notifier.send_alerts(result.alerts_to_send, t_ms)
        if ready and (live := live_alerts(loaded)) is not None:
            self.notifier.send_orphan_resolutions(live, t_ms)
        blobs.append(self.notifier.state_blob())
        # Hourly rollups (issue 5, exporter/rollups.py) for the report, in the same transaction.
        rollups = evaluation_rows(self.store, evaluator, slo_evaluator, t_ms)
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

    def _run_slo(self, loaded: Loaded, slo_evaluator: SLOEvaluator, t_ms: int) -> None:
        """SLOs (issue 4): count the interval's events and write the SLO series at t."""
        name = slo_evaluator.slo.name
        if name in self.needs_backfill:
            self._backfill(loaded, slo_evaluator, t_ms)
        result = slo_evaluator.evaluate(t_ms)
        if result.error:
            log.warning("event=slo_failed slo=%r error=%r", name, result.error)
        if result.dropped:
            self.metrics.slo_series_dropped.labels(name).inc(result.dropped)
        if result.data_gap_seconds:
            log.warning("event=slo_data_gap slo=%r seconds=%.1f", name, result.data_gap_seconds)

    def _backfill(self, loaded: Loaded, slo_evaluator: SLOEvaluator, t_ms: int) -> None:
        """Fill a new SLO's buckets from the configured Prometheus, once, before counting."""
        config = loaded.config.backfill
        name = slo_evaluator.slo.name
        self.needs_backfill.discard(name)
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

    # -- housekeeping and stop -----------------------------------------------------------------

    def prune(self, loaded: Loaded, now_ms: int) -> None:
        """Drop rollup hours older than the configured retention."""
        prune_rollups(self.state, now_ms, int(loaded.config.rollup_retention))

    def close(self, drain_s: float, now_ms: int) -> None:
        """Stop the notifier (queued alerts get `drain_s`), save its ledger, close the file."""
        self.notifier.stop(drain_s)
        self.state.save_many([self.notifier.state_blob()], now_ms)
        self.state.close()


def live_alerts(loaded: Loaded) -> list[Alert] | None:
    """Every alert any rule holds (resolved ones included); None when another group's
    evaluation changed its alerts meanwhile (the next evaluation tries again)."""
    try:
        return [a for e in loaded.evaluators.values() for s in e.alert_states
                if s is not None for a in list(s.active.values())]
    except RuntimeError:
        return None
