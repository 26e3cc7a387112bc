"""Alert state machine (rules/alerting.go): an alerting rule's result → alerts, ALERTS series.

The group evaluator (exporter.evaluate) runs the rule's query and hands the result vector here;
this module turns it into pending/firing/resolved alerts, expands label and annotation
templates, and returns the `ALERTS` / `ALERTS_FOR_STATE` samples the evaluator writes.
Times are milliseconds since the epoch; None stands for Go's zero time ("never").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.labels import METRIC_NAME, Labels, make_labels
from exporter.promql.values import Sample, Vector
from exporter.rules.model import AlertingRule
from exporter.templates import TemplateSample, expand_alert_template

INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"
_STATE_ORDER = {INACTIVE: 0, PENDING: 1, FIRING: 2}

ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERTNAME = "alertname"
ALERTSTATE = "alertstate"

# A resolved alert stays (and keeps being sent) this long, so a lost notification is retried.
RESOLVED_RETENTION_MS = 15 * 60 * 1000
DEFAULT_RESEND_DELAY_MS = 60 * 1000

_STATE_KEYS = ("activeAt", "firedAt", "resolvedAt", "lastSentAt", "validUntil",
               "keepFiringSince")


class RuleEvalError(Exception):
    """A rule evaluation that failed as a whole (Prometheus's rule error text)."""


@dataclass(slots=True)
class Alert:
    """One alert instance of an alerting rule, keyed by its label set."""

    labels: Labels  # without __name__, with alertname
    annotations: Labels
    state: str
    value: float
    active_at: int | None
    fired_at: int | None = None
    resolved_at: int | None = None
    last_sent_at: int | None = None
    valid_until: int | None = None
    keep_firing_since: int | None = None

    def needs_sending(self, t_ms: int, resend_delay_ms: int) -> bool:
        """Whether the notifier should (re)send this alert at t (Alert.needsSending)."""
        if self.state == PENDING:
            return False
        if self.resolved_at is not None and (
            self.last_sent_at is None or self.resolved_at > self.last_sent_at
        ):
            return True
        return self.last_sent_at is None or self.last_sent_at + resend_delay_ms < t_ms

    def to_state(self) -> dict[str, Any]:
        """A JSON-friendly dict (the persisted form); inverse of `Alert.from_state`."""
        times = (self.active_at, self.fired_at, self.resolved_at, self.last_sent_at,
                 self.valid_until, self.keep_firing_since)
        out: dict[str, Any] = {
            "state": self.state,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            # JSON has no NaN/Inf; keep them as Prometheus spells them.
            "value": self.value if math.isfinite(self.value) else repr(self.value),
        }
        out.update(zip(_STATE_KEYS, times, strict=True))
        return out

    @staticmethod
    def from_state(data: Mapping[str, Any]) -> Alert:
        """Rebuild an alert from `to_state` output."""
        value = data.get("value", 0.0)
        return Alert(
            labels=tuple(sorted(dict(data["labels"]).items())),
            annotations=tuple(sorted(dict(data.get("annotations", {})).items())),
            state=str(data.get("state", PENDING)),
            value=float(value),
            active_at=data.get("activeAt"),
            fired_at=data.get("firedAt"),
            resolved_at=data.get("resolvedAt"),
            last_sent_at=data.get("lastSentAt"),
            valid_until=data.get("validUntil"),
            keep_firing_since=data.get("keepFiringSince"),
        )


TemplateQueryFn = Callable[[str], list[TemplateSample]]


@dataclass
class AlertingRuleState:
    """The live state of one alerting rule: its alerts by label set, and how to expand them.

    `labels` are the rule's effective labels (group labels overridden by the rule's own).
    """

    rule: AlertingRule
    labels: Labels = ()
    external_labels: Labels = ()
    external_url: str = ""
    # Prometheus writes ALERTS only after `for` state restoration; unit tests and this
    # exporter (which restores from its own state) start restored.
    restored: bool = True
    active: dict[Labels, Alert] = field(default_factory=dict)

    def eval(
        self,
        result: Vector,
        t_ms: int,
        *,
        query_offset_ms: int = 0,
        limit: int = 0,
        template_query: TemplateQueryFn | None = None,
    ) -> list[Sample]:
        """Advance the state machine with the rule's query result at evaluation time t.

        Returns the ALERTS and ALERTS_FOR_STATE samples (stamped t - query_offset);
        raises RuleEvalError on duplicate alert label sets or an exceeded limit.
        """
        rule = self.rule
        external = dict(self.external_labels)
        fresh: dict[Labels, Alert] = {}
        for smpl in result:
            metric = dict(smpl.labels)

            def expand(text: str, metric: dict[str, str] = metric, value: float = smpl.value) \
                    -> str:
                return expand_alert_template(
                    text, alert_name=rule.name, labels=metric, value=value,
                    external_labels=external, external_url=self.external_url,
                    query=template_query)

            built = {k: v for k, v in smpl.labels if k != METRIC_NAME}
            for name, text in self.labels:
                built[name] = expand(text)
            built[ALERTNAME] = rule.name
            labels = make_labels(built)  # an empty expansion removes the label, as in Go
            annotations = tuple((name, expand(text)) for name, text in rule.annotations)
            if labels in fresh:
                raise RuleEvalError(
                    "vector contains metrics with the same labelset after applying alert labels")
            fresh[labels] = Alert(labels, annotations, PENDING, smpl.value, active_at=t_ms)

        for key, alert in fresh.items():
            known = self.active.get(key)
            if known is not None and known.state != INACTIVE:
                known.value = alert.value
                known.annotations = alert.annotations
                continue
            self.active[key] = alert

        out: list[Sample] = []
        stamp = t_ms - query_offset_ms
        counted = 0
        for key, alert in list(self.active.items()):
            if key not in fresh:
                keep_firing = False
                if alert.state == FIRING and rule.keep_firing_for_ms > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = t_ms
                    keep_firing = t_ms - alert.keep_firing_since < rule.keep_firing_for_ms
                # Pending alerts vanish at once; resolved ones after the retention period.
                if alert.state == PENDING or (
                    alert.resolved_at is not None
                    and t_ms - alert.resolved_at > RESOLVED_RETENTION_MS
                ):
                    del self.active[key]
                if alert.state != INACTIVE and not keep_firing:
                    alert.state = INACTIVE
                    alert.resolved_at = t_ms
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
            counted += 1
            if alert.state == PENDING and alert.active_at is not None \
                    and t_ms - alert.active_at >= rule.for_ms:
                alert.state = FIRING
                alert.fired_at = t_ms
            if self.restored:
                out.append(self._sample(alert, stamp))
                out.append(self._for_state_sample(alert, stamp))
        if limit > 0 and counted > limit:
            self.active = {}
            raise RuleEvalError(f"exceeded limit of {limit} with {counted} alerts")
        return out

    def _sample(self, alert: Alert, t_ms: int) -> Sample:
        # The rule's raw labels first, then the alert's: a label whose template expanded to
        # "" keeps its unexpanded text here, exactly as AlertingRule.sample does.
        merged = dict(self.labels)
        merged.update(alert.labels)
        merged.update({METRIC_NAME: ALERTS_METRIC, ALERTNAME: self.rule.name,
                       ALERTSTATE: alert.state})
        return Sample(make_labels(merged), 1.0, t_ms)

    def _for_state_sample(self, alert: Alert, t_ms: int) -> Sample:
        merged = dict(self.labels)
        merged.update(alert.labels)
        merged.update({METRIC_NAME: ALERTS_FOR_STATE_METRIC, ALERTNAME: self.rule.name})
        active_s = (alert.active_at or 0) // 1000  # Go's ActiveAt.Unix(): whole seconds
        return Sample(make_labels(merged), float(active_s), t_ms)

    # -- reading -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The highest state among this rule's alerts (firing > pending > inactive)."""
        best = INACTIVE
        for alert in self.active.values():
            if _STATE_ORDER[alert.state] > _STATE_ORDER[best]:
                best = alert.state
        return best

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones excluded), sorted by labels."""
        return sorted((a for a in self.active.values() if a.resolved_at is None),
                      key=lambda a: a.labels)

    def current_alerts(self) -> list[Alert]:
        """Every alert held, including resolved ones still within retention."""
        return sorted(self.active.values(), key=lambda a: a.labels)

    def alerts_to_send(self, t_ms: int, resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
                       interval_ms: int = 60_000) -> list[Alert]:
        """Alerts due for the notifier at t; marks them sent (AlertingRule.sendAlerts)."""
        due: list[Alert] = []
        # Valid long enough to survive two missed evaluations or sends.
        delta = max(resend_delay_ms, interval_ms)
        for alert in self.current_alerts():
            if alert.needs_sending(t_ms, resend_delay_ms):
                alert.last_sent_at = t_ms
                alert.valid_until = t_ms + 4 * delta
                due.append(Alert(**{f: getattr(alert, f) for f in Alert.__slots__}))
        return due

    # -- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The rule's alerts as a JSON-friendly dict."""
        return {"alert": self.rule.name, "alerts": [a.to_state() for a in self.current_alerts()]}

    def from_state(self, data: Mapping[str, Any]) -> None:
        """Replace the alerts with those of a `to_state` dict (after a restart)."""
        self.active = {}
        for item in data.get("alerts", ()):
            alert = Alert.from_state(item)
            self.active[alert.labels] = alert


def sort_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Alerts ordered by labels, then annotations (promtool's comparison order)."""
    return sorted(alerts, key=lambda a: (a.labels, a.annotations))
