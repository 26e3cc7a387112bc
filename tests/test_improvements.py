"""Tests for the CSI register: generated rules and the sidecar's persisted measured baselines."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import pytest

from exporter.evaluate import GroupEvaluator
from exporter.improvements import (
    BASELINE,
    BASELINE_PERSISTED,
    KIND_IMPROVEMENT,
    PROGRESS,
    MeasuredBaselines,
    baseline_meets_target,
    improvement_group,
    measured_group_keys,
)
from exporter.labels import METRIC_NAME, make_labels
from exporter.rules.journey_model import Improvement
from exporter.rules.model import RecordingRule, RuleSet, Source
from exporter.state import StateStore
from exporter.store import SeriesStore

MINUTE = 60_000
AT_MS = 60 * MINUTE  # the baseline date: 01:00 on the test clock
LATENCY = Improvement(name="latency-down", owner="Checkout team", metric="max(latency_seconds)",
                      baseline_at_ms=AT_MS, target=0.4, target_by_ms=300 * MINUTE,
                      direction="down", source=Source("r.yaml"))


def _run(store: SeriesStore, baselines: MeasuredBaselines, state: StateStore,
         minutes: range, latency: float) -> None:
    """Evaluate the improvement's group each minute as the daemon does, saving blobs."""
    evaluator = GroupEvaluator(improvement_group(LATENCY), store, default_interval_ms=MINUTE)
    for minute in minutes:
        t_ms = minute * MINUTE
        store.append(make_labels({METRIC_NAME: "latency_seconds"}), t_ms, latency)
        baselines.before_evaluation([LATENCY.name], t_ms)
        evaluator.evaluate(t_ms)
        state.save_many(baselines.after_evaluation([LATENCY.name], t_ms), t_ms)


def _baseline(store: SeriesStore, minute: int) -> float | None:
    series = store.get(make_labels({METRIC_NAME: BASELINE, "improvement": LATENCY.name}))
    sample = series.value_at(minute * MINUTE, 1) if series is not None else None
    return sample[1] if sample is not None else None


def test_measured_baseline_survives_a_restart(tmp_path: Path) -> None:
    """The first value seen at or after `at` is saved; after a restart it is the baseline."""
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    baselines = MeasuredBaselines([LATENCY], store)
    # The sidecar starts at minute 90, long after `at`: there is no history at 01:00, so the
    # first value it sees (0.8 at minute 90) becomes the baseline and is persisted.
    _run(store, baselines, state, range(90, 95), 0.8)
    assert state.load(KIND_IMPROVEMENT, LATENCY.name) == {
        "value": 0.8, "seen_at_ms": 90 * MINUTE, "at_ms": AT_MS}
    assert _baseline(store, 94) == 0.8
    state.close()
    # Restart: a new process with an empty store; latency has improved to 0.6 meanwhile.
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    baselines = MeasuredBaselines([LATENCY], store)
    assert baselines.restore(state) == 1
    _run(store, baselines, state, range(200, 202), 0.6)
    assert _baseline(store, 201) == 0.8
    assert (state.load(KIND_IMPROVEMENT, LATENCY.name) or {})["seen_at_ms"] == 90 * MINUTE
    state.close()


def test_baseline_at_its_date_is_what_gets_persisted(tmp_path: Path) -> None:
    """With history at `at`, the `@` value is the baseline and is saved, not a later value."""
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    baselines = MeasuredBaselines([LATENCY], store)
    _run(store, baselines, state, range(50, 61), 0.8)  # minutes 50..60: before and at `at`
    _run(store, baselines, state, range(61, 63), 0.5)
    assert _baseline(store, 62) == 0.8
    assert (state.load(KIND_IMPROVEMENT, LATENCY.name) or {})["value"] == 0.8
    state.close()


def test_nothing_is_measured_before_the_baseline_date(tmp_path: Path) -> None:
    """Before `at` no baseline series exists and nothing is saved."""
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    _run(store, MeasuredBaselines([LATENCY], store), state, range(30, 35), 0.8)
    assert _baseline(store, 34) is None
    assert state.load(KIND_IMPROVEMENT, LATENCY.name) is None
    state.close()


def test_an_edited_baseline_date_measures_again(tmp_path: Path) -> None:
    """A saved baseline for another `at` is ignored after the rule changed."""
    state = StateStore.open(tmp_path)
    state.save_many([(KIND_IMPROVEMENT, LATENCY.name,
                      {"value": 9.0, "seen_at_ms": 0, "at_ms": AT_MS - MINUTE})], 0)
    assert MeasuredBaselines([LATENCY], SeriesStore()).restore(state) == 0
    state.close()


def test_given_baselines_are_not_tracked() -> None:
    """Only measured baselines have a group key and persisted state."""
    given = Improvement(name="q", owner="o", metric="q", baseline_at_ms=0, target=1,
                        target_by_ms=MINUTE, direction="up", baseline=0.5,
                        source=Source("r.yaml"))
    ruleset = RuleSet(improvements=(given, LATENCY))
    assert measured_group_keys(ruleset) == {("r.yaml", "improvement:latency-down"): "latency-down"}
    assert MeasuredBaselines([given], SeriesStore()).improvements == {}


def test_measured_baseline_rule_uses_at_and_falls_back_to_the_persisted_series() -> None:
    """The compiled baseline reads the metric `@ at` and, failing that, the persisted series."""
    rule = improvement_group(LATENCY).rules[1]
    assert isinstance(rule, RecordingRule)
    assert rule.name == BASELINE
    assert "@ 3600.000" in rule.expr and BASELINE_PERSISTED in rule.expr


def test_a_measured_baseline_past_its_target_is_logged_once_and_scored_by_the_target(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Latency already 0.3 s at `at` (target 0.4 s, down): one warning, progress 1 while met."""
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    baselines = MeasuredBaselines([LATENCY], store)
    with caplog.at_level(logging.WARNING, logger="value_exporter.improvements"):
        _run(store, baselines, state, range(55, 70), 0.3)
    state.close()
    assert [r.getMessage() for r in caplog.records] == [
        "event=improvement_baseline_meets_target improvement=latency-down baseline=0.3 "
        "target=0.4 direction=down"]
    progress = store.get(make_labels({METRIC_NAME: PROGRESS, "improvement": LATENCY.name}))
    # 0.3 <= 0.4 meets the target: 1, where (0.3 - 0.3) / (0.4 - 0.3) would say 0.
    assert progress is not None and progress.value_at(69 * MINUTE, 1) == (69 * MINUTE, 1.0)


@pytest.mark.parametrize(("direction", "baseline", "met"), [
    pytest.param("down", 0.4, True, id="down-at-target"),
    pytest.param("down", 0.3, True, id="down-past-target"),
    pytest.param("down", 0.5, False, id="down-short-of-target"),
    pytest.param("up", 0.4, True, id="up-at-target"),
    pytest.param("up", 0.5, True, id="up-past-target"),
    pytest.param("up", 0.3, False, id="up-short-of-target"),
])
def test_baseline_meets_target_follows_the_direction(direction: str, baseline: float,
                                                     met: bool) -> None:
    """At or past the 0.4 target counts as met, on the side the direction points to."""
    improvement = dataclasses.replace(LATENCY, direction=direction)
    assert baseline_meets_target(improvement, baseline) is met


def test_a_nan_measurement_is_not_a_baseline(tmp_path: Path) -> None:
    """NaN (a quantile with no traffic) is skipped; the first number seen becomes the baseline."""
    state = StateStore.open(tmp_path)
    store = SeriesStore()
    baselines = MeasuredBaselines([LATENCY], store)
    _run(store, baselines, state, range(90, 93), math.nan)
    assert state.load(KIND_IMPROVEMENT, LATENCY.name) is None
    _run(store, baselines, state, range(93, 95), 0.7)
    assert state.load(KIND_IMPROVEMENT, LATENCY.name) == {
        "value": 0.7, "seen_at_ms": 93 * MINUTE, "at_ms": AT_MS}
    assert state.write_failures == 0
    state.close()
