"""The daemon's own metrics (scrape, evaluation, store, reload), on a registry /metrics serves."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter import __version__
from exporter import conventions as c

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SelfMetrics:
    """One set of the daemon's own metrics; tests make their own to stay independent."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        # prometheus_client appends _total to counters itself, so strip it from the names.
        self.build_info = Gauge(
            c.BUILD_INFO, "value-exporter build information.", ["version", "python_version"],
            registry=r,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.ready = Gauge(c.READY, "1 once the first scrape and evaluation round is done.",
                           registry=r)
        self.scrapes = Counter(_counter(c.SCRAPES), "Scrapes attempted, by target.",
                               [c.TARGET_LABEL], registry=r)
        self.scrape_failures = Counter(
            _counter(c.SCRAPE_FAILURES), "Failed scrapes, by target and reason.",
            [c.TARGET_LABEL, c.REASON_LABEL], registry=r,
        )
        self.scrape_duration = Histogram(
            c.SCRAPE_DURATION_HISTOGRAM, "Time to scrape, parse and store one target.",
            [c.TARGET_LABEL], buckets=_DURATION_BUCKETS, registry=r,
        )
        self.scrape_iterations_missed = Counter(
            _counter(c.SCRAPE_ITERATIONS_MISSED),
            "Scrapes skipped because the previous one was still running or ran late.",
            [c.TARGET_LABEL], registry=r,
        )
        self.target_up = Gauge(c.TARGET_UP, "1 if the last scrape of the target succeeded.",
                               [c.TARGET_LABEL], registry=r)
        self.rule_group_iterations = Counter(
            _counter(c.RULE_GROUP_ITERATIONS), "Rule group evaluations run.",
            [c.RULE_GROUP_LABEL], registry=r,
        )
        self.rule_group_iterations_missed = Counter(
            _counter(c.RULE_GROUP_ITERATIONS_MISSED),
            "Rule group evaluations skipped because the previous one was still running or late.",
            [c.RULE_GROUP_LABEL], registry=r,
        )
        self.rule_group_duration = Histogram(
            c.RULE_GROUP_DURATION, "Time to evaluate one rule group.", [c.RULE_GROUP_LABEL],
            buckets=_DURATION_BUCKETS, registry=r,
        )
        self.rule_group_last_duration = Gauge(
            c.RULE_GROUP_LAST_DURATION, "Duration of the last evaluation of the rule group.",
            [c.RULE_GROUP_LABEL], registry=r,
        )
        self.rule_group_last_evaluation = Gauge(
            c.RULE_GROUP_LAST_EVALUATION, "When the rule group was last evaluated (Unix time).",
            [c.RULE_GROUP_LABEL], registry=r,
        )
        self.rule_group_rules = Gauge(c.RULE_GROUP_RULES, "Rules in the rule group.",
                                      [c.RULE_GROUP_LABEL], registry=r)
        self.rule_evaluation_failures = Counter(
            _counter(c.RULE_EVALUATION_FAILURES), "Rule evaluations that failed, by rule.",
            [c.RULE_GROUP_LABEL, c.RULE_LABEL], registry=r,
        )
        self.store_series = Gauge(c.STORE_SERIES, "Series held in memory.", registry=r)
        self.store_samples = Gauge(c.STORE_SAMPLES, "Samples held in memory.", registry=r)
        self.config_last_reload_successful = Gauge(
            c.CONFIG_LAST_RELOAD_SUCCESSFUL, "1 if the last configuration reload succeeded.",
            registry=r,
        )
        self.config_last_reload_success_time = Gauge(
            c.CONFIG_LAST_RELOAD_SUCCESS_TIME, "When configuration was last loaded (Unix time).",
            registry=r,
        )
        # -- state database (exporter/state.py); names to move into conventions.py --------
        self.state_write_failures = Counter(
            _counter(c.PREFIX + "state_write_failures_total"),
            "State database saves that failed (disk full, I/O error, lock held too long).",
            registry=r,
        )
        self.state_persistent = Gauge(
            c.PREFIX + "state_persistent",
            "1 if state is saved to the state database, 0 in memory-only mode.", registry=r,
        )
        # -- SLOs (issue 4) ------------------------------------------------------------------
        self.slo_series_dropped = Counter(
            _counter(c.SLO_SERIES_DROPPED),
            "SLO group_by values refused over series_limit, per evaluation that saw them.",
            [c.SLO_LABEL], registry=r,
        )
        # -- Alertmanager notifier (issue 6, exporter/notify.py) -----------------------------
        am = [c.ALERTMANAGER_LABEL]
        self.notifications_sent = Counter(
            _counter(c.NOTIFICATIONS_SENT), "Alerts sent successfully, by Alertmanager.", am,
            registry=r)
        self.notifications_errors = Counter(
            _counter(c.NOTIFICATIONS_ERRORS), "Alerts whose sending failed, by Alertmanager.",
            am, registry=r)
        self.notifications_dropped = Counter(
            _counter(c.NOTIFICATIONS_DROPPED),
            "Alerts dropped: queue full, or sending failed to every Alertmanager.", registry=r)
        self.notifications_queue_length = Gauge(
            c.NOTIFICATIONS_QUEUE_LENGTH, "Alerts waiting in the notification queue.", registry=r)
        self.notifications_queue_capacity = Gauge(
            c.NOTIFICATIONS_QUEUE_CAPACITY, "Capacity of the notification queue.", registry=r)
        self.notifications_alertmanagers = Gauge(
            c.NOTIFICATIONS_ALERTMANAGERS, "Alertmanagers configured and active.", registry=r)
        self.notification_latency = Histogram(
            c.NOTIFICATION_LATENCY, "Time to send one batch of alerts, by Alertmanager.", am,
            buckets=_DURATION_BUCKETS, registry=r)
        # -- web endpoints (--web.config.file, exporter/web_auth.py) --------------------------
        self.http_auth_failures = Counter(
            _counter(c.HTTP_AUTH_FAILURES),
            "Requests refused for missing or wrong basic auth credentials, by reason.",
            [c.REASON_LABEL], registry=r)
        self.http_tls_handshake_failures = Counter(
            _counter(c.HTTP_TLS_HANDSHAKE_FAILURES),
            "TLS handshakes that failed (client certificate missing or untrusted, ...), by reason.",
            [c.REASON_LABEL], registry=r)


def _counter(name: str) -> str:
    return name.removesuffix("_total")
