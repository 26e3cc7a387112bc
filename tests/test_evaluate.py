"""Rule group evaluation: order, relabelling, errors, limits, staleness and query offset."""

from __future__ import annotations

import pytest

from exporter.evaluate import HEALTH_ERR, HEALTH_OK, HEALTH_UNKNOWN, GroupEvaluator
from exporter.labels import Labels, is_stale, make_labels
from exporter.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from exporter.store import SeriesStore

MIN = 60_000


def _group(*rules: Rule, limit: int = 0, offset: int | None = None,
           labels: Labels = ()) -> RuleGroup:
    return RuleGroup("g", "f.yml", tuple(rules), interval_ms=MIN, query_offset_ms=offset,
                     limit=limit, labels=labels)


def _lbl(**pairs: str) -> Labels:
    if "name" in pairs:
        pairs["__name__"] = pairs.pop("name")
    return make_labels(pairs)


def _store(*series: tuple[Labels, list[tuple[int, float]]]) -> SeriesStore:
    store = SeriesStore()
    for labels, samples in series:
        for t, v in samples:
            store.append(labels, t, v)
    return store


def _last(store: SeriesStore, labels: Labels) -> tuple[int, float] | None:
    series = store.get(labels)
    return series.last() if series else None


X_A = _lbl(name="x", i="a")
X_B = _lbl(name="x", i="b")


@pytest.mark.parametrize(
    ("rule", "group_labels", "expected"),
    [
        pytest.param(RecordingRule("r:x", "x"), (), {_lbl(name="r:x", i="a"): 1.0},
                     id="name-replaced"),
        pytest.param(RecordingRule("r:x", "x", labels=(("i", "z"), ("k", "v"))), (),
                     {_lbl(name="r:x", i="z", k="v"): 1.0}, id="rule-labels-override"),
        pytest.param(RecordingRule("r:x", "x"), (("team", "t"),),
                     {_lbl(name="r:x", i="a", team="t"): 1.0}, id="group-labels-added"),
        pytest.param(RecordingRule("r:x", "x", labels=(("team", "own"),)), (("team", "t"),),
                     {_lbl(name="r:x", i="a", team="own"): 1.0}, id="rule-beats-group-label"),
        pytest.param(RecordingRule("r:two", "1 + 1"), (), {_lbl(name="r:two"): 2.0},
                     id="scalar-becomes-unlabelled-sample"),
    ],
)
def test_recording_rule_output(rule: RecordingRule, group_labels: Labels,
                               expected: dict[Labels, float]) -> None:
    """Recording results get the record name, group labels, then the rule's labels."""
    store = _store((X_A, [(0, 1.0)]))
    ev = GroupEvaluator(_group(rule, labels=group_labels), store, default_interval_ms=MIN)
    result = ev.evaluate(0)
    assert result.rules[0].health == HEALTH_OK
    for labels, value in expected.items():
        assert _last(store, labels) == (0, value)
    assert result.samples == len(expected)


def test_later_rules_see_earlier_results() -> None:
    """A rule reads what an earlier rule of the group wrote at the same timestamp."""
    store = _store((X_A, [(0, 3.0)]))
    group = _group(RecordingRule("r:one", "x * 2"), RecordingRule("r:two", "r:one + 1"))
    GroupEvaluator(group, store, default_interval_ms=MIN).evaluate(0)
    assert _last(store, _lbl(name="r:two", i="a")) == (0, 7.0)


@pytest.mark.parametrize(
    ("rule", "limit", "error"),
    [
        pytest.param(RecordingRule("r", "x", labels=(("i", "same"),)), 0,
                     "vector contains metrics with the same labelset after applying rule labels",
                     id="duplicate-labelset"),
        pytest.param(RecordingRule("r", "x"), 1, "exceeded limit of 1 with 2 series",
                     id="series-limit"),
        pytest.param(AlertingRule("A", "x"), 1, "exceeded limit of 1 with 2 alerts",
                     id="alert-limit"),
        pytest.param(RecordingRule("r", "rate(x)"), 0, "", id="query-error"),
    ],
)
def test_failing_rule_fails_alone(rule: Rule, limit: int, error: str) -> None:
    """A failing rule records its error, writes nothing, and the next rule still runs."""
    store = _store((X_A, [(0, 1.0)]), (X_B, [(0, 2.0)]))
    group = _group(rule, RecordingRule("after", "sum(x)"), limit=limit)
    ev = GroupEvaluator(group, store, default_interval_ms=MIN)
    result = ev.evaluate(0)
    first, second = result.rules
    assert first.health == HEALTH_ERR
    assert error in first.last_error and first.last_error
    assert second.health == HEALTH_OK
    assert _last(store, _lbl(name="after")) == (0, 3.0)
    assert len(store) == 3  # x{a}, x{b}, after — nothing from the failed rule
    assert result.errors == [first]


def test_health_is_unknown_before_the_first_evaluation() -> None:
    """Rules start with health "unknown", as in Prometheus's rules API."""
    ev = GroupEvaluator(_group(RecordingRule("r", "x")), SeriesStore(), default_interval_ms=MIN)
    assert [s.health for s in ev.statuses] == [HEALTH_UNKNOWN]


def test_vanished_series_get_a_stale_marker() -> None:
    """A series a rule wrote last time but not now is marked stale at the query time."""
    store = _store((X_A, [(0, 1.0), (MIN, 1.0)]), (X_B, [(0, 2.0)]))
    # x{b} has no sample after 0, but lookback keeps it visible; drop it with a filter.
    ev = GroupEvaluator(_group(RecordingRule("r", "x > 1.5 or x{i='a'}")), store,
                        default_interval_ms=MIN)
    ev.evaluate(0)
    store.append(X_B, MIN, 0.0)
    ev.evaluate(MIN)
    last = _last(store, _lbl(name="r", i="b"))
    assert last is not None and last[0] == MIN and is_stale(last[1])
    assert _last(store, _lbl(name="r", i="a")) == (MIN, 1.0)


def test_failed_rule_marks_nothing_stale() -> None:
    """When a rule errors, its previous series are neither refreshed nor marked stale."""
    store = _store((X_A, [(0, 1.0)]))
    ev = GroupEvaluator(_group(RecordingRule("r", "x", labels=(("i", "same"),))), store,
                        default_interval_ms=MIN)
    ev.evaluate(0)
    store.append(X_B, MIN, 1.0)  # now two inputs collide on i="same"
    store.append(X_A, MIN, 1.0)
    ev.evaluate(MIN)
    assert _last(store, _lbl(name="r", i="same")) == (0, 1.0)


def test_query_offset_shifts_query_and_write_time() -> None:
    """With query_offset, rules query and write at t - offset."""
    store = _store((X_A, [(0, 1.0), (MIN, 5.0)]))
    ev = GroupEvaluator(_group(RecordingRule("r", "x"), offset=MIN), store,
                        default_interval_ms=MIN)
    ev.evaluate(2 * MIN)
    assert _last(store, _lbl(name="r", i="a")) == (MIN, 5.0)


def test_default_query_offset_applies_without_group_offset() -> None:
    """The global rule_query_offset is used when the group sets none."""
    store = _store((X_A, [(0, 1.0), (MIN, 5.0)]))
    ev = GroupEvaluator(_group(RecordingRule("r", "x")), store, default_interval_ms=MIN,
                        default_query_offset_ms=MIN)
    ev.evaluate(MIN)
    assert _last(store, _lbl(name="r", i="a")) == (0, 1.0)


def test_alert_series_written_and_alerts_due() -> None:
    """Alerting rules write ALERTS/ALERTS_FOR_STATE and hand firing alerts to the notifier."""
    store = _store((X_A, [(0, 1.0)]))
    ev = GroupEvaluator(_group(AlertingRule("A", "x > 0")), store, default_interval_ms=MIN)
    result = ev.evaluate(0)
    alerts = _lbl(name="ALERTS", alertname="A", alertstate="firing", i="a")
    assert _last(store, alerts) == (0, 1.0)
    assert _last(store, _lbl(name="ALERTS_FOR_STATE", alertname="A", i="a")) == (0, 0.0)
    (rule, due), = result.alerts_to_send
    assert rule.name == "A" and [a.state for a in due] == ["firing"]


def test_state_round_trip() -> None:
    """to_state/from_state carry alert state and last-written series across a restart."""
    store = _store((X_A, [(0, 1.0)]))
    group = _group(AlertingRule("A", "x > 0", for_ms=5 * MIN), RecordingRule("r", "x"))
    ev = GroupEvaluator(group, store, default_interval_ms=MIN)
    ev.evaluate(0)
    again = GroupEvaluator(group, store, default_interval_ms=MIN)
    again.from_state(ev.to_state())
    assert again.to_state() == ev.to_state()
    state = again.alert_states[0]
    assert state is not None and state.active_alerts()[0].active_at == 0
