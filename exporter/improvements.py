"""Improvements (the CSI register) -> recording rules, and the sidecar's persisted baselines.

Series, each with label `improvement`:

    improvement:current:value             the metric now (summed to one series)
    improvement:baseline:value            the given baseline, or the metric measured at `at`
    improvement:target:value              the target
    improvement:progress:ratio            (current - baseline) / (target - baseline): 0 at the
                                          baseline, 1 at the target, below 0 when worse,
                                          above 1 past the target; the same formula serves
                                          both directions
    improvement:progress_expected:ratio   a straight line from 0 at `at` to 1 at `by`, clamped
    improvement:on_track:bool             1 when progress >= expected progress, else 0
    improvement:days_left:days            days to `by`, negative once past due
    improvement:info                      1, with `owner` and `direction`

A given baseline is never at or past its target (a load error). A measured one can be: then
progress is 1 while the current value meets the target and 0 otherwise, on-track is the same
0 or 1 (no division by a span that is zero or runs the wrong way), and the sidecar logs one
warning when it first measures or restores such a baseline.

A measured baseline (`baseline: {at: ...}`) is `metric @ at` in both engines, taken through a
one-step subquery because `@` applies to selectors and subqueries, not to any expression.
Prometheus keeps history for weeks, so that is all it needs. The sidecar keeps raw samples for
minutes: once `at` has left its window the `@` part is empty, so the sidecar persists the first
baseline it saw (or, if it started after the history was gone, the first value of the metric
at or after `at`) in the state database and writes it back as
`improvement:baseline_persisted:value` before each evaluation; the baseline rule falls back to
it. In Prometheus that series never exists and the fallback is inert.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from exporter import conventions as c
from exporter.compile_promql import canonical, number
from exporter.labels import METRIC_NAME, make_labels
from exporter.rules.journey_model import Improvement
from exporter.rules.model import RecordingRule, RuleGroup, RuleSet
from exporter.state import StateStore
from exporter.store import SeriesStore

IMPROVEMENT_LABEL = c.IMPROVEMENT_LABEL
CURRENT = c.IMPROVEMENT_CURRENT
BASELINE = c.IMPROVEMENT_BASELINE
BASELINE_PERSISTED = c.IMPROVEMENT_BASELINE_PERSISTED
TARGET = c.IMPROVEMENT_TARGET
PROGRESS = c.IMPROVEMENT_PROGRESS
PROGRESS_EXPECTED = c.IMPROVEMENT_PROGRESS_EXPECTED
ON_TRACK = c.IMPROVEMENT_ON_TRACK
DAYS_LEFT = c.IMPROVEMENT_DAYS_LEFT
INFO = c.IMPROVEMENT_INFO
KIND_IMPROVEMENT = "improvement"  # state DB kind; key: the improvement's name

log = logging.getLogger("value_exporter.improvements")


def improvement_groups(ruleset: RuleSet, file: str | None = None) -> list[RuleGroup]:
    """One group per improvement (all files, or only those defined in `file`)."""
    return [improvement_group(i) for i in ruleset.improvements
            if file in (None, i.source.file)]


def group_name(improvement: Improvement) -> str:
    """The generated group's name."""
    return f"improvement:{improvement.name}"


def _sel(name: str, improvement: Improvement) -> str:
    return f'{name}{{{IMPROVEMENT_LABEL}="{improvement.name}"}}'


def baseline_expr(improvement: Improvement) -> str:
    """The given baseline, or the metric at `at` falling back to the persisted one."""
    if improvement.baseline is not None:
        return f"vector({number(improvement.baseline)})"
    at_s = number(improvement.baseline_at_ms / 1000)
    # `and time() >= at`: before `at`, `@ at` would still find a sample within the lookback.
    return (f"(sum(last_over_time(({improvement.metric})[1m:1m] @ {at_s}))"
            f" and on () (vector(time()) >= {at_s}))"
            f" or sum({_sel(BASELINE_PERSISTED, improvement)})")


def improvement_group(improvement: Improvement) -> RuleGroup:
    """Every series of one improvement, each rule reading only earlier results."""
    il = ((IMPROVEMENT_LABEL, improvement.name),)
    at_s = number(improvement.baseline_at_ms / 1000)
    by_s = number(improvement.target_by_ms / 1000)
    span_s = number((improvement.target_by_ms - improvement.baseline_at_ms) / 1000)
    current, baseline, target = (_sel(n, improvement) for n in (CURRENT, BASELINE, TARGET))
    progress, expected = _sel(PROGRESS, improvement), _sel(PROGRESS_EXPECTED, improvement)
    progress_expr = f"({current} - {baseline}) / ({target} - {baseline})"
    on_track_expr = f"{progress} >= bool {expected}"
    if improvement.measured:
        # A measured baseline may turn out at or past the target: then there is no span to
        # go (zero or the wrong sign), and progress is whether the target is met now.
        up = improvement.direction == "up"
        room = f"({target} {'>' if up else '<'} {baseline})"
        no_room = f"({target} {'<=' if up else '>='} {baseline})"
        meets = f"({current} {'>=' if up else '<='} bool {target})"
        progress_expr = f"{progress_expr} and on() {room} or {meets} and on() {no_room}"
        on_track_expr = f"{on_track_expr} and on() {room} or {progress} and on() {no_room}"
    exprs = [
        (CURRENT, f"sum({improvement.metric})", il),
        (BASELINE, baseline_expr(improvement), il),
        (TARGET, f"vector({number(improvement.target)})", il),
        (PROGRESS, progress_expr, il),
        (PROGRESS_EXPECTED, f"clamp(vector((time() - {at_s}) / {span_s}), 0, 1)", il),
        (ON_TRACK, on_track_expr, il),
        (DAYS_LEFT, f"vector(({by_s} - time()) / 86400)", il),
        (INFO, "vector(1)", (*il, ("owner", improvement.owner),
                             ("direction", improvement.direction))),
    ]
    rules = tuple(RecordingRule(name=name, expr=canonical(expr), labels=tuple(sorted(labels)),
                                source=improvement.source) for name, expr, labels in exprs)
    return RuleGroup(name=group_name(improvement), file=improvement.source.file, rules=rules)


class MeasuredBaselines:
    """The sidecar's memory of measured baselines: restored, written back, saved once."""

    def __init__(self, improvements: Sequence[Improvement], store: SeriesStore) -> None:
        self.improvements = {i.name: i for i in improvements if i.measured}
        self.store = store
        self.values: dict[str, float] = {}

    def restore(self, state: StateStore) -> int:
        """Load saved baselines whose `at` still matches the rule; returns how many."""
        for name, entry in state.load_kind(KIND_IMPROVEMENT).items():
            improvement = self.improvements.get(name)
            # An edited `at` asks for a new measurement; the old value is ignored.
            if improvement is not None and entry.data.get("at_ms") == improvement.baseline_at_ms:
                self.values[name] = float(entry.data["value"])
                _warn_if_met(improvement, self.values[name])
        return len(self.values)

    def before_evaluation(self, names: Sequence[str], t_ms: int) -> None:
        """Write the persisted baselines of `names` as samples the baseline rule falls back to."""
        self.store.append_many(
            (make_labels({METRIC_NAME: BASELINE_PERSISTED, IMPROVEMENT_LABEL: name}), t_ms,
             self.values[name]) for name in names if name in self.values)

    def after_evaluation(self, names: Sequence[str],
                         t_ms: int) -> list[tuple[str, str, dict[str, Any]]]:
        """State blobs for baselines first seen at `t_ms` (the evaluation that just ran)."""
        blobs: list[tuple[str, str, dict[str, Any]]] = []
        for name in names:
            improvement = self.improvements.get(name)
            if improvement is None or name in self.values or t_ms < improvement.baseline_at_ms:
                continue
            value = self._recorded(BASELINE, name, t_ms)
            if value is None:  # `at` is older than the raw samples: the first value seen
                value = self._recorded(CURRENT, name, t_ms)
            # NaN (e.g. a quantile without traffic) or Inf is no baseline: wait for a number.
            if value is None or not math.isfinite(value):
                continue
            self.values[name] = value
            _warn_if_met(improvement, value)
            blobs.append((KIND_IMPROVEMENT, name, {"value": value, "seen_at_ms": t_ms,
                                                   "at_ms": improvement.baseline_at_ms}))
        return blobs

    def _recorded(self, metric: str, name: str, t_ms: int) -> float | None:
        series = self.store.get(make_labels({METRIC_NAME: metric, IMPROVEMENT_LABEL: name}))
        sample = series.value_at(t_ms, 1) if series is not None else None  # written at t only
        return sample[1] if sample is not None else None


def improvement_status(progress: float | None, on_track: bool, overdue: bool) -> str:
    """The register's word for an improvement: reaching the target beats the due date, and
    the due date beats the straight line (`on_track`: progress at or above it)."""
    if progress is not None and progress >= 1:
        return "achieved"
    if overdue:
        return "overdue"
    return "on track" if on_track else "behind"


def baseline_meets_target(improvement: Improvement, baseline: float) -> bool:
    """Whether a baseline is already at or past the target in the improvement's direction."""
    if improvement.direction == "up":
        return baseline >= improvement.target
    return baseline <= improvement.target


def _warn_if_met(improvement: Improvement, baseline: float) -> None:
    if baseline_meets_target(improvement, baseline):
        log.warning("event=improvement_baseline_meets_target improvement=%s baseline=%s "
                    "target=%s direction=%s", improvement.name,
                    number(baseline), number(improvement.target), improvement.direction)


def measured_group_keys(ruleset: RuleSet) -> dict[tuple[str, str], str]:
    """Generated group key -> improvement name, for improvements with a measured baseline."""
    return {(i.source.file, group_name(i)): i.name for i in ruleset.improvements if i.measured}
