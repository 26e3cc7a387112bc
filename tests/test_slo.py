"""SLOEvaluator: windows from buckets, budgets, zero traffic, calendar, timeslices, grouping."""

from __future__ import annotations

import json
import math

import pytest

from exporter.labels import Matcher, is_stale, make_labels
from exporter.rules.slo_model import (
    CalendarWindow,
    MaintenanceWindow,
    RatioSLI,
    RollingWindow,
    Timeslices,
)
from exporter.slo import SLOEvaluator
from exporter.store import SeriesStore
from tests.slo_helpers import DAY, HOUR, MIN, TIERS, load, make_slo, no_nan, one, query, run

# Per minute: 10 requests; 1 error in minutes 1-10, none after.
TEN_BAD_MINUTES = {'req_total{job="a",code="200"}': "0+9x10 100+10x69",
                   'req_total{job="a",code="500"}': "0+1x10 10x69"}


# (id, expression, evaluation time, expected value); a 1h rolling window, 99% objective.
ROLLING = [
    # Minutes 6-10: 50 events, 5 bad.
    ("5m-ratio-early", 'slo:sli_error:ratio_rate5m{slo="s"}', 10 * MIN, 0.1),
    ("5m-burn-early", 'slo:burn_rate:ratio_rate5m{slo="s"}', 10 * MIN, 10.0),
    # Minutes 6-65: 5 bad of 600 events.
    ("period-partly-out", 'slo:sli_error:ratio_period{slo="s"}', 65 * MIN, 5 / 600),
    ("period-sli", 'slo:sli:ratio_period{slo="s"}', 65 * MIN, 595 / 600),
    ("period-start", 'slo:period_start:timestamp_seconds{slo="s"}', 65 * MIN, 300.0),
    # Minutes 11-70: the bad minutes left the window; the whole budget is back.
    ("period-all-out", 'slo:sli_error:ratio_period{slo="s"}', 70 * MIN, 0.0),
    ("remaining-back", 'slo:error_budget_remaining:ratio{slo="s"}', 70 * MIN, 1.0),
    # At 10m: 10 bad of 100, budget 1 per 100 events: -9 remaining, 9 events overspent.
    ("remaining-overspent", 'slo:error_budget_remaining:ratio{slo="s"}', 10 * MIN, -9.0),
    ("remaining-events", 'slo:error_budget_remaining:events{slo="s"}', 10 * MIN, -9.0),
    ("exhausted-now", 'slo:error_budget_exhausted_in:seconds{slo="s"}', 10 * MIN, 0.0),
    ("exhausted-never", 'slo:error_budget_exhausted_in:seconds{slo="s"}', 75 * MIN, math.inf),
    ("objective", 'slo:objective:ratio{slo="s"}', 10 * MIN, 0.99),
    ("error-budget", 'slo:error_budget:ratio{slo="s"}', 10 * MIN, 0.01),
    ("events-counter", 'slo:events:total{slo="s"}', 80 * MIN, 800.0),
    ("good-counter", 'slo:good_events:total{slo="s"}', 80 * MIN, 790.0),
]


@pytest.fixture(scope="module")
def rolling_store() -> object:
    """One 80-minute run of a 1h rolling SLO over TEN_BAD_MINUTES."""
    return run(make_slo(tiers=TIERS), TEN_BAD_MINUTES, 80 * MIN)[0]


@pytest.mark.parametrize(("expr", "t", "expected"), [c[1:] for c in ROLLING],
                         ids=[c[0] for c in ROLLING])
def test_rolling_window_is_an_exact_sum(rolling_store: object, expr: str, t: int,
                                        expected: float) -> None:
    """Rolling windows sum exactly the events of their buckets, and old ones drop out."""
    assert one(rolling_store, expr, t) == pytest.approx(expected, rel=1e-12)  # type: ignore[arg-type]


def test_time_until_exhausted_at_the_current_burn_rate() -> None:
    """Half the budget left at burn rate 0.5 lasts one whole window: 3600s for a 1h window."""
    # 1 error of 20 requests a minute: ratio 0.05 against a 10% budget.
    store, _, _ = run(make_slo(objective=90.0),
                      {'req_total{job="a",code="200"}': "0+19x10",
                       'req_total{job="a",code="500"}': "0+1x10"}, 10 * MIN)
    assert one(store, 'slo:error_budget_remaining:ratio{slo="s"}', 10 * MIN) == \
        pytest.approx(0.5)
    assert one(store, 'slo:burn_rate:ratio_rate1h{slo="s"}', 10 * MIN) == pytest.approx(0.5)
    assert one(store, 'slo:error_budget_exhausted_in:seconds{slo="s"}', 10 * MIN) == \
        pytest.approx(3600.0)


FLAT = {'req_total{job="a",code="200"}': "5x10", 'req_total{job="a",code="500"}': "1x10"}
# (id, no_data, period SLI, remaining budget) after 10 quiet minutes (the first only baselines)
ZERO_TRAFFIC = [
    ("ignore", "ignore", None, 1.0),
    ("good", "good", 1.0, 1.0),
    # 10 bad intervals of 10: ratio 1 against a 1% budget.
    ("bad", "bad", 0.0, -99.0),
]


@pytest.mark.parametrize(("no_data", "sli", "remaining"), [c[1:] for c in ZERO_TRAFFIC],
                         ids=[c[0] for c in ZERO_TRAFFIC])
def test_zero_traffic(no_data: str, sli: float | None, remaining: float) -> None:
    """Quiet intervals follow no_data; without events ratios are absent, never NaN."""
    store, _, _ = run(make_slo(no_data=no_data), FLAT, 10 * MIN)
    assert one(store, 'slo:sli:ratio_period{slo="s"}', 10 * MIN) == sli
    assert one(store, 'slo:error_budget_remaining:ratio{slo="s"}', 10 * MIN) == \
        pytest.approx(remaining)
    assert one(store, 'slo:events:total{slo="s"}', 10 * MIN) == 0.0  # real events only
    assert no_nan(store)
    if no_data == "ignore":
        assert one(store, 'slo:sli_error:ratio_rate5m{slo="s"}', 10 * MIN) is None
        assert one(store, 'slo:error_budget_exhausted_in:seconds{slo="s"}', 10 * MIN) == math.inf


WEEK_SERIES = {'req_total{job="a",code="200"}': "0+9x100", 'req_total{job="a",code="500"}':
               "0+1x100"}
# (id, expression, time, expected): a calendar week in UTC, 1h evaluations from the epoch
# (a Thursday); the next week starts Monday 1970-01-05 00:00 = 96h.
CALENDAR = [
    # 95 hours of 10 events, 1 bad each (the first evaluation only takes baselines).
    ("before-reset", 'slo:sli_error:ratio_period{slo="s"}', 95 * HOUR, 0.1),
    ("events-before", 'slo:error_budget_remaining:events{slo="s"}', 95 * HOUR,
     0.01 * 950 - 95),
    ("start-before", 'slo:period_start:timestamp_seconds{slo="s"}', 95 * HOUR, -3 * 86400.0),
    ("reset-remaining", 'slo:error_budget_remaining:ratio{slo="s"}', 96 * HOUR, 1.0),
    ("reset-start", 'slo:period_start:timestamp_seconds{slo="s"}', 96 * HOUR, 4 * 86400.0),
    # Alert windows are rolling: the hour before the reset still shows.
    ("reset-1h", 'slo:sli_error:ratio_rate1h{slo="s"}', 96 * HOUR, 0.1),
    ("after-reset", 'slo:sli_error:ratio_period{slo="s"}', 97 * HOUR, 0.1),
]


@pytest.fixture(scope="module")
def week_store() -> object:
    """A calendar-week SLO run for 100 hours at 1h intervals."""
    slo = make_slo(window=CalendarWindow("week"))
    return run(slo, WEEK_SERIES, 100 * HOUR, interval_ms=HOUR, step_ms=HOUR)[0]


@pytest.mark.parametrize(("expr", "t", "expected"), [c[1:] for c in CALENDAR],
                         ids=[c[0] for c in CALENDAR])
def test_calendar_window_resets(week_store: object, expr: str, t: int,
                                expected: float) -> None:
    """A calendar budget counts events since the period start and resets at the next one."""
    got = one(week_store, expr, t)  # type: ignore[arg-type]
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_calendar_reset_hides_the_period_ratio(week_store: object) -> None:
    """Right at the period start no event is in the new period: the ratio is absent."""
    assert one(week_store, 'slo:sli_error:ratio_period{slo="s"}', 96 * HOUR) is None  # type: ignore[arg-type]


def test_timeslices() -> None:
    """Each minute is a slice, good when its SLI >= 0.9; ratios count bad slices."""
    # Per minute 10 requests and 0, 1, 2, 0, 5, 1 errors: SLIs 1, .9, .8, 1, .5, .9, so
    # minutes 3 and 5 are bad slices: 2 of 6 over the period, 2 of 5 in minutes 2-6.
    slo = make_slo(RatioSLI(total="all_total", errors="bad_total"),
                   budgeting=Timeslices(MIN, ">=", 0.9), tiers=TIERS)
    store, _, _ = run(slo, {"all_total": "0+10x6", "bad_total": "0 0 1 3 3 8 9"}, 6 * MIN)
    assert one(store, 'slo:sli_error:ratio_period{slo="s"}', 6 * MIN) == pytest.approx(2 / 6)
    assert one(store, 'slo:sli_error:ratio_rate5m{slo="s"}', 6 * MIN) == pytest.approx(2 / 5)
    assert one(store, 'slo:events:total{slo="s"}', 6 * MIN) == 60.0


def test_group_by_with_series_limit() -> None:
    """Group values beyond series_limit are dropped and counted; admitted ones get series."""
    slo = make_slo(RatioSLI(total="req_total", errors='req_total{code="500"}'),
                   group_by=("route",), series_limit=2)
    series = {f'req_total{{route="{r}",code="200"}}': "0+1x5" for r in "abc"}
    store, evaluator, results = run(slo, series, 5 * MIN)
    assert [r.dropped for r in results] == [1] * 6
    routes = sorted(dict(s.labels)["route"] for s in query(store, "slo:events:total", 5 * MIN))
    assert routes == ["a", "b"]
    assert one(store, 'slo:events:total{route="a"}', 5 * MIN) == 5.0
    assert len(evaluator.groups) == 2


def test_vanished_group_goes_stale() -> None:
    """A group whose series are gone and whose buckets are empty is dropped with stale markers."""
    slo = make_slo(RatioSLI(total="req_total", errors='req_total{code="500"}'),
                   group_by=("route",))
    store, evaluator, _ = run(slo, {'req_total{route="a"}': "0+1x5", 'req_total{route="b"}':
                                    "3x5"}, 5 * MIN)
    assert one(store, 'slo:error_budget_remaining:ratio{route="b"}', 5 * MIN) == 1.0
    gone = store.get(make_labels({"__name__": "req_total", "route": "b"}))
    assert gone is not None
    store.delete(gone)
    evaluator.evaluate(6 * MIN)
    assert one(store, 'slo:error_budget_remaining:ratio{route="b"}', 6 * MIN) is None
    last = store.get(make_labels({"__name__": "slo:error_budget_remaining:ratio", "route": "b",
                                  "slo": "s", "service": "svc"}))
    assert last is not None and is_stale(last.vs[-1])


def test_grouped_slo_has_one_objective_series() -> None:
    """Objective, budget and period start carry the SLO's labels only, as compiled rules do."""
    slo = make_slo(RatioSLI(total="req_total", errors='req_total{code="500"}'),
                   group_by=("route",))
    store, _, _ = run(slo, {'req_total{route="a"}': "0+1x5", 'req_total{route="b"}': "3x5"},
                      5 * MIN)
    for name in ("slo:objective:ratio", "slo:error_budget:ratio",
                 "slo:period_start:timestamp_seconds"):
        found = [s.labels for s in store.select([Matcher.of("__name__", "=", name)])]
        assert found == [make_labels({"__name__": name, "slo": "s", "service": "svc"})], name


def test_maintenance_excludes_events() -> None:
    """Intervals starting inside a maintenance window add no events to the budget."""
    # Minutes 4-6 (intervals starting at 3m, 4m, 5m) are all errors, and in maintenance.
    slo = make_slo(RatioSLI(total="all_total", errors="bad_total"),
                   maintenance=(MaintenanceWindow("1970-01-01T00:03", 3 * MIN),))
    store, _, results = run(slo, {"all_total": "0+10x8", "bad_total": "0 0 0 0 10 20 30 30 30"},
                            8 * MIN)
    assert [r.in_maintenance for r in results] == [False] * 4 + [True] * 3 + [False] * 2
    assert one(store, 'slo:sli_error:ratio_period{slo="s"}', 8 * MIN) == 0.0
    assert one(store, 'slo:events:total{slo="s"}', 8 * MIN) == 50.0


def test_state_round_trip_continues_exactly() -> None:
    """An evaluator restored from JSON state within an interval continues as if never stopped."""
    slo = make_slo(tiers=TIERS)
    straight, _, _ = run(slo, TEN_BAD_MINUTES, 20 * MIN)
    store, first, _ = run(slo, TEN_BAD_MINUTES, 10 * MIN)
    second = SLOEvaluator(slo, store, interval_ms=MIN)
    second.from_state(json.loads(json.dumps(first.to_state())))
    results = [second.evaluate(t) for t in range(11 * MIN, 20 * MIN + 1, MIN)]
    assert results[0].data_gap_seconds == 0.0
    for name in ("slo:sli_error:ratio_period", "slo:events:total", "slo:sli_error:ratio_rate5m"):
        assert one(store, name, 20 * MIN) == one(straight, name, 20 * MIN), name


def test_restore_after_downtime_reports_the_gap() -> None:
    """Downtime after a restore leaves its buckets empty and is reported, never counted good."""
    slo = make_slo(window=RollingWindow(DAY), no_data="good")
    store, first, _ = run(slo, TEN_BAD_MINUTES, 10 * MIN)
    state = json.loads(json.dumps(first.to_state()))
    later = SLOEvaluator(slo, store, interval_ms=MIN)
    later.from_state(state)
    result = later.evaluate(70 * MIN)
    assert result.data_gap_seconds == 59 * 60  # (10m, 69m] unknown; (69m, 70m] counted
    assert one(store, "value_exporter_slo_data_gap_seconds_total", 70 * MIN) == 3540.0
    # 100 events before the downtime; the interval after it only takes the counters'
    # baselines (after a real restart its first scrape), and the next one counts again.
    assert one(store, 'slo:events:total{slo="s"}', 70 * MIN) == 100.0
    later.evaluate(71 * MIN)
    assert one(store, 'slo:events:total{slo="s"}', 71 * MIN) == 110.0
    assert one(store, 'slo:sli_error:ratio_period{slo="s"}', 71 * MIN) == pytest.approx(10 / 110)


def test_repeated_time_is_a_no_op() -> None:
    """Evaluating the same or an earlier time again changes nothing."""
    store, evaluator, _ = run(make_slo(), TEN_BAD_MINUTES, 5 * MIN)
    assert evaluator.evaluate(5 * MIN).samples == 0
    assert evaluator.evaluate(4 * MIN).samples == 0
    assert one(store, 'slo:events:total{slo="s"}', 5 * MIN) == 50.0


# (id, window, budgeting, kB at most): one group, the four default tiers, 1m buckets.
MEMORY = [
    ("rolling-30d", RollingWindow(30 * DAY), None, 700),
    ("rolling-30d-timeslices", RollingWindow(30 * DAY), Timeslices(MIN, ">=", 0.9), 700),
    ("calendar-quarter", CalendarWindow("quarter", "Europe/Berlin"), None, 80),
]


@pytest.mark.parametrize(("window", "budgeting", "kb"), [c[1:] for c in MEMORY],
                         ids=[c[0] for c in MEMORY])
def test_memory_per_slo(window: object, budgeting: object, kb: int) -> None:
    """A 30-day SLO holds under 700 kB; calendar periods need only the alert windows' ring."""
    slo = make_slo(window=window, budgeting=budgeting, tiers=TIERS)  # type: ignore[arg-type]
    store = SeriesStore()
    load(store, TEN_BAD_MINUTES)
    evaluator = SLOEvaluator(slo, store, interval_ms=MIN)
    for t in range(0, 10 * MIN + 1, MIN):
        evaluator.evaluate(t)
    assert evaluator.memory_bytes() < kb * 1000


# (id, SLO) shapes whose state must carry everything: calendar sums, open slices, groups.
STATE_SHAPES = [
    ("calendar", make_slo(window=CalendarWindow("week", "Europe/Berlin"), tiers=TIERS)),
    ("timeslices", make_slo(budgeting=Timeslices(2 * MIN, ">=", 0.95), tiers=TIERS)),
    ("grouped", make_slo(RatioSLI(total="req_total", errors='req_total{code="500"}'),
                         group_by=("code",), tiers=TIERS)),
]


@pytest.mark.parametrize("slo", [c[1] for c in STATE_SHAPES], ids=[c[0] for c in STATE_SHAPES])
def test_state_round_trip_for_every_shape(slo: object) -> None:
    """Every SLO series after a mid-run restore equals the uninterrupted run's."""
    straight, _, _ = run(slo, TEN_BAD_MINUTES, 25 * MIN)  # type: ignore[arg-type]
    store, first, _ = run(slo, TEN_BAD_MINUTES, 11 * MIN)  # type: ignore[arg-type]
    second = SLOEvaluator(slo, store, interval_ms=MIN)  # type: ignore[arg-type]
    second.from_state(json.loads(json.dumps(first.to_state())))
    for t in range(12 * MIN, 25 * MIN + 1, MIN):
        second.evaluate(t)
    got = {s.labels: s.value for s in query(store, '{__name__=~"slo:.+"}', 25 * MIN)}
    want = {s.labels: s.value for s in query(straight, '{__name__=~"slo:.+"}', 25 * MIN)}
    assert got == want
    assert len(want) > 10
