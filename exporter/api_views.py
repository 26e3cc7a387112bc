"""Read API views: the daemon's targets, rules and alerts in Prometheus's JSON shapes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from exporter.alerts import Alert
from exporter.api import format_value_e
from exporter.evaluate import GroupEvaluator
from exporter.rules.model import AlertingRule
from exporter.scrape import TargetScraper


def rfc3339(t_ms: int | None) -> str:
    """A millisecond timestamp as Prometheus's API prints times (Go's zero time for none)."""
    if t_ms is None:
        return "0001-01-01T00:00:00Z"
    stamp = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=t_ms)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_json(alert: Alert) -> dict[str, Any]:
    """One active alert as `/api/v1/alerts` lists it."""
    out = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "state": alert.state,
        "activeAt": rfc3339(alert.active_at),
        "value": format_value_e(alert.value),
    }
    if alert.keep_firing_since is not None:  # omitempty in Prometheus's API
        out["keepFiringSince"] = rfc3339(alert.keep_firing_since)
    return out


def targets_payload(scrapers: Iterable[TargetScraper]) -> dict[str, Any]:
    """`/api/v1/targets`."""
    active = []
    for scraper in scrapers:
        health = scraper.health
        active.append({
            "discoveredLabels": dict(scraper.discovered_labels),
            "labels": dict(scraper.target.labels),
            "scrapePool": scraper.job.job_name,
            "scrapeUrl": scraper.target.url,
            "globalUrl": scraper.target.url,
            "lastError": health.last_error,
            "lastScrape": rfc3339(health.last_scrape_ms),
            "lastScrapeDuration": health.last_duration_s,
            "health": health.state,
            "scrapeInterval": str(scraper.job.scrape_interval),
            "scrapeTimeout": str(scraper.job.scrape_timeout),
        })
    return {"activeTargets": active, "droppedTargets": [], "droppedTargetCounts": {}}


def rules_payload(evaluators: Mapping[tuple[str, str], GroupEvaluator],
                  kind: str | None) -> dict[str, Any]:
    """`/api/v1/rules`; `kind` is the `type` filter (`alert`, `record` or None)."""
    groups = []
    for (file, name), evaluator in evaluators.items():
        rules = []
        for status, state in zip(evaluator.statuses, evaluator.alert_states, strict=True):
            rule = status.rule
            common = {
                "name": rule.name, "query": rule.expr, "labels": dict(rule.labels),
                "health": status.health, "evaluationTime": status.duration_s,
                "lastEvaluation": rfc3339(status.last_evaluation_ms),
            }
            if status.last_error:  # omitempty in Prometheus's API
                common["lastError"] = status.last_error
            if isinstance(rule, AlertingRule) and state is not None:
                if kind == "record":
                    continue
                rules.append({
                    **common, "type": "alerting", "state": state.state,
                    "duration": rule.for_ms / 1000,
                    "keepFiringFor": rule.keep_firing_for_ms / 1000,
                    "annotations": dict(rule.annotations),
                    "alerts": [alert_json(a) for a in state.active_alerts()],
                })
            elif kind != "alert":
                if not rule.labels:  # omitempty for recording rules only, as in Prometheus
                    del common["labels"]
                rules.append({**common, "type": "recording"})
        groups.append({
            "name": name, "file": file, "rules": rules,
            "interval": evaluator.interval_ms / 1000, "limit": evaluator.group.limit,
            "evaluationTime": evaluator.last_duration_s,
            "lastEvaluation": rfc3339(evaluator.last_evaluation_ms),
        })
    return {"groups": groups}


def alerts_payload(evaluators: Iterable[GroupEvaluator]) -> dict[str, Any]:
    """`/api/v1/alerts`: every pending and firing alert."""
    alerts: list[dict[str, Any]] = []
    for evaluator in evaluators:
        for state in evaluator.alert_states:
            if state is not None:
                alerts.extend(alert_json(a) for a in state.active_alerts())
    return {"alerts": alerts}
