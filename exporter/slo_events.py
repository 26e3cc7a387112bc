"""SLI event counting: good and total events per group_by value since the last SLO evaluation.

Reads raw samples from the store (counters exactly, as increases between samples), so an
SLO sums real events rather than extrapolated rates. The events SLI is the exception: its
PromQL (per-second rates, as Sloth writes them) runs through the engine with `{{.window}}`
set to the time since the last evaluation, times that many seconds, so it extrapolates at
the window's edges as `increase()` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.durations import format_duration
from exporter.labels import METRIC_NAME, Labels, Matcher, MatchType, get_label, make_labels
from exporter.promql.plan import SelectorNode, plan_query
from exporter.promql.values import PromQLError, Vector
from exporter.rules.slo_model import (
    SLO,
    AvailabilitySLI,
    EventsSLI,
    LatencySLI,
    RatioSLI,
)
from exporter.store import Series, SeriesStore

GroupKey = tuple[str, ...]
# query(expr, t_ms) -> instant vector, as rule evaluation's query functions are.
QueryFn = Callable[[str, int], Vector]
WINDOW_PLACEHOLDER = "{{.window}}"


class SLIError(Exception):
    """An SLI that cannot be counted at run time (recorded on the evaluation, never raised out)."""


@dataclass(slots=True)
class IntervalEvents:
    """What one interval contributed: events per group, and the groups whose series exist."""

    good: dict[GroupKey, float] = field(default_factory=dict)
    total: dict[GroupKey, float] = field(default_factory=dict)
    seen: set[GroupKey] = field(default_factory=set)

    def add(self, key: GroupKey, good: float, total: float) -> None:
        self.seen.add(key)
        self.good[key] = self.good.get(key, 0.0) + good
        self.total[key] = self.total.get(key, 0.0) + total


def selector_alternatives(expr: str) -> tuple[tuple[Matcher, ...], ...]:
    """The matcher groups of a plain selector expression; SLIError for anything else."""
    try:
        node = plan_query(expr)
    except PromQLError as exc:
        raise SLIError(f"invalid selector {expr!r}: {exc}") from None
    if not isinstance(node, SelectorNode):
        raise SLIError(f"{expr!r} is not a plain series selector")
    return node.alternatives




class CounterTracker:
    """Exact counter increases between evaluations, with Prometheus's reset rule.

    The last value of each series is remembered, so the increase is measured from the
    previous evaluation's last sample, not from the first sample in the window: no event
    falls between two intervals. A new series starts at its first sample, as `increase()`
    treats it (its value before that is unknown). A drop means the counter restarted at 0.
    """

    def __init__(self) -> None:
        self.last: dict[Labels, float] = {}

    def increases(self, series: list[Series], prev_ms: int,
                  t_ms: int) -> list[tuple[Series, float]]:
        """(series, increase over (prev, t]) for every series with a known value."""
        out: list[tuple[Series, float]] = []
        last: dict[Labels, float] = {}
        for s in series:
            _, vs, lo, hi = s.window(prev_ms, t_ms)
            prior = self.last.get(s.labels)
            inc = 0.0
            for i in range(lo, hi):
                v = vs[i]
                if v != v:  # a stale marker ends the series; NaN counts nothing
                    continue
                if prior is not None:
                    inc += v if v < prior else v - prior
                prior = v
            if prior is not None:
                last[s.labels] = prior
                out.append((s, inc))
        # Series gone from the store are forgotten; if one returns it starts afresh.
        self.last = last
        return out

    def to_state(self) -> list[list[Any]]:
        return [[dict(labels), value] for labels, value in self.last.items()]

    def from_state(self, data: list[list[Any]]) -> None:
        self.last = {make_labels(labels): float(value) for labels, value in data}


class EventCounter:
    """Counts one SLO's events per interval, for whichever SLI kind it has."""

    def __init__(self, slo: SLO, store: SeriesStore, query: QueryFn) -> None:
        self.slo = slo
        self.store = store
        self.query = query
        self.group_by = slo.group_by
        self.trackers: dict[str, CounterTracker] = {}

    def key(self, labels: Labels) -> GroupKey:
        return tuple(get_label(labels, name) for name in self.group_by)

    def count(self, prev_ms: int, t_ms: int, interval_ms: int) -> IntervalEvents:
        """Events in (prev, t]; raises SLIError when the SLI cannot be evaluated."""
        sli = self.slo.sli
        if isinstance(sli, RatioSLI):
            return self._ratio(sli, prev_ms, t_ms)
        if isinstance(sli, LatencySLI):
            return self._latency(sli, prev_ms, t_ms)
        if isinstance(sli, AvailabilitySLI):
            return self._availability(sli, prev_ms, t_ms)
        return self._events(sli, t_ms, interval_ms)

    def reset_counters(self) -> None:
        """Forget the last counter values: after a gap, every series starts afresh."""
        for tracker in self.trackers.values():
            tracker.last.clear()

    def _tracker(self, role: str) -> CounterTracker:
        return self.trackers.setdefault(role, CounterTracker())

    def _sum(self, role: str, expr: str, prev_ms: int, t_ms: int) -> dict[GroupKey, float]:
        series = self.store.select_any(selector_alternatives(expr))
        sums: dict[GroupKey, float] = {}
        for s, inc in self._tracker(role).increases(series, prev_ms, t_ms):
            key = self.key(s.labels)
            sums[key] = sums.get(key, 0.0) + inc
        return sums

    def _ratio(self, sli: RatioSLI, prev_ms: int, t_ms: int) -> IntervalEvents:
        total = self._sum("total", sli.total, prev_ms, t_ms)
        if sli.errors is not None:
            bad = self._sum("errors", sli.errors, prev_ms, t_ms)
            good = {k: v - bad.get(k, 0.0) for k, v in total.items()}
        else:
            good = self._sum("good", sli.good or "", prev_ms, t_ms)
        out = IntervalEvents()
        for key, n in total.items():
            # Scrapes are not atomic across series: clamp so bad never exceeds total.
            out.add(key, min(max(good.get(key, 0.0), 0.0), n), n)
        return out

    def _latency(self, sli: LatencySLI, prev_ms: int, t_ms: int) -> IntervalEvents:
        series = self.store.select_any(selector_alternatives(sli.histogram))
        good: dict[GroupKey, float] = {}
        total: dict[GroupKey, float] = {}
        buckets: list[Series] = []
        has_threshold = False
        for s in series:
            le = _le(get_label(s.labels, "le"))
            if le is None:
                continue
            if le == sli.threshold:
                has_threshold = True
            if le == sli.threshold or le == float("inf"):
                buckets.append(s)
        if series and not has_threshold:
            raise SLIError(f"no bucket le={sli.threshold:g} in {sli.histogram!r}")
        for s, inc in self._tracker("buckets").increases(buckets, prev_ms, t_ms):
            key = self.key(s.labels)
            target = good if _le(get_label(s.labels, "le")) == sli.threshold else total
            target[key] = target.get(key, 0.0) + inc
        missing = set(good) - set(total)
        if missing:
            self._count_fallback(sli, missing, total, prev_ms, t_ms)
        out = IntervalEvents()
        for key, n in total.items():
            out.add(key, min(good.get(key, 0.0), n), n)
        return out

    def _count_fallback(self, sli: LatencySLI, missing: set[GroupKey],
                        total: dict[GroupKey, float], prev_ms: int, t_ms: int) -> None:
        # Without a +Inf bucket the `_count` series carries the total, as in the text format.
        alternatives = []
        for matchers in selector_alternatives(sli.histogram):
            renamed: list[Matcher] = []
            for m in matchers:
                if m.name == "le":
                    continue
                if m.name == METRIC_NAME and m.type is MatchType.EQUAL:
                    m = Matcher.of(METRIC_NAME, MatchType.EQUAL,
                                   m.value.removesuffix("_bucket") + "_count")
                renamed.append(m)
            alternatives.append(tuple(renamed))
        counts = self.store.select_any(tuple(alternatives))
        for s, inc in self._tracker("count").increases(counts, prev_ms, t_ms):
            key = self.key(s.labels)
            if key in missing:
                total[key] = total.get(key, 0.0) + inc
        lacking = missing - set(total)
        if lacking:
            raise SLIError(f"no +Inf bucket or _count series for {sli.histogram!r}")

    def _availability(self, sli: AvailabilitySLI, prev_ms: int, t_ms: int) -> IntervalEvents:
        out = IntervalEvents()
        try:
            node = plan_query(sli.gauge)
        except PromQLError as exc:
            raise SLIError(f"invalid expression {sli.gauge!r}: {exc}") from None
        if not isinstance(node, SelectorNode):
            # A computed gauge has no raw samples: one event per series per evaluation.
            for sample in self._query(sli.gauge, t_ms):
                out.add(self.key(sample.labels), 1.0 if sample.value == 1 else 0.0, 1.0)
            return out
        for s in self.store.select_any(node.alternatives):
            _, vs, lo, hi = s.window(prev_ms, t_ms)
            key = self.key(s.labels)
            good = total = 0.0
            for i in range(lo, hi):
                v = vs[i]
                if v != v:  # stale markers and NaN are not scrapes that answered
                    continue
                total += 1.0
                if v == 1.0:
                    good += 1.0
            if total or s.value_at(t_ms, self.store.lookback_ms) is not None:
                out.add(key, good, total)
        return out

    def _events(self, sli: EventsSLI, t_ms: int, interval_ms: int) -> IntervalEvents:
        # Sloth's queries are per-second rates: times the interval they are events, with the
        # extrapolation increase() applies at the window's edges.
        window = format_duration(interval_ms)
        seconds = interval_ms / 1000
        bad = self._query_sums(sli.error_query.replace(WINDOW_PLACEHOLDER, window), t_ms)
        total = self._query_sums(sli.total_query.replace(WINDOW_PLACEHOLDER, window), t_ms)
        bad = {k: v * seconds for k, v in bad.items()}
        total = {k: v * seconds for k, v in total.items()}
        out = IntervalEvents()
        for key, n in total.items():
            if n != n:  # NaN from an empty rate: no events
                continue
            b = bad.get(key, 0.0)
            b = 0.0 if b != b else b
            out.add(key, min(max(n - b, 0.0), n), n)
        return out

    def _query_sums(self, expr: str, t_ms: int) -> dict[GroupKey, float]:
        sums: dict[GroupKey, float] = {}
        for sample in self._query(expr, t_ms):
            key = self.key(sample.labels)
            sums[key] = sums.get(key, 0.0) + sample.value
        return sums

    def _query(self, expr: str, t_ms: int) -> Vector:
        try:
            return self.query(expr, t_ms)
        except PromQLError as exc:
            raise SLIError(f"query {expr!r} failed: {exc}") from None

    def to_state(self) -> dict[str, list[list[Any]]]:
        return {role: tracker.to_state() for role, tracker in sorted(self.trackers.items())}

    def from_state(self, data: dict[str, list[list[Any]]]) -> None:
        for role, values in data.items():
            self._tracker(role).from_state(values)


def _le(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def sli_exprs(slo: SLO, interval_ms: int) -> list[str]:
    """The PromQL an SLO's SLI reads, for the daemon's keep-list and raw-sample retention."""
    sli = slo.sli
    if isinstance(sli, RatioSLI):
        return [e for e in (sli.total, sli.errors, sli.good) if e]
    if isinstance(sli, LatencySLI):
        exprs = [sli.histogram]
        name = _metric_name_of(sli.histogram)
        if name.endswith("_bucket"):  # the `_count` fallback for histograms without +Inf
            exprs.append(name.removesuffix("_bucket") + "_count")
        return exprs
    if isinstance(sli, AvailabilitySLI):
        return [sli.gauge]
    window = format_duration(interval_ms)
    return [sli.error_query.replace(WINDOW_PLACEHOLDER, window),
            sli.total_query.replace(WINDOW_PLACEHOLDER, window)]


def _metric_name_of(selector: str) -> str:
    try:
        alternatives = selector_alternatives(selector)
    except SLIError:
        return ""
    for matchers in alternatives:
        for m in matchers:
            if m.name == METRIC_NAME and m.type is MatchType.EQUAL:
                return m.value
    return ""
