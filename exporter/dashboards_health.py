"""dashboards (sidecar health): scrapes, rule evaluation, store size and the notification queue."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from exporter import conventions as c
from exporter.dashboards_panels import (
    ALL_SERVICES,
    AMBER,
    GREEN,
    HEALTH,
    RED,
    Queries,
    datasource_variable,
    links,
    new_dashboard,
    query_variable,
    row,
    stat_panel,
    steps,
    timeseries_panel,
)

# The sidecar's own metrics carry no service: Prometheus's `job` and `instance` pick the sidecar.
SEL = 'job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"


def _rate(name: str, by: str) -> str:
    return f"sum by ({by}) (rate({name}{{{SEL}}}[{RATE}]))"


def _p95(histogram: str, by: str) -> str:
    return (f"histogram_quantile(0.95, sum by ({by}, le) "
            f"(rate({histogram}_bucket{{{SEL}}}[{RATE}])))")


def health_dashboard(service: str = ALL_SERVICES) -> db.Dashboard:
    """For the SRE who runs the sidecar: is it scraping, evaluating, keeping up and alerting?"""
    t, g, am = c.TARGET_LABEL, c.RULE_GROUP_LABEL, c.ALERTMANAGER_LABEL
    d = (new_dashboard(HEALTH, "Is the value-exporter sidecar healthy: targets scraped, rules "
                       "evaluated on time, memory held, alerts delivered.", ["sidecar"], service)
         .with_variable(datasource_variable())
         .with_variable(query_variable("job", "Job", f"label_values({c.BUILD_INFO}, job)",
                                       "The Prometheus job that scrapes the sidecars."))
         .with_variable(query_variable(
             "instance", "Sidecar", f'label_values({c.BUILD_INFO}{{job=~"$job"}}, instance)',
             "The sidecar instances shown."))
         .links(links(HEALTH, service)))
    d = d.with_row(row("Scrape targets"))
    d = d.with_panel(stat_panel(
        "Targets up", "Targets whose last scrape succeeded.", "short",
        Queries().add(f"sum({c.TARGET_UP}{{{SEL}}})", "up"), thresholds=steps((None, GREEN))))
    d = d.with_panel(stat_panel(
        "Targets down", "Targets whose last scrape failed: their rules see no fresh data.",
        "short", Queries().add(f"count({c.TARGET_UP}{{{SEL}}} == 0) or vector(0)", "down"),
        thresholds=steps((None, GREEN), (1, RED))))
    d = d.with_panel(stat_panel(
        "Ready", "1 once the first scrape and evaluation round finished.", "short",
        Queries().add(f"min({c.READY}{{{SEL}}})", "ready"),
        thresholds=steps((None, RED), (1, GREEN)), sparkline=False))
    d = d.with_panel(stat_panel(
        "Last configuration reload", "1 if the last reload of config and rules succeeded.",
        "short", Queries().add(f"min({c.CONFIG_LAST_RELOAD_SUCCESSFUL}{{{SEL}}})", "ok"),
        thresholds=steps((None, RED), (1, GREEN)), sparkline=False))
    d = d.with_panel(timeseries_panel(
        "Target up", "1 while a target's scrapes succeed, per target.", "short",
        Queries().add(f"{c.TARGET_UP}{{{SEL}}}", "{{instance}} {{target}}"), width=8))
    d = d.with_panel(timeseries_panel(
        "Scrape duration (95th percentile)", "Time to fetch, parse and store one target.", "s",
        Queries().add(_p95(c.SCRAPE_DURATION_HISTOGRAM, t), "{{target}}"), width=8))
    d = d.with_panel(timeseries_panel(
        "Scrape failures by reason", "Failed scrapes per second, by target and reason.", "cps",
        Queries().add(_rate(c.SCRAPE_FAILURES, f"{t}, {c.REASON_LABEL}"),
                      "{{target}}: {{reason}}")
        .add(_rate(c.SCRAPE_ITERATIONS_MISSED, t), "{{target}}: missed"), width=8))

    d = d.with_row(row("Rule evaluation"))
    d = d.with_panel(timeseries_panel(
        "Rule group duration (95th percentile)", "Time to evaluate each rule group; close to "
        "its interval means evaluations start to be missed.", "s",
        Queries().add(_p95(c.RULE_GROUP_DURATION, g), "{{rule_group}}"), width=8))
    d = d.with_panel(timeseries_panel(
        "Last evaluation duration", "Duration of each group's most recent evaluation.", "s",
        Queries().add(f"max by ({g}) ({c.RULE_GROUP_LAST_DURATION}{{{SEL}}})", "{{rule_group}}"),
        width=8))
    d = d.with_panel(timeseries_panel(
        "Evaluation failures and missed iterations", "Rules that failed to evaluate, and "
        "group evaluations skipped because the previous one was still running.", "cps",
        Queries().add(_rate(c.RULE_EVALUATION_FAILURES, f"{g}, {c.RULE_LABEL}"),
                      "{{rule_group}} {{rule}}: failed")
        .add(_rate(c.RULE_GROUP_ITERATIONS_MISSED, g), "{{rule_group}}: missed"), width=8))

    d = d.with_row(row("Series held"))
    d = d.with_panel(timeseries_panel(
        "Series and samples in memory", "What the sidecar holds; growth without new targets "
        "hints at a label with unbounded values.", "short",
        Queries().add(f"sum by (instance) ({c.STORE_SERIES}{{{SEL}}})", "{{instance}} series")
        .add(f"sum by (instance) ({c.STORE_SAMPLES}{{{SEL}}})", "{{instance}} samples"),
        width=12))
    d = d.with_panel(timeseries_panel(
        "SLO series refused", "group_by values refused over an SLO's series_limit.", "cps",
        Queries().add(_rate(c.SLO_SERIES_DROPPED, c.SLO_LABEL), "{{slo}}"), width=12))

    d = d.with_row(row("Alert notifications"))
    d = d.with_panel(timeseries_panel(
        "Notification queue", "Alerts waiting to be sent, against the queue's capacity: a full "
        "queue drops alerts.", "short",
        Queries().add(f"sum by (instance) ({c.NOTIFICATIONS_QUEUE_LENGTH}{{{SEL}}})",
                      "{{instance}} waiting")
        .add(f"sum by (instance) ({c.NOTIFICATIONS_QUEUE_CAPACITY}{{{SEL}}})",
             "{{instance}} capacity"), width=8))
    d = d.with_panel(timeseries_panel(
        "Notifications sent, failed and dropped", "Alerts per second, by Alertmanager.", "cps",
        Queries().add(_rate(c.NOTIFICATIONS_SENT, am), "{{alertmanager}} sent")
        .add(_rate(c.NOTIFICATIONS_ERRORS, am), "{{alertmanager}} errors")
        .add(f"sum by (instance) (rate({c.NOTIFICATIONS_DROPPED}{{{SEL}}}[{RATE}]))",
             "{{instance}} dropped"), width=8))
    d = d.with_panel(timeseries_panel(
        "Notification latency (mean)", "Time to deliver a batch of alerts, by Alertmanager.", "s",
        Queries().add(f"{_rate(c.NOTIFICATION_LATENCY + '_sum', am)} / "
                      f"{_rate(c.NOTIFICATION_LATENCY + '_count', am)}", "{{alertmanager}}"),
        width=8))
    d = d.with_panel(stat_panel(
        "Alertmanagers discovered", "Alertmanagers the sidecar sends to; 0 means alerts go "
        "nowhere.", "short",
        Queries().add(f"min({c.NOTIFICATIONS_ALERTMANAGERS}{{{SEL}}})", "alertmanagers"),
        thresholds=steps((None, AMBER), (1, GREEN)), sparkline=False))
    return d
