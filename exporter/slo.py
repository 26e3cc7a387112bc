"""SLO evaluation: per-interval events into compact buckets, every window an exact sum, series out.

`SLOEvaluator.evaluate(t_ms)` runs once per evaluation interval, before the rule groups at
the same time (so the SLO alert rules read fresh series). Each run counts the SLI's good and
total events in (previous evaluation, t] per group_by value, adds them to that group's
bucket ring (one bucket per max(interval, 1m)), and writes every SLO series into the store.

Semantics, decided here and documented in the README:
- no_data: an interval (occurrences) or a slice (timeslices) without events is ignored by
  default; `good`/`bad` count it as one good/bad event or slice. It applies while the SLI's
  series exist (always for an SLO without group_by); gaps in the sidecar's own uptime and
  maintenance never get it.
- A window without events exports no ratio, SLI or burn rate (absent, never NaN); the
  remaining budget of an empty window is 1.0 (nothing spent).
- Maintenance: an interval whose start lies in a maintenance window adds no events.
- Calendar windows: a bucket belongs to the period its start lies in; the period shown at t
  is the one containing t, so at the period start the budget is full again.
- Timeslices: a slice is judged once all its buckets are in (at the evaluation at its end,
  or the first one after); every ratio is bad slices / slices with data.
- Restart: `from_state` then a first evaluation more than 1.5 intervals after the last one
  is a gap: its buckets stay empty, counters start afresh from their first new sample, and
  the gap's length is reported (`data_gap_seconds`, `value_exporter_slo_data_gap_seconds_total`).
"""

from __future__ import annotations

import math
import operator
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from exporter import conventions as c
from exporter.evaluate import store_query_fn
from exporter.labels import STALE_NAN, Labels
from exporter.rules.slo_model import SLO, CalendarWindow, RollingWindow
from exporter.slo_buckets import BucketRing
from exporter.slo_events import EventCounter, GroupKey, IntervalEvents, QueryFn, SLIError
from exporter.slo_series import (
    GroupFigures,
    WindowSums,
    base_labels,
    group_samples,
    info_labels,
    labelled,
    series_names,
    slo_samples,
)
from exporter.slo_windows import (
    EXHAUSTION_WINDOW_MS,
    MINUTE_MS,
    alert_windows_ms,
    in_maintenance,
    next_period_start_ms,
    period_start_ms,
    slo_window_ms,
)
from exporter.store import SeriesStore

STATE_VERSION = 1
_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}


@dataclass(slots=True)
class SLOEvaluation:
    """The outcome of one SLO evaluation."""

    slo: SLO
    t_ms: int
    groups: int = 0
    samples: int = 0
    error: str = ""  # the SLI could not be counted this interval (no events were added)
    data_gap_seconds: float = 0.0  # sidecar downtime detected at this evaluation
    dropped: int = 0  # group values over series_limit that had series this interval
    in_maintenance: bool = False
    duration_s: float = 0.0


class _Group:
    """One group_by value's buckets, period sums, counters and open slice."""

    __slots__ = (
        "events",
        "good_events",
        "key",
        "labels",
        "period_good",
        "period_total",
        "ring",
        "slice_excluded",
        "slice_good",
        "slice_index",
        "slice_total",
    )

    def __init__(self, key: GroupKey, labels: dict[str, str], ring: BucketRing) -> None:
        self.key = key
        self.labels = labels
        self.ring = ring
        self.period_good = 0.0
        self.period_total = 0.0
        self.events = 0.0
        self.good_events = 0.0
        self.slice_index: int | None = None
        self.slice_good = 0.0
        self.slice_total = 0.0
        self.slice_excluded = False


class HistoryBucket(Protocol):
    """One bucket of backfilled history (exporter.backfill.Bucket has this shape)."""

    @property
    def start_ms(self) -> int: ...
    @property
    def good(self) -> float: ...
    @property
    def total(self) -> float: ...


class SLOEvaluator:
    """Evaluates one SLO repeatedly, holding its buckets; state survives restarts via to_state."""

    def __init__(self, slo: SLO, store: SeriesStore, *, interval_ms: int,
                 query_fn: QueryFn | None = None) -> None:
        self.slo = slo
        self.store = store
        self.interval_ms = interval_ms
        self.bucket_ms = max(interval_ms, MINUTE_MS)
        self.windows = alert_windows_ms(slo)
        rolling = slo.window.duration_ms if isinstance(slo.window, RollingWindow) else 0
        # Calendar periods are summed as they go, so the ring only spans the alert windows.
        span = max((*self.windows, rolling))
        self.ring_size = math.ceil(span / self.bucket_ms) + 1
        self.counter = EventCounter(
            slo, store, query_fn or store_query_fn(store, subquery_step_ms=interval_ms))
        self.base = base_labels(slo)
        self.info = labelled(c.SLO_INFO, {**self.base, **info_labels(slo)})
        self.gap = labelled(c.SLO_DATA_GAP, self.base)
        self.length = labelled(c.SLO_PERIOD_LENGTH, self.base)
        self.groups: dict[GroupKey, _Group] = {}
        if not slo.group_by:
            self._group(())
        self.slice_buckets = 1
        self.comparator: Callable[[float, float], bool] = operator.ge
        if slo.budgeting is not None:
            # A slice shorter than a bucket cannot be judged on its own: it becomes a bucket.
            self.slice_buckets = max(1, math.ceil(slo.budgeting.slice_ms / self.bucket_ms))
            self.comparator = _COMPARATORS[slo.budgeting.comparator]
        self.period_start: int | None = None
        self.period_end: int | None = None
        self.last_evaluation_ms: int | None = None
        self.data_gap_seconds_total = 0.0
        self._restored = False
        self._written: set[Labels] = set()

    # -- evaluation ----------------------------------------------------------------------

    def evaluate(self, t_ms: int) -> SLOEvaluation:
        """Count the events since the last evaluation and write every SLO series at t."""
        started = time.perf_counter()
        result = SLOEvaluation(self.slo, t_ms)
        last = self.last_evaluation_ms
        if last is not None and t_ms <= last:
            return result  # already evaluated (a repeated or late call): nothing new
        prev = last if last is not None else t_ms - self.interval_ms
        baseline = last is None
        if self._restored and last is not None and t_ms - last > self.interval_ms * 3 // 2:
            # Downtime: nothing is known between the last evaluation and this interval, so
            # counters start afresh inside it and the gap's buckets stay empty.
            gap_ms = t_ms - last - self.interval_ms
            result.data_gap_seconds = gap_ms / 1000
            self.data_gap_seconds_total += gap_ms / 1000
            self.counter.reset_counters()
            prev = t_ms - self.interval_ms
            baseline = True
        self._restored = False
        result.in_maintenance = in_maintenance(self.slo.maintenance, prev)
        events: IntervalEvents | None = None
        try:
            events = self.counter.count(prev, t_ms, t_ms - prev)
        except SLIError as exc:
            result.error = str(exc)
        if events is not None:
            result.dropped = self._admit(events)
        self._roll_period(t_ms)
        k = (t_ms - 1) // self.bucket_ms
        for group in self.groups.values():
            self._add(group, k, t_ms, events, result.in_maintenance, first=baseline)
        self._evict_idle(events)
        result.samples = self._write(t_ms, k)
        result.groups = len(self.groups)
        self.last_evaluation_ms = t_ms
        result.duration_s = time.perf_counter() - started
        return result

    def load_backfill(self, history: Mapping[GroupKey, Sequence[HistoryBucket]],
                      now_ms: int) -> int:
        """Fill the buckets before now from another engine's history; returns buckets filled.

        Only for a fresh evaluator (no state restored): the next evaluation then starts
        counting from live samples after the history ends, as after a first start.
        """
        newest = (now_ms - 1) // self.bucket_ms
        self._roll_period(now_ms)
        filled = 0
        for key, buckets in sorted(history.items()):
            group = self.groups.get(key)
            if group is None:
                if len(self.groups) >= self.slo.series_limit:
                    continue
                group = self._group(key)
            group.ring.advance(newest)
            for bucket in buckets:
                # Bucket k covers (k * width, (k + 1) * width], as the ring's buckets do.
                k = bucket.start_ms // self.bucket_ms
                if bucket.total <= 0 or k > newest or k <= newest - self.ring_size:
                    continue
                group.ring.add(k, bucket.good, bucket.total)
                if self._in_period(k):
                    group.period_good += bucket.good
                    group.period_total += bucket.total
                filled += 1
        return filled

    def _group(self, key: GroupKey) -> _Group:
        labels = dict(self.base)
        for name, value in zip(self.slo.group_by, key, strict=True):
            labels[name] = value
        group = _Group(key, labels, BucketRing(self.ring_size, self.bucket_ms))
        self.groups[key] = group
        return group

    def _admit(self, events: IntervalEvents) -> int:
        """Create groups for new values up to series_limit; returns how many were refused."""
        dropped = 0
        for key in sorted(events.seen):
            if key in self.groups:
                continue
            if len(self.groups) >= self.slo.series_limit:
                dropped += 1
                continue
            self._group(key)
        return dropped

    def _roll_period(self, t_ms: int) -> None:
        window = self.slo.window
        if not isinstance(window, CalendarWindow):
            return
        if self.period_start is not None and self.period_end is not None \
                and self.period_start <= t_ms < self.period_end:
            return
        start = period_start_ms(t_ms, window)
        if start != self.period_start:
            for group in self.groups.values():
                group.period_good = group.period_total = 0.0
        self.period_start = start
        self.period_end = next_period_start_ms(start, window)

    def _in_period(self, bucket: int) -> bool:
        # A bucket belongs to the calendar period its start lies in.
        return self.period_start is not None and bucket * self.bucket_ms >= self.period_start

    def _add(self, group: _Group, k: int, t_ms: int, events: IntervalEvents | None,
             maintenance: bool, *, first: bool) -> None:
        # The first evaluation only takes the counters' baselines: whether its interval had
        # traffic is unknown, so no_data does not apply to it.
        good = total = 0.0
        counted = events is not None and not maintenance
        if counted and events is not None:
            good = events.good.get(group.key, 0.0)
            total = events.total.get(group.key, 0.0)
            group.events += total
            group.good_events += good
        group.ring.advance(k)
        if self.slo.budgeting is not None:
            self._add_slice(group, k, t_ms, good, total, maintenance or events is None or first)
            return
        if counted and not first and total == 0 and self._no_data_applies(group, events):
            good, total = (1.0, 1.0) if self.slo.no_data == "good" else (0.0, 1.0)
        if total:
            group.ring.add(k, good, total)
            if self._in_period(k):
                group.period_good += good
                group.period_total += total

    def _no_data_applies(self, group: _Group, events: IntervalEvents | None) -> bool:
        if self.slo.no_data == "ignore":
            return False
        return not self.slo.group_by or (events is not None and group.key in events.seen)

    def _add_slice(self, group: _Group, k: int, t_ms: int, good: float, total: float,
                   excluded: bool) -> None:
        j = k // self.slice_buckets
        if group.slice_index is not None and j > group.slice_index:
            self._close_slice(group)
        if group.slice_index is None:
            group.slice_index = j
        group.slice_good += good
        group.slice_total += total
        group.slice_excluded = group.slice_excluded or excluded
        # Judge the slice now when this evaluation is at its very end.
        if t_ms % self.bucket_ms == 0 and (k + 1) % self.slice_buckets == 0:
            self._close_slice(group)

    def _close_slice(self, group: _Group) -> None:
        j = group.slice_index
        assert j is not None
        outcome: tuple[float, float] | None = None
        if group.slice_total > 0:
            ok = self.comparator(group.slice_good / group.slice_total, self._slice_threshold())
            outcome = (1.0, 1.0) if ok else (0.0, 1.0)
        elif not group.slice_excluded and self.slo.no_data != "ignore":
            outcome = (1.0, 1.0) if self.slo.no_data == "good" else (0.0, 1.0)
        if outcome is not None:
            last_bucket = (j + 1) * self.slice_buckets - 1
            group.ring.add(last_bucket, *outcome)
            if self._in_period(j * self.slice_buckets):
                group.period_good += outcome[0]
                group.period_total += outcome[1]
        group.slice_index = None
        group.slice_good = group.slice_total = 0.0
        group.slice_excluded = False

    def _slice_threshold(self) -> float:
        assert self.slo.budgeting is not None
        return self.slo.budgeting.threshold

    def _evict_idle(self, events: IntervalEvents | None) -> None:
        # A group whose series are gone and whose buckets are all empty frees its slot.
        if not self.slo.group_by or events is None:
            return
        for key in [k for k, g in self.groups.items()
                    if k not in events.seen and g.ring.is_empty() and not g.period_total
                    and g.slice_index is None]:
            del self.groups[key]

    # -- series --------------------------------------------------------------------------

    def figures(self, group: _Group, k: int) -> GroupFigures:
        """The sums one group's series are computed from, at bucket k."""
        b = self.bucket_ms
        windows = {
            w: WindowSums(*group.ring.sums(k, math.ceil(w / b))) for w in self.windows
        }
        window = self.slo.window
        if isinstance(window, RollingWindow):
            n = math.ceil(window.duration_ms / b)
            period = WindowSums(*group.ring.sums(k, n))
            length = window.duration_ms
        else:
            assert self.period_start is not None and self.period_end is not None
            period = WindowSums(group.period_good, group.period_total)
            length = self.period_end - self.period_start
        return GroupFigures(windows, period, self._period_start_ms(k), length, group.events,
                            group.good_events)

    def _period_start_ms(self, k: int) -> int:
        window = self.slo.window
        if isinstance(window, RollingWindow):
            return (k + 1 - math.ceil(window.duration_ms / self.bucket_ms)) * self.bucket_ms
        assert self.period_start is not None
        return self.period_start

    def _write(self, t_ms: int, k: int) -> int:
        written: set[Labels] = set()
        samples: list[tuple[Labels, float]] = [(self.info, 1.0),
                                               (self.gap, self.data_gap_seconds_total),
                                               (self.length, self._period_length_s())]
        samples.extend((labelled(name, self.base), value)
                       for name, value in slo_samples(self.slo, self._period_start_ms(k)))
        for group in self.groups.values():
            for name, value in group_samples(self.slo, self.figures(group, k),
                                             EXHAUSTION_WINDOW_MS):
                samples.append((labelled(name, group.labels), value))
        for labels, value in samples:
            self.store.append(labels, t_ms, value)  # a refusal (same t twice) is harmless
            written.add(labels)
        for labels in self._written - written:
            self.store.append(labels, t_ms, STALE_NAN)
        self._written = written
        return len(samples)

    def _period_length_s(self) -> float:
        # Calendar burn-rate factors scale with this period's real length (28 to 31 days).
        if self.period_start is not None and self.period_end is not None:
            return (self.period_end - self.period_start) / 1000
        return slo_window_ms(self.slo) / 1000

    def series_families(self) -> list[tuple[str, str, str]]:
        """(name, type, help) of every series this SLO writes."""
        return series_names(self.slo, self.windows)

    def memory_bytes(self) -> int:
        """Approximate memory held for the SLO's buckets and groups."""
        total = sys.getsizeof(self.groups)
        for group in self.groups.values():
            total += group.ring.nbytes() + sys.getsizeof(group) + sys.getsizeof(group.labels)
        return total

    # -- state for persistence -------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Buckets, period, counters and last raw counter values, JSON-friendly."""
        return {
            "version": STATE_VERSION,
            "slo": self.slo.name,
            "bucket_ms": self.bucket_ms,
            "last_evaluation_ms": self.last_evaluation_ms,
            "period_start_ms": self.period_start,
            "data_gap_seconds_total": self.data_gap_seconds_total,
            "counters": self.counter.to_state(),
            "groups": [
                {
                    "key": list(g.key),
                    "ring": g.ring.to_state(),
                    "period": [g.period_good, g.period_total],
                    "events": [g.good_events, g.events],
                    "slice": [g.slice_index, g.slice_good, g.slice_total, g.slice_excluded],
                }
                for g in self.groups.values()
            ],
        }

    def from_state(self, data: dict[str, Any]) -> None:
        """Restore `to_state` output; the next evaluation detects the downtime as a gap.

        State of another SLO or version is ignored; a changed interval keeps the counters
        and period sums but starts the buckets empty; a changed window keeps what fits.
        """
        if data.get("version") != STATE_VERSION or data.get("slo") != self.slo.name:
            return
        self.last_evaluation_ms = data.get("last_evaluation_ms")
        self.data_gap_seconds_total = float(data.get("data_gap_seconds_total", 0.0))
        self.counter.from_state(data.get("counters", {}))
        start = data.get("period_start_ms")
        window = self.slo.window
        if isinstance(window, CalendarWindow) and start is not None:
            self.period_start = int(start)
            self.period_end = next_period_start_ms(self.period_start, window)
        groups = [g for g in data.get("groups", []) if len(g["key"]) == len(self.slo.group_by)]
        self.groups = {} if self.slo.group_by else self.groups
        for item in groups[: max(self.slo.series_limit, 1)]:
            group = self._group(tuple(item["key"]))
            group.ring = BucketRing.from_state(item["ring"], self.ring_size, self.bucket_ms)
            group.period_good, group.period_total = map(float, item["period"])
            group.good_events, group.events = map(float, item["events"])
            index, sg, st, maint = item["slice"]
            group.slice_index = None if index is None else int(index)
            group.slice_good, group.slice_total = float(sg), float(st)
            group.slice_excluded = bool(maint)
        self._restored = True

