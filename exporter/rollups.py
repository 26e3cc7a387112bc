"""Hourly rollups: value, journey, improvement, parameter and SLO samples of each evaluation.

A sample at t belongs to the hour (hour_ms, hour_ms + 1h], left-open like the SLO buckets, so
an hour's `last` is the value Prometheus returns for the series at the hour's end and the
report reads the state database and a Prometheus the same way. Rows carry one sample each;
the state database folds them into their hour (exporter/state.py) in the evaluation's own
transaction, and a repeated evaluation time is ignored there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from exporter import conventions as c
from exporter.evaluate import GroupEvaluator
from exporter.labels import METRIC_NAME, Labels, Matcher, MatchType, format_labels
from exporter.rules.model import RecordingRule, RuleGroup
from exporter.slo import SLOEvaluator
from exporter.state import RollupRow, StateStore
from exporter.store import SeriesStore

HOUR_MS = 3_600_000
# Generated groups whose series are rolled up (exporter/value.py, journeys.py, improvements.py).
_GROUP_PREFIXES = ("journey:", "improvement:")


def hour_of(t_ms: int) -> int:
    """The start of the hour (start, start + 1h] that holds a sample at t."""
    return (t_ms - 1) // HOUR_MS * HOUR_MS


def rolled_up(group: RuleGroup) -> bool:
    """Whether a rule group's recorded series are rolled up (value, parameter, journey, CSI)."""
    return group.name == c.VALUE_GROUP or group.name.startswith(_GROUP_PREFIXES)


def sample_rows(samples: Iterable[tuple[Labels, float]], t_ms: int) -> list[RollupRow]:
    """One row per finite sample at t (NaN and infinities from a 0/0 are no data)."""
    hour = hour_of(t_ms)
    rows: dict[str, RollupRow] = {}
    for labels, value in samples:
        if not math.isfinite(value):
            continue
        series = format_labels(labels)
        name = next((v for k, v in labels if k == METRIC_NAME), "")
        rest = {k: v for k, v in labels if k != METRIC_NAME}
        rows[series] = RollupRow(name, series, rest, hour, value, t_ms, value, value, value, 1)
    return list(rows.values())


def fold(rows: Iterable[RollupRow]) -> list[RollupRow]:
    """Rows of the same series and hour merged as the database merges them (later sample last)."""
    out: dict[tuple[str, int], RollupRow] = {}
    for row in sorted(rows, key=lambda r: r.last_ms):
        key = (row.series, row.hour_ms)
        seen = out.get(key)
        if seen is None:
            out[key] = row
        elif row.last_ms > seen.last_ms:
            out[key] = RollupRow(row.name, row.series, row.labels, row.hour_ms, row.last,
                                 row.last_ms, min(seen.min, row.min), max(seen.max, row.max),
                                 seen.sum + row.sum, seen.count + row.count)
    return list(out.values())


def _at(store: SeriesStore, names: Sequence[str], extra: Sequence[Matcher],
        t_ms: int) -> list[tuple[Labels, float]]:
    """Every series of these names with a (non-stale) sample exactly at t."""
    found: list[tuple[Labels, float]] = []
    for name in dict.fromkeys(names):
        for series in store.select([Matcher.of(METRIC_NAME, MatchType.EQUAL, name), *extra]):
            point = series.value_at(t_ms, 1)
            if point is not None:
                found.append((series.labels, point[1]))
    return found


def evaluation_rows(store: SeriesStore, evaluator: GroupEvaluator,
                    slo_evaluator: SLOEvaluator | None, t_ms: int) -> list[RollupRow]:
    """The rollup rows of one group evaluation at t: its SLO's series and its recorded ones."""
    samples: list[tuple[Labels, float]] = []
    if slo_evaluator is not None:
        own = [Matcher.of(c.SLO_LABEL, MatchType.EQUAL, slo_evaluator.slo.name)]
        names = [n for n, _, _ in slo_evaluator.series_families()]
        samples += _at(store, names, own, t_ms)
    if rolled_up(evaluator.group):
        names = [r.name for r in evaluator.group.rules if isinstance(r, RecordingRule)]
        samples += _at(store, names, [], t_ms - evaluator.query_offset_ms)
    return sample_rows(samples, t_ms)


def prune(state: StateStore, now_ms: int, retention_ms: int) -> int:
    """Forget rollup hours older than the retention; returns the rows deleted."""
    return state.prune_rollups(hour_of(now_ms - retention_ms))
