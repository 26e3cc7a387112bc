"""Rule group evaluation (rules/group.go): each rule in order at one time, results into the store.

`GroupEvaluator.evaluate(t_ms)` is one iteration of a group. `t_ms` is the group's scheduled
evaluation time: Prometheus slots a group's iterations at `k * interval + offset`, where the
offset is a hash of the group within the interval; the daemon's scheduler picks those times
and passes them in. Queries (and the samples written) use `t_ms - query_offset`; alert
timings (`for`, `keep_firing_for`, activeAt) use `t_ms` itself, as Prometheus does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from exporter.alerts import (
    DEFAULT_RESEND_DELAY_MS,
    Alert,
    AlertingRuleState,
    RuleEvalError,
)
from exporter.labels import METRIC_NAME, STALE_NAN, Labels, make_labels
from exporter.promql.engine import DEFAULT_MAX_SAMPLES, evaluate_instant
from exporter.promql.values import PromQLError, Sample, Scalar, Vector
from exporter.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from exporter.store import AppendResult, SeriesStore
from exporter.templates import TemplateError, TemplateSample

# query_fn(expr, t_ms) -> instant vector at t; raises PromQLError. Scalars come back as a
# one-sample vector without labels (rules.EngineQueryFunc).
QueryFn = Callable[[str, int], Vector]

HEALTH_UNKNOWN, HEALTH_OK, HEALTH_ERR = "unknown", "ok", "err"

# Prometheus's storage errors, as a failed append reports them.
_APPEND_ERRORS = {
    AppendResult.OUT_OF_ORDER: "out of order sample",
    AppendResult.DUPLICATE: "duplicate sample for timestamp",
}


def store_query_fn(
    store: SeriesStore, *, subquery_step_ms: int = 60_000,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> QueryFn:
    """The default query function: the in-process engine over a store."""

    def query(expr: str, t_ms: int) -> Vector:
        value = evaluate_instant(expr, store, t_ms, lookback_ms=store.lookback_ms,
                                 subquery_step_ms=subquery_step_ms,
                                 max_samples=max_samples).value
        if isinstance(value, Scalar):
            return [Sample((), value.value, t_ms)]
        if isinstance(value, list):
            return value
        raise PromQLError("rule result is not a vector or scalar")

    return query


def effective_labels(group: RuleGroup, rule: Rule) -> Labels:
    """Group labels overridden by the rule's own (Prometheus's rules.FromMaps)."""
    merged = dict(group.labels)
    merged.update(rule.labels)
    return tuple(sorted(merged.items()))


@dataclass(slots=True)
class RuleStatus:
    """How one rule fared at its last evaluation (the `/api/v1/rules` fields)."""

    rule: Rule
    health: str = HEALTH_UNKNOWN
    last_error: str = ""
    duration_s: float = 0.0
    samples: int = 0
    last_evaluation_ms: int | None = None


@dataclass(slots=True)
class GroupEvaluation:
    """The outcome of one group iteration."""

    group: RuleGroup
    t_ms: int
    rules: list[RuleStatus]
    duration_s: float
    samples: int
    alerts_to_send: list[tuple[AlertingRule, list[Alert]]] = field(default_factory=list)

    @property
    def errors(self) -> list[RuleStatus]:
        """The rules that failed in this iteration."""
        return [r for r in self.rules if r.health == HEALTH_ERR]


class GroupEvaluator:
    """Evaluates one rule group repeatedly, keeping alert state and last-seen series."""

    def __init__(
        self,
        group: RuleGroup,
        store: SeriesStore,
        *,
        external_labels: Labels = (),
        external_url: str = "",
        default_interval_ms: int,
        default_query_offset_ms: int = 0,
        query_fn: QueryFn | None = None,
        resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self.group = group
        self.store = store
        self.interval_ms = group.interval_ms or default_interval_ms
        self.query_offset_ms = (
            group.query_offset_ms if group.query_offset_ms is not None else default_query_offset_ms
        )
        self.resend_delay_ms = resend_delay_ms
        self.query = query_fn or store_query_fn(store, subquery_step_ms=self.interval_ms,
                                                max_samples=max_samples)
        self.statuses = [RuleStatus(rule) for rule in group.rules]
        self.rule_labels = [effective_labels(group, rule) for rule in group.rules]
        self.alert_states: list[AlertingRuleState | None] = [
            AlertingRuleState(rule, labels, external_labels, external_url)
            if isinstance(rule, AlertingRule) else None
            for rule, labels in zip(group.rules, self.rule_labels, strict=True)
        ]
        # Series each rule wrote last time: those it stops producing get a stale marker.
        self._previous: list[dict[Labels, None]] = [{} for _ in group.rules]
        self.last_evaluation_ms: int | None = None
        self.last_duration_s = 0.0

    def evaluate(self, t_ms: int) -> GroupEvaluation:
        """Run every rule in order at t; a failing rule is recorded and the group goes on."""
        started = time.perf_counter()
        result = GroupEvaluation(self.group, t_ms, self.statuses, 0.0, 0)
        for i in range(len(self.group.rules)):
            result.samples += self._evaluate_rule(i, t_ms, result)
        self.last_duration_s = result.duration_s = time.perf_counter() - started
        self.last_evaluation_ms = t_ms
        return result

    def _evaluate_rule(self, i: int, t_ms: int, result: GroupEvaluation) -> int:
        rule = self.group.rules[i]
        status = self.statuses[i]
        started = time.perf_counter()
        query_t = t_ms - self.query_offset_ms
        try:
            try:
                samples = self._rule_samples(i, rule, t_ms, query_t)
            except (PromQLError, RuleEvalError) as exc:
                # A failed rule writes nothing and marks nothing stale: what it wrote last
                # time stays "previous", as in group.go.
                status.health, status.last_error = HEALTH_ERR, str(exc)
                return 0
            status.health, status.last_error = HEALTH_OK, ""
            state = self.alert_states[i]
            if state is not None:
                due = state.alerts_to_send(t_ms, self.resend_delay_ms, self.interval_ms)
                result.alerts_to_send.append((state.rule, due))
            self._write(i, samples, query_t, status)
            status.samples = len(samples)
            return len(samples)
        finally:
            status.duration_s = time.perf_counter() - started
            status.last_evaluation_ms = t_ms

    def _rule_samples(self, i: int, rule: Rule, t_ms: int, query_t: int) -> list[Sample]:
        vector = self.query(rule.expr, query_t)
        if isinstance(rule, RecordingRule):
            return self._record(rule, self.rule_labels[i], vector, query_t)
        state = self.alert_states[i]
        assert state is not None
        return state.eval(vector, t_ms, query_offset_ms=self.query_offset_ms,
                          limit=self.group.limit, template_query=self._template_query(t_ms))

    def _record(self, rule: RecordingRule, labels: Labels, vector: Vector,
                query_t: int) -> list[Sample]:
        out: list[Sample] = []
        seen: set[Labels] = set()
        for s in vector:
            merged = dict(s.labels)
            merged[METRIC_NAME] = rule.name
            merged.update(labels)
            key = make_labels(merged)
            if key in seen:
                raise RuleEvalError(
                    "vector contains metrics with the same labelset after applying rule labels")
            seen.add(key)
            out.append(Sample(key, s.value, query_t))
        limit = self.group.limit
        if limit > 0 and len(out) > limit:
            raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        return out

    def _template_query(self, t_ms: int) -> Callable[[str], list[TemplateSample]]:
        # Template queries run at the evaluation time itself, without the query offset.
        def query(expr: str) -> list[TemplateSample]:
            try:
                vector = self.query(expr, t_ms)
            except PromQLError as exc:
                raise TemplateError(str(exc)) from None
            return [TemplateSample(dict(s.labels), s.value) for s in vector]

        return query

    def _write(self, i: int, samples: Iterable[Sample], query_t: int, status: RuleStatus) -> None:
        returned: dict[Labels, None] = {}
        for s in samples:
            outcome = self.store.append(s.labels, s.t_ms, s.value)
            if outcome == AppendResult.OK:
                returned[s.labels] = None
            else:
                status.health = HEALTH_ERR
                status.last_error = _APPEND_ERRORS.get(outcome, outcome)
        for labels in self._previous[i]:
            if labels not in returned:
                # Refusals are expected here when another rule writes the same series.
                self.store.append(labels, query_t, STALE_NAN)
        self._previous[i] = returned

    # -- state for persistence ---------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Alert state and last-written series, JSON-friendly, for a restart."""
        return {
            "group": self.group.name,
            "file": self.group.file,
            "alerts": [s.to_state() if s is not None else None for s in self.alert_states],
            "series": [[dict(labels) for labels in prev] for prev in self._previous],
        }

    def from_state(self, data: dict[str, Any]) -> None:
        """Restore `to_state` output; rules are matched by position and name."""
        alerts = data.get("alerts", [])
        series = data.get("series", [])
        for i, rule in enumerate(self.group.rules):
            state = self.alert_states[i]
            if state is not None and i < len(alerts) and alerts[i] \
                    and alerts[i].get("alert") == rule.name:
                state.from_state(alerts[i])
            if i < len(series):
                self._previous[i] = {make_labels(s): None for s in series[i]}
