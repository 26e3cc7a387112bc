"""The alerting state machine: pending, firing, keep_firing_for, resolution and retention."""

from __future__ import annotations

import pytest

from exporter.alerts import (
    FIRING,
    INACTIVE,
    PENDING,
    RESOLVED_RETENTION_MS,
    Alert,
    AlertingRuleState,
    RuleEvalError,
)
from exporter.labels import Labels
from exporter.promql.values import Sample
from exporter.rules.model import AlertingRule

MIN = 60_000
INSTANCE_A: Labels = (("__name__", "up"), ("instance", "a"))


def _result(value: float = 0.0, labels: Labels = INSTANCE_A) -> list[Sample]:
    return [Sample(labels, value, 0)]


def _states(rule: AlertingRule, present: list[bool]) -> list[str]:
    """Evaluate once a minute, the condition true or not at each step; the state after each."""
    state = AlertingRuleState(rule, labels=rule.labels)
    seen = []
    for i, on in enumerate(present):
        state.eval(_result() if on else [], i * MIN)
        alerts = state.current_alerts()
        seen.append(alerts[0].state if alerts else "-")
    return seen


@pytest.mark.parametrize(
    ("rule", "present", "expected"),
    [
        pytest.param(AlertingRule("A", "up == 0"), [True, True, False],
                     [FIRING, FIRING, INACTIVE], id="no-for-fires-at-once"),
        pytest.param(AlertingRule("A", "up == 0", for_ms=2 * MIN), [True, True, True, False],
                     [PENDING, PENDING, FIRING, INACTIVE], id="for-then-firing-then-resolved"),
        pytest.param(AlertingRule("A", "up == 0", for_ms=2 * MIN), [True, False, True],
                     [PENDING, "-", PENDING], id="pending-dropped-at-once"),
        pytest.param(AlertingRule("A", "up == 0", keep_firing_for_ms=2 * MIN),
                     [True, False, False, False], [FIRING, FIRING, FIRING, INACTIVE],
                     id="keep-firing-for"),
        pytest.param(AlertingRule("A", "up == 0", keep_firing_for_ms=2 * MIN),
                     [True, False, True, False, False], [FIRING, FIRING, FIRING, FIRING, FIRING],
                     id="keep-firing-since-resets-when-back"),
    ],
)
def test_state_sequence(rule: AlertingRule, present: list[bool], expected: list[str]) -> None:
    """Alerts move through the states at the times rules/alerting.go moves them."""
    assert _states(rule, present) == expected


def test_resolved_alert_kept_for_retention() -> None:
    """A resolved alert stays (to be re-sent) for 15 minutes, then is forgotten."""
    state = AlertingRuleState(AlertingRule("A", "up == 0"))
    state.eval(_result(), 0)
    state.eval([], MIN)
    assert state.current_alerts()[0].resolved_at == MIN
    assert state.active_alerts() == []
    state.eval([], MIN + RESOLVED_RETENTION_MS)
    assert len(state.current_alerts()) == 1
    state.eval([], MIN + RESOLVED_RETENTION_MS + 1)
    assert state.current_alerts() == []


def test_alert_series_and_labels() -> None:
    """ALERTS and ALERTS_FOR_STATE carry result labels, rule labels and the alert's state."""
    rule = AlertingRule("A", "up == 0", for_ms=MIN,
                        labels=(("instance", "{{ $labels.instance }}-x"), ("sev", "page")))
    state = AlertingRuleState(rule, labels=rule.labels)
    samples = state.eval(_result(), 2 * MIN, query_offset_ms=MIN)
    assert [(s.labels, s.value, s.t_ms) for s in samples] == [
        ((("__name__", "ALERTS"), ("alertname", "A"), ("alertstate", "pending"),
          ("instance", "a-x"), ("sev", "page")), 1.0, MIN),
        ((("__name__", "ALERTS_FOR_STATE"), ("alertname", "A"), ("instance", "a-x"),
          ("sev", "page")), 120.0, MIN),
    ]


def test_annotations_follow_the_latest_value() -> None:
    """An active alert keeps activeAt but takes each evaluation's value and annotations."""
    rule = AlertingRule("A", "x", for_ms=5 * MIN, annotations=(("v", "{{ $value }}"),))
    state = AlertingRuleState(rule)
    state.eval(_result(1.0), 0)
    state.eval(_result(2.5), MIN)
    (alert,) = state.active_alerts()
    assert (alert.active_at, alert.value, alert.annotations) == (0, 2.5, (("v", "2.5"),))


@pytest.mark.parametrize(
    ("rule", "result", "limit", "message"),
    [
        pytest.param(AlertingRule("A", "x", labels=(("instance", "same"),)),
                     _result() + _result(labels=(("instance", "b"),)), 0,
                     "vector contains metrics with the same labelset after applying alert labels",
                     id="duplicate"),
        pytest.param(AlertingRule("A", "x"), _result() + _result(labels=(("instance", "b"),)), 1,
                     "exceeded limit of 1 with 2 alerts", id="limit"),
    ],
)
def test_rule_errors(rule: AlertingRule, result: list[Sample], limit: int, message: str) -> None:
    """Colliding alert label sets and an exceeded limit fail the rule with Prometheus's text."""
    state = AlertingRuleState(rule, labels=rule.labels)
    with pytest.raises(RuleEvalError, match=message):
        state.eval(result, 0, limit=limit)


def test_sending_and_resending() -> None:
    """Firing alerts are sent, re-sent after the resend delay, and once more when resolved."""
    state = AlertingRuleState(AlertingRule("A", "x"))
    state.eval(_result(), 0)
    assert [a.valid_until for a in state.alerts_to_send(0, MIN, MIN)] == [4 * MIN]
    assert state.alerts_to_send(MIN, MIN, MIN) == []
    assert len(state.alerts_to_send(MIN + 1, MIN, MIN)) == 1
    state.eval([], 2 * MIN)
    (resolved,) = state.alerts_to_send(2 * MIN, MIN, MIN)
    assert resolved.state == INACTIVE and resolved.resolved_at == 2 * MIN


def test_pending_alerts_are_not_sent() -> None:
    """Pending alerts never go to the notifier."""
    state = AlertingRuleState(AlertingRule("A", "x", for_ms=MIN))
    state.eval(_result(), 0)
    assert state.alerts_to_send(0) == []


def test_state_round_trip() -> None:
    """Alert state survives to_state/from_state, NaN values included."""
    state = AlertingRuleState(AlertingRule("A", "x", keep_firing_for_ms=MIN))
    state.eval(_result(float("nan")), 0)
    state.eval([], MIN)
    data = state.to_state()
    restored = AlertingRuleState(state.rule)
    restored.from_state(data)
    assert restored.to_state() == data
    (alert,) = restored.current_alerts()
    assert alert.keep_firing_since == MIN and alert.value != alert.value
    assert Alert.from_state(alert.to_state()).labels == alert.labels


def test_rule_state_is_the_highest_alert_state() -> None:
    """A rule reports firing if any alert fires, else pending, else inactive."""
    state = AlertingRuleState(AlertingRule("A", "x", for_ms=MIN))
    assert state.state == INACTIVE
    state.eval(_result(), 0)
    assert state.state == PENDING
    state.eval(_result() + _result(labels=(("instance", "b"),)), MIN)
    assert state.state == FIRING
