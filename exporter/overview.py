"""Overview page data: the rule model plus the newest recorded samples, as plain rows (pure).

The page shows what /metrics exports, never a second computation: every figure is the
newest sample of one recorded series (or the sum of a money series over its group_by
labels), and a series that is absent stays None, which the page prints as "no data".
Names, owners, units and objectives come from the rule model, so the page lists every SLO,
value metric, journey and improvement even before the first evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from exporter import conventions as c
from exporter.durations import format_duration
from exporter.labels import METRIC_NAME, Matcher, MatchType
from exporter.rules.journey_model import Improvement, Journey
from exporter.rules.model import RuleSet
from exporter.rules.slo_model import SLO
from exporter.rules.value_model import ValueMetric
from exporter.slo_series import objective
from exporter.slo_windows import window_label, window_name
from exporter.store import SeriesStore
from exporter.units import is_share
from exporter.value import shorthand_series

LabelDict = Mapping[str, str]
# Series the page reads: everything recorded under these prefixes, plus value metric names.
_PREFIXES = ("slo:", "journey:", "improvement:", "value:")
BURN_WINDOW_MS = 3_600_000  # the burn rate the table shows: the page-fast tier's long window
# Status thresholds: a burn rate above 1 spends the budget faster than the window allows.
WARN_BURN_RATE = 1.0
_SHORTHAND_TITLES = {
    "revenue_at_risk": "Revenue at risk",
    "value_delivered": "Value delivered",
    "cost_of_downtime": "Cost of downtime",
    "error_budget_value": "Error budget left, in money",
}


@dataclass(frozen=True, slots=True)
class Sample:
    """The newest value of one series: its labels (without the name) and value."""

    labels: tuple[tuple[str, str], ...]
    value: float

    def matches(self, match: LabelDict) -> bool:
        """Whether every label in `match` has the same value here."""
        own = dict(self.labels)
        return all(own.get(k) == v for k, v in match.items())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The newest sample of each series, by metric name, at one instant."""

    t_ms: int
    series: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)

    def select(self, name: str, match: LabelDict) -> list[Sample]:
        """Samples of `name` whose labels include `match`."""
        return [s for s in self.series.get(name, ()) if s.matches(match)]

    def one(self, name: str, labels: LabelDict) -> float | None:
        """The value of the series with exactly these labels, or None when absent."""
        want = tuple(sorted(labels.items()))
        for s in self.series.get(name, ()):
            if s.labels == want:
                return s.value
        return None

    def total(self, name: str, match: LabelDict) -> float | None:
        """The sum over the matching series (money adds up across group_by), None if none."""
        found = self.select(name, match)
        return sum(s.value for s in found) if found else None


def snapshot_store(store: SeriesStore, names: Iterable[str], t_ms: int) -> Snapshot:
    """The newest non-stale sample within the lookback of each series named, as /metrics reads."""
    wanted = {*names, c.ALERTS}
    out: dict[str, tuple[Sample, ...]] = {}
    # By name through the index: the raw scraped series, most of the store, are never visited.
    for name in store.metric_names():
        if name not in wanted and not name.startswith(_PREFIXES):
            continue
        samples = []
        for series in store.select([Matcher.of(METRIC_NAME, MatchType.EQUAL, name)]):
            point = series.value_at(t_ms, store.lookback_ms)
            if point is not None:
                rest = tuple((k, v) for k, v in series.labels if k != METRIC_NAME)
                samples.append(Sample(rest, point[1]))
        if samples:
            out[name] = tuple(sorted(samples, key=lambda s: s.labels))
    return Snapshot(t_ms, out)


def page_series_names(rules: RuleSet) -> list[str]:
    """Value metric names the page reads besides the fixed prefixes."""
    return [v.name for v in rules.values if v.shorthand is None]


# -- rows --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One number on the page: which series it is, which labels select it, and its value."""

    caption: str
    series: str
    match: tuple[tuple[str, str], ...]
    value: float | None
    unit: str  # a currency code, ratio, seconds, exhaustion, burn, count, days, number, a word


@dataclass(frozen=True, slots=True)
class ValueCard:
    """A business value metric with its figures (last hour, SLO window, or its own value)."""

    title: str
    owner: str
    help: str
    slo: str
    figures: tuple[Figure, ...]
    series: str = ""  # a custom metric's recorded name (shorthands name their SLO instead)


@dataclass(frozen=True, slots=True)
class SLORow:
    """One SLO (or one of its group_by series) in the table."""

    name: str
    service: str
    owner: str
    window: str
    group: tuple[tuple[str, str], ...]  # the group_by labels, empty for an ungrouped SLO
    objective: float
    sli: Figure
    budget_remaining: Figure
    burn_rate: Figure
    exhausted_in: Figure
    firing: tuple[str, ...]  # alert names firing for this row
    status: str  # "ok" | "warning" | "critical" | "nodata"


@dataclass(frozen=True, slots=True)
class ImprovementRow:
    """One entry of the improvement register."""

    name: str
    owner: str
    description: str
    direction: str
    baseline: Figure
    target: Figure
    current: Figure
    progress: Figure
    expected: Figure
    days_left: Figure
    on_track: bool | None


@dataclass(frozen=True, slots=True)
class StageRow:
    """One stage of a journey funnel over the journey window."""

    step: int
    name: str
    attempts: Figure
    successes: Figure
    success_ratio: Figure
    dropoff: Figure


@dataclass(frozen=True, slots=True)
class JourneyView:
    """A customer journey: stages in order, conversion and value realized."""

    name: str
    owner: str
    description: str
    window: str
    stages: tuple[StageRow, ...]
    conversion: Figure
    value: Figure | None  # None when no stage realizes money


@dataclass(frozen=True, slots=True)
class TargetRow:
    """One scrape target's health as the scraper last saw it."""

    name: str  # the `target` label of the self-metrics: job/address
    job: str
    url: str
    state: str  # "up" | "down" | "unknown"
    last_scrape_ms: int | None
    last_duration_s: float
    last_error: str
    failures: float  # scrape failures since the start, all reasons


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the page shows."""

    generated_ms: int
    evaluated: bool  # some rule group has been evaluated at least once
    refresh_s: int
    values: tuple[ValueCard, ...]
    slos: tuple[SLORow, ...]
    improvements: tuple[ImprovementRow, ...]
    journeys: tuple[JourneyView, ...]
    targets: tuple[TargetRow, ...]
    firing_alerts: int


def build_overview(rules: RuleSet, snap: Snapshot, targets: Sequence[TargetRow], *,
                   evaluated: bool, refresh_s: int) -> Overview:
    """The page's rows from the rule model and one snapshot."""
    firing = [s for s in snap.series.get(c.ALERTS, ())
              if dict(s.labels).get(c.ALERT_STATE_LABEL) == "firing"]
    return Overview(
        generated_ms=snap.t_ms, evaluated=evaluated, refresh_s=refresh_s,
        values=tuple(value_card(v, rules, snap) for v in rules.values),
        slos=tuple(row for slo in rules.slos for row in slo_rows(slo, snap)),
        improvements=tuple(improvement_row(i, snap) for i in rules.improvements),
        journeys=tuple(journey_view(j, snap) for j in rules.journeys),
        targets=tuple(targets), firing_alerts=len(firing),
    )


def _figure(caption: str, name: str, match: LabelDict, value: float | None,
            unit: str) -> Figure:
    return Figure(caption, name, tuple(sorted(match.items())), value, unit)


def value_card(metric: ValueMetric, rules: RuleSet, snap: Snapshot) -> ValueCard:
    """A value metric: a shorthand's last-hour and window figures, or a custom metric's own."""
    sh = metric.shorthand
    if sh is None:
        unit = "number" if metric.unit == "ratio" and not is_share(metric.name, metric.unit) \
            else metric.unit
        figures = tuple(_figure("now", metric.name, dict(s.labels), s.value, unit)
                        for s in snap.select(metric.name, {}))
        if not figures:
            figures = (_figure("now", metric.name, {}, None, unit),)
        # The help text is the business sentence, so it is the title; the name is for SREs.
        return ValueCard(metric.help or metric.name, metric.owner, "", "", figures, metric.name)
    slo = next((s for s in rules.slos if s.name == sh.slo), None)
    window = window_label(slo) if slo is not None else "SLO"
    match = {c.SLO_LABEL: sh.slo}
    out: list[Figure] = []
    for name in shorthand_series(sh):
        caption = "last hour" if name.endswith("increase1h") else f"this {window} window"
        out.append(_figure(caption, name, match, snap.total(name, match), metric.unit))
    return ValueCard(_SHORTHAND_TITLES[sh.kind], metric.owner, metric.help, sh.slo, tuple(out))


def slo_rows(slo: SLO, snap: Snapshot) -> list[SLORow]:
    """One row per group_by series of the SLO (one row, all "no data", before any evaluation)."""
    own = {c.SLO_LABEL: slo.name}
    found = snap.select(c.SLO_BUDGET_REMAINING, own)
    label_sets = [dict(s.labels) for s in found] or [{**dict(slo.labels), **own,
                                                     c.SERVICE_LABEL: slo.service}]
    alerts = [dict(s.labels) for s in snap.select(c.ALERTS, own)
              if dict(s.labels).get(c.ALERT_STATE_LABEL) == "firing"]
    rows = []
    for labels in label_sets:
        group = tuple((k, labels[k]) for k in slo.group_by if k in labels)
        burn_name = c.slo_burn_rate(window_name(BURN_WINDOW_MS))
        sli = _figure("SLI", c.SLO_SLI_PERIOD, labels, snap.one(c.SLO_SLI_PERIOD, labels), "ratio")
        remaining = _figure("budget remaining", c.SLO_BUDGET_REMAINING, labels,
                            snap.one(c.SLO_BUDGET_REMAINING, labels), "ratio")
        burn = _figure("burn rate (1h)", burn_name, labels, snap.one(burn_name, labels), "burn")
        exhausted = _figure("budget gone in", c.SLO_BUDGET_EXHAUSTED_IN, labels,
                            snap.one(c.SLO_BUDGET_EXHAUSTED_IN, labels), "exhaustion")
        mine = [a for a in alerts if all(a.get(k) == v for k, v in group)]
        firing = tuple(sorted({a.get(c.ALERT_NAME_LABEL, "") for a in mine}))
        severities = {a.get("severity", "") for a in mine}
        rows.append(SLORow(
            name=slo.name, service=slo.service, owner=slo.owner, window=window_label(slo),
            group=group, objective=objective(slo), sli=sli, budget_remaining=remaining,
            burn_rate=burn, exhausted_in=exhausted, firing=firing,
            status=slo_status(sli.value, remaining.value, burn.value, severities),
        ))
    return rows


def slo_status(sli: float | None, remaining: float | None, burn: float | None,
               firing_severities: Iterable[str]) -> str:
    """critical: budget spent or a page firing; warning: a ticket firing or burning over 1x."""
    severities = set(firing_severities)
    if sli is None and remaining is None:
        return "nodata"
    if (remaining is not None and remaining <= 0) or "page" in severities:
        return "critical"
    if severities or (burn is not None and burn > WARN_BURN_RATE):
        return "warning"
    if sli is None:
        return "nodata"
    return "ok"


def improvement_row(improvement: Improvement, snap: Snapshot) -> ImprovementRow:
    """The register entry with its recorded figures."""
    match = {c.IMPROVEMENT_LABEL: improvement.name}

    def fig(caption: str, name: str, unit: str) -> Figure:
        return _figure(caption, name, match, snap.one(name, match), unit)

    on_track = snap.one(c.IMPROVEMENT_ON_TRACK, match)
    return ImprovementRow(
        name=improvement.name, owner=improvement.owner, description=improvement.description,
        direction=improvement.direction,
        baseline=fig("baseline", c.IMPROVEMENT_BASELINE, "number"),
        target=fig("target", c.IMPROVEMENT_TARGET, "number"),
        current=fig("current", c.IMPROVEMENT_CURRENT, "number"),
        progress=fig("progress", c.IMPROVEMENT_PROGRESS, "ratio"),
        expected=fig("expected by now", c.IMPROVEMENT_PROGRESS_EXPECTED, "ratio"),
        days_left=fig("days left", c.IMPROVEMENT_DAYS_LEFT, "days"),
        on_track=None if on_track is None else on_track >= 1,
    )


def journey_view(journey: Journey, snap: Snapshot) -> JourneyView:
    """The journey's funnel over its reporting window."""
    jl = {"journey": journey.name}
    stages = []
    for i, stage in enumerate(journey.stages):
        sl = {**jl, "stage": stage.name, "step": str(i + 1)}

        def fig(caption: str, name: str, unit: str, labels: LabelDict = sl) -> Figure:
            return _figure(caption, name, labels, snap.one(name, labels), unit)

        stages.append(StageRow(
            step=i + 1, name=stage.name,
            attempts=fig("attempts", c.JOURNEY_ATTEMPTS.format(w="_window"), "count"),
            successes=fig("successes", c.JOURNEY_SUCCESSES.format(w="_window"), "count"),
            success_ratio=fig("success", c.JOURNEY_STAGE_SUCCESS.format(w="window"), "ratio"),
            dropoff=fig("drop-off", c.JOURNEY_STAGE_DROPOFF.format(w="window"), "ratio"),
        ))
    conversion = c.JOURNEY_CONVERSION.format(w="window")
    value: Figure | None = None
    if journey.currency and any(s.has_value for s in journey.stages):
        name = c.JOURNEY_VALUE.format(cur=journey.currency, w="_window")
        value = _figure("value realized", name, jl, snap.one(name, jl), journey.currency.upper())
    return JourneyView(
        name=journey.name, owner=journey.owner, description=journey.description,
        window=format_duration(journey.window_ms), stages=tuple(stages),
        conversion=_figure("conversion", conversion, jl, snap.one(conversion, jl), "ratio"),
        value=value,
    )
