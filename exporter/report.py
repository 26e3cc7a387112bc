"""Business value report figures: pure functions from the rule model and hourly series.

The figures read hourly points, a series' value at each hour end (what the state database's
rollups keep and what a Prometheus `query_range` with a 1h step returns), so both sources give
the same numbers. Counters (`slo:events:total`) are read as deltas with resets handled as
Prometheus's `increase()` does, without extrapolation; `*:increase1h` series are summed over
the hours of the period. Missing data stays None (shown as "no data"), never 0.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from exporter import conventions as c
from exporter.improvements import improvement_status
from exporter.promql.parse import parse_expr
from exporter.rules.journey_model import Improvement, Journey
from exporter.rules.model import RuleSet
from exporter.rules.slo_model import SLO
from exporter.units import format_unit, infer_unit, is_share

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
PERIODS = ("month", "quarter")
MONEY_KINDS = ("revenue_at_risk", "value_delivered", "cost_of_downtime")


@dataclass(frozen=True)
class Points:
    """One series' hourly points: (hour end in ms, value), oldest first."""

    name: str
    labels: Mapping[str, str]  # without __name__
    points: tuple[tuple[int, float], ...]


class Source(Protocol):
    """Where the hourly points come from (the state database or a Prometheus)."""

    description: str

    def hourly(self, names: Sequence[str], start_ms: int, end_ms: int) -> list[Points]:
        """Every series of these names with its points at the hour ends in [start, end]."""
        ...


class ReportError(Exception):
    """A problem that stops the report (bad date, no data source): one line for the user."""


@dataclass(frozen=True)
class Period:
    """A calendar month or quarter in UTC, and how much of it has happened."""

    kind: str
    label: str  # "February 2027", "Q1 2027"
    start_ms: int
    end_ms: int
    data_end_ms: int  # end_ms, or the last full hour before now for a period not yet over

    @property
    def to_date(self) -> bool:
        """Whether the period is not over yet."""
        return self.data_end_ms < self.end_ms

    def days(self) -> list[int]:
        """Start of every day of the period that has begun by data_end_ms."""
        return list(range(self.start_ms, self.data_end_ms, DAY_MS))


def parse_at(text: str) -> datetime:
    """`--at`: a date (2027-02-15), a month (2027-02) or an ISO time; UTC unless it says."""
    for form in ("%Y-%m-%d", "%Y-%m"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f'--at: "{text}" is not a date; expected YYYY-MM-DD, YYYY-MM or an '
                          "ISO 8601 time such as 2027-02-15T12:00Z") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def period_of(kind: str, at: datetime, now_ms: int) -> Period:
    """The calendar month or quarter (UTC) containing `at`, cut at now when not yet over."""
    if kind not in PERIODS:
        raise ReportError(f'--period: "{kind}" is not a period; expected month or quarter')
    at = at.astimezone(UTC)
    first = at.month if kind == "month" else (at.month - 1) // 3 * 3 + 1
    months = 1 if kind == "month" else 3
    start = datetime(at.year, first, 1, tzinfo=UTC)
    end_year, end_month = (at.year + 1, 1) if first + months > 12 else (at.year, first + months)
    end = datetime(end_year, end_month, 1, tzinfo=UTC)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    if now_ms <= start_ms:
        raise ReportError(f"--at: the {kind} starting {start:%Y-%m-%d} has not begun yet")
    label = (f"{calendar.month_name[first]} {at.year}" if kind == "month"
             else f"Q{(first - 1) // 3 + 1} {at.year}")
    data_end = min(end_ms, now_ms // HOUR_MS * HOUR_MS)
    return Period(kind, label, start_ms, end_ms, max(data_end, start_ms))


# -- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Daily:
    """One figure per day of the period (None: no data that day)."""

    day_ms: int
    value: float | None


@dataclass(frozen=True)
class SLOFigures:
    """One SLO over the period: events, attainment against objective, budget used."""

    slo: SLO
    good: float | None
    total: float | None
    daily: tuple[Daily, ...]  # the day's SLI (good/total)

    @property
    def objective(self) -> float:
        """The objective as a ratio (99.5 % is 0.995)."""
        return self.slo.objective_percent / 100

    @property
    def attainment(self) -> float | None:
        """Good events over all events in the period (None without events)."""
        if self.good is None or not self.total:
            return None
        return self.good / self.total

    @property
    def budget_used(self) -> float | None:
        """Bad events over the events the objective allows to fail (1.0 = all the budget)."""
        attainment = self.attainment
        if attainment is None or self.objective >= 1:
            return None
        return (1 - attainment) / (1 - self.objective)


@dataclass(frozen=True)
class MoneyFigures:
    """A money shorthand over the period (revenue at risk, value delivered, downtime cost)."""

    kind: str
    slo: str
    currency: str  # upper case, for display
    owner: str
    total: float | None
    daily: tuple[Daily, ...]


@dataclass(frozen=True)
class ServiceFigures:
    """Everything the report says about one service."""

    service: str
    slos: tuple[SLOFigures, ...]
    money: tuple[MoneyFigures, ...]


@dataclass(frozen=True)
class StageFigures:
    """One journey stage's attempts and successes over the period."""

    name: str
    attempts: float | None
    successes: float | None


@dataclass(frozen=True)
class JourneyFigures:
    """A customer journey over the period: first-stage attempts to last-stage successes."""

    journey: Journey
    stages: tuple[StageFigures, ...]
    value: float | None  # value realized, in the journey's currency

    @property
    def conversion(self) -> float | None:
        """Last-stage successes over first-stage attempts (None without attempts)."""
        first, last = self.stages[0].attempts, self.stages[-1].successes
        if not first or last is None:
            return None
        return last / first


@dataclass(frozen=True)
class ImprovementFigures:
    """One CSI register entry at the end of the period."""

    improvement: Improvement
    unit: str | None  # "seconds", "ratio", ... when the metric's unit is known
    baseline: float | None
    current: float | None
    progress: float | None  # 0 at the baseline, 1 at the target
    expected: float  # where a straight line from baseline to target is at the period's end
    status: str  # achieved | overdue | on track | behind | no data | no baseline yet


@dataclass(frozen=True)
class OtherValue:
    """A value metric defined by its own expression: its average over the period's hours."""

    name: str
    help: str
    unit: str
    owner: str
    average: float | None


@dataclass(frozen=True)
class Report:
    """The whole report's figures."""

    period: Period
    source: str
    services: tuple[ServiceFigures, ...]
    journeys: tuple[JourneyFigures, ...]
    improvements: tuple[ImprovementFigures, ...]
    others: tuple[OtherValue, ...]
    days_without_data: int
    generated_ms: int
    notes: tuple[str, ...] = field(default=())


def counter_delta(points: Sequence[tuple[int, float]]) -> float | None:
    """How much a counter grew across the points, a drop counting as a reset from 0."""
    if len(points) < 2:
        return None
    total, prev = 0.0, points[0][1]
    for _, value in points[1:]:
        total += value - prev if value >= prev else value
        prev = value
    return total


def _within(points: Sequence[tuple[int, float]], lo: int, hi: int,
            closed: bool) -> list[tuple[int, float]]:
    """Points with lo < t <= hi, or lo <= t <= hi when `closed` (a counter's baseline)."""
    return [(t, v) for t, v in points if (lo <= t if closed else lo < t) and t <= hi]


def _delta_sum(series: Sequence[Points], lo: int, hi: int) -> float | None:
    deltas = [counter_delta(_within(s.points, lo, hi, True)) for s in series]
    known = [d for d in deltas if d is not None]
    return sum(known) if known else None


def _sum(series: Sequence[Points], lo: int, hi: int) -> float | None:
    values = [v for s in series for _, v in _within(s.points, lo, hi, False)]
    return sum(values) if values else None


def _pick(series: Sequence[Points], name: str, **labels: str) -> list[Points]:
    return [s for s in series if s.name == name
            and all(s.labels.get(k) == v for k, v in labels.items())]


def _slo_figures(slo: SLO, series: Sequence[Points], period: Period) -> SLOFigures:
    events = _pick(series, c.SLO_EVENTS, slo=slo.name)
    good_events = _pick(series, c.SLO_GOOD_EVENTS, slo=slo.name)
    daily: list[Daily] = []
    for day in period.days():
        end = min(day + DAY_MS, period.data_end_ms)
        good, total = _delta_sum(good_events, day, end), _delta_sum(events, day, end)
        daily.append(Daily(day, good / total if good is not None and total else None))
    return SLOFigures(slo, _delta_sum(good_events, period.start_ms, period.data_end_ms),
                      _delta_sum(events, period.start_ms, period.data_end_ms), tuple(daily))


def _money_name(kind: str, currency: str) -> str:
    template = {"revenue_at_risk": c.REVENUE_AT_RISK[0], "value_delivered": c.VALUE_DELIVERED[0],
                "cost_of_downtime": c.DOWNTIME_COST}[kind]
    return template.format(cur=currency)


def required_names(rules: RuleSet) -> list[str]:
    """Every series name the report reads for this rule model."""
    names = [c.SLO_EVENTS, c.SLO_GOOD_EVENTS, c.IMPROVEMENT_CURRENT, c.IMPROVEMENT_BASELINE]
    for metric in rules.values:
        sh = metric.shorthand
        if sh is None:
            names.append(metric.name)
        elif sh.kind in MONEY_KINDS:
            names.append(_money_name(sh.kind, sh.currency))
    for journey in rules.journeys:
        names += [c.JOURNEY_ATTEMPTS.format(w="1h"), c.JOURNEY_SUCCESSES.format(w="1h")]
        if journey.currency:
            names.append(c.JOURNEY_VALUE.format(cur=journey.currency, w="1h"))
    return list(dict.fromkeys(names))


def improvement_unit(improvement: Improvement) -> str | None:
    """The unit of an improvement's metric when the expression tells (seconds, ratio, ...)."""
    try:
        unit = infer_unit(parse_expr(improvement.metric), {})
    except Exception:  # an unknown unit only changes how numbers are shown
        return None
    return format_unit(unit) if unit is not None else None


def improvement_figures(improvement: Improvement, series: Sequence[Points],
                        period: Period) -> ImprovementFigures:
    """Baseline, current value, progress and status at the end of the period."""
    def last(name: str) -> float | None:
        points = [p for s in _pick(series, name, improvement=improvement.name)
                  for p in _within(s.points, period.start_ms, period.data_end_ms, False)]
        return max(points)[1] if points else None

    baseline = last(c.IMPROVEMENT_BASELINE)
    if baseline is None:
        baseline = improvement.baseline
    current = last(c.IMPROVEMENT_CURRENT)
    at, by, now = improvement.baseline_at_ms, improvement.target_by_ms, period.data_end_ms
    expected = min(1.0, max(0.0, (now - at) / (by - at))) if by > at else 1.0
    progress = None
    if baseline is not None and current is not None and improvement.target != baseline:
        progress = (current - baseline) / (improvement.target - baseline)
    if current is None:
        status = "no data"
    elif progress is None and baseline is None:
        status = "no baseline yet"
    elif current == improvement.target:
        status = "achieved"
    else:
        status = improvement_status(progress, progress is not None and progress >= expected,
                                    overdue=now > by)
    return ImprovementFigures(improvement, improvement_unit(improvement), baseline, current,
                              progress, expected, status)


def build_report(rules: RuleSet, source: Source, period: Period, now_ms: int) -> Report:
    """Every figure of the report for the period, from the source's hourly points."""
    # One order whatever the source, so sums add in the same order and match to the last bit.
    series = sorted(source.hourly(required_names(rules), period.start_ms, period.data_end_ms),
                    key=lambda p: (p.name, sorted(p.labels.items())))
    slos = {s.name: s for s in rules.slos}
    services: dict[str, tuple[list[SLOFigures], list[MoneyFigures]]] = {}
    for slo in rules.slos:
        services.setdefault(slo.service, ([], []))[0].append(
            _slo_figures(slo, series, period))
    others: list[OtherValue] = []
    for metric in rules.values:
        sh = metric.shorthand
        if sh is None:
            picked = _pick(series, metric.name)
            values = [v for s in picked
                      for _, v in _within(s.points, period.start_ms, period.data_end_ms, False)]
            # A dimensionless rate that is no share (per 1,000 orders) is shown as a number.
            unit = metric.unit if is_share(metric.name, metric.unit) or metric.unit != "ratio" \
                else ""
            others.append(OtherValue(metric.name, metric.help, unit, metric.owner,
                                     sum(values) / len(values) if values else None))
            continue
        if sh.kind not in MONEY_KINDS or sh.slo not in slos:
            continue
        picked = _pick(series, _money_name(sh.kind, sh.currency), slo=sh.slo)
        daily = tuple(Daily(d, _sum(picked, d, min(d + DAY_MS, period.data_end_ms)))
                      for d in period.days())
        services.setdefault(slos[sh.slo].service, ([], []))[1].append(MoneyFigures(
            sh.kind, sh.slo, sh.currency.upper(), metric.owner,
            _sum(picked, period.start_ms, period.data_end_ms), daily))
    journeys = []
    for journey in rules.journeys:
        stages = []
        for stage in journey.stages:
            labels = {"journey": journey.name, "stage": stage.name}
            stages.append(StageFigures(stage.name, _sum(
                _pick(series, c.JOURNEY_ATTEMPTS.format(w="1h"), **labels),
                period.start_ms, period.data_end_ms), _sum(
                _pick(series, c.JOURNEY_SUCCESSES.format(w="1h"), **labels),
                period.start_ms, period.data_end_ms)))
        value = None
        if journey.currency:
            value = _sum(_pick(series, c.JOURNEY_VALUE.format(cur=journey.currency, w="1h"),
                               journey=journey.name), period.start_ms, period.data_end_ms)
        journeys.append(JourneyFigures(journey, tuple(stages), value))
    improvements = tuple(improvement_figures(i, series, period) for i in rules.improvements)
    # A day counts as missing when no SLO counter has a point in it (or no series at all
    # when there are no SLOs).
    watched = [s for s in series if s.name == c.SLO_EVENTS] if rules.slos else list(series)
    missing = sum(1 for d in period.days()
                  if not any(_within(s.points, d, d + DAY_MS, False) for s in watched))
    return Report(period, source.description,
                  tuple(ServiceFigures(name, tuple(f[0]), tuple(f[1]))
                        for name, f in services.items()),
                  tuple(journeys), improvements, tuple(others), missing, now_ms)
