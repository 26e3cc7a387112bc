"""Scrape phases: each target scrapes every interval at a fixed phase of its own (SpreadTrigger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exporter.scrape import SpreadTrigger


def _at(s: float) -> datetime:
    return datetime.fromtimestamp(s, UTC)


def _phase(trigger: SpreadTrigger, interval_s: float) -> float:
    return (trigger.get_next_fire_time(None, _at(1_000_000.0)).timestamp()) % interval_s


@pytest.mark.parametrize("interval_s", [1.0, 5.0, 15.0, 60.0], ids=lambda s: f"{s:g}s")
def test_runs_follow_a_fixed_grid_at_one_phase(interval_s: float) -> None:
    """Whenever the previous run was (the immediate first one or a late one), the next run is
    the first grid point at least an interval after it, and runs on the grid are one interval
    apart."""
    trigger = SpreadTrigger(interval_s, "job/127.0.0.1:9100")
    phase = _phase(trigger, interval_s)
    assert 0 <= phase < interval_s
    for previous_s in (1_000_000.0, 1_000_000.0 + phase, 1_000_123.456):
        after = trigger.get_next_fire_time(_at(previous_s), _at(previous_s))
        # The grid point: phase plus a whole number of intervals, 1 to 2 intervals after.
        assert after.timestamp() % interval_s == pytest.approx(phase, abs=1e-3)
        assert interval_s - 1e-6 <= after.timestamp() - previous_s < 2 * interval_s
        again = trigger.get_next_fire_time(after, after)
        assert again - after == timedelta(seconds=interval_s)


def test_phases_are_stable_per_target_and_spread_over_targets() -> None:
    """The same target gets the same phase in a new trigger (a restart); 50 targets spread over
    the interval: every fifth of a 5 s interval holds some of them (5 x 10 expected)."""
    names = [f"soak/127.0.0.1:{40000 + i}" for i in range(50)]
    phases = [_phase(SpreadTrigger(5.0, n), 5.0) for n in names]
    assert phases == [_phase(SpreadTrigger(5.0, n), 5.0) for n in names]
    assert {int(p) for p in phases} == {0, 1, 2, 3, 4}
