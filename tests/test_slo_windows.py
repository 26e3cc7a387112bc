"""SLO time arithmetic and buckets: calendar periods across DST, maintenance, ring sums, state."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from exporter.rules.slo_model import CalendarWindow, MaintenanceWindow
from exporter.slo_buckets import BucketRing
from exporter.slo_windows import in_maintenance, next_period_start_ms, period_start_ms

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3_600_000


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
       tz: ZoneInfo | None = None) -> int:
    """Milliseconds of a wall time in a zone (UTC by default)."""
    return round(datetime(year, month, day, hour, minute, tzinfo=tz or UTC).timestamp() * 1000)


# (id, window, instant, expected start, expected length in hours)
PERIODS = [
    ("month-utc", CalendarWindow("month"), ms(2024, 2, 10, 5), ms(2024, 2, 1), 29 * 24),
    # March in Berlin loses an hour to summer time: 31 days less one hour.
    ("month-berlin-spring-dst", CalendarWindow("month", "Europe/Berlin"),
     ms(2024, 3, 31, 12, tz=BERLIN), ms(2024, 3, 1, tz=BERLIN), 31 * 24 - 1),
    ("month-berlin-autumn-dst", CalendarWindow("month", "Europe/Berlin"),
     ms(2024, 10, 1, tz=BERLIN), ms(2024, 10, 1, tz=BERLIN), 31 * 24 + 1),
    # 23:30 UTC on March 31st is already April 1st in Berlin.
    ("month-berlin-local-date", CalendarWindow("month", "Europe/Berlin"),
     ms(2024, 3, 31, 23, 30), ms(2024, 4, 1, tz=BERLIN), 30 * 24),
    ("quarter", CalendarWindow("quarter"), ms(2024, 5, 17), ms(2024, 4, 1), 91 * 24),
    ("quarter-q4", CalendarWindow("quarter"), ms(2024, 12, 31, 23), ms(2024, 10, 1), 92 * 24),
    # ISO weeks start on Monday; 1970-01-01 was a Thursday.
    ("week-epoch", CalendarWindow("week"), 0, ms(1969, 12, 29), 7 * 24),
    ("week-berlin-dst", CalendarWindow("week", "Europe/Berlin"),
     ms(2024, 3, 30, tz=BERLIN), ms(2024, 3, 25, tz=BERLIN), 7 * 24 - 1),
]


@pytest.mark.parametrize(("window", "t", "start", "hours"), [c[1:] for c in PERIODS],
                         ids=[c[0] for c in PERIODS])
def test_calendar_periods(window: CalendarWindow, t: int, start: int, hours: int) -> None:
    """A calendar period starts at local midnight of its first day and lasts its real length."""
    got = period_start_ms(t, window)
    assert got == start
    assert next_period_start_ms(got, window) - got == hours * HOUR


NIGHTLY = MaintenanceWindow("2024-01-01T02:00", HOUR, "Europe/Berlin", every="day")
MAINTENANCE = [
    ("one-off-inside", MaintenanceWindow("2024-05-01T10:00", 2 * HOUR), ms(2024, 5, 1, 11), True),
    ("one-off-end-excluded", MaintenanceWindow("2024-05-01T10:00", 2 * HOUR),
     ms(2024, 5, 1, 12), False),
    ("one-off-before", MaintenanceWindow("2024-05-01T10:00", 2 * HOUR), ms(2024, 5, 1, 9), False),
    ("daily-local-time", NIGHTLY, ms(2024, 7, 9, 2, 30, tz=BERLIN), True),
    # In summer 02:00 Berlin is 00:00 UTC, so 02:30 UTC is outside.
    ("daily-not-utc", NIGHTLY, ms(2024, 7, 9, 2, 30), False),
    ("daily-before-first", NIGHTLY, ms(2023, 12, 31, 2, 30, tz=BERLIN), False),
    # 2024-01-01 was a Monday: weekly windows run Mondays only.
    ("weekly-monday", MaintenanceWindow("2024-01-01T22:00", 4 * HOUR, every="week"),
     ms(2024, 3, 5, 1), True),
    ("weekly-tuesday-night", MaintenanceWindow("2024-01-01T22:00", 4 * HOUR, every="week"),
     ms(2024, 3, 6, 1), False),
    # The 31st runs on the last day of shorter months.
    ("monthly-clamped", MaintenanceWindow("2024-01-31T00:00", HOUR, every="month"),
     ms(2024, 4, 30, 0, 30), True),
    ("monthly-other-day", MaintenanceWindow("2024-01-31T00:00", HOUR, every="month"),
     ms(2024, 4, 29, 0, 30), False),
]


@pytest.mark.parametrize(("window", "t", "inside"), [c[1:] for c in MAINTENANCE],
                         ids=[c[0] for c in MAINTENANCE])
def test_maintenance_windows(window: MaintenanceWindow, t: int, inside: bool) -> None:
    """Maintenance windows match one-off and recurring occurrences in their time zone."""
    assert in_maintenance((window,), t) is inside


def test_ring_sums_and_wrap() -> None:
    """Ring sums cover exactly the asked buckets, wrap around, and forget what fell off."""
    ring = BucketRing(5, 60_000)
    for k in range(8):
        ring.add(k, k, 10 * k)
    assert ring.sums(7, 3) == (18.0, 180.0)  # buckets 5, 6, 7
    assert ring.sums(7, 100) == (25.0, 250.0)  # only 3..7 are still held
    assert ring.sums(5, 2) == (9.0, 90.0)


def test_ring_gap_reads_empty() -> None:
    """Buckets skipped over (downtime) read as zero events, never as the old values."""
    ring = BucketRing(5, 60_000)
    ring.add(1, 1, 1)
    ring.add(3, 3, 3)
    ring.advance(9)
    assert ring.sums(9, 5) == (0.0, 0.0)
    ring.add(10, 2, 2)
    assert ring.sums(10, 5) == (2.0, 2.0)


def test_ring_state_round_trip_and_resize() -> None:
    """A ring restores from its state, into a smaller ring keeping the newest buckets."""
    ring = BucketRing(10, 60_000)
    for k in range(100, 110):
        ring.add(k, 1, k)
    same = BucketRing.from_state(ring.to_state(), 10, 60_000)
    assert same.sums(109, 10) == ring.sums(109, 10)
    small = BucketRing.from_state(ring.to_state(), 3, 60_000)
    assert small.sums(109, 10) == (3.0, 107.0 + 108.0 + 109.0)
    other = BucketRing.from_state(ring.to_state(), 10, 300_000)
    assert other.sums(109, 10) == (0.0, 0.0)


def test_ring_memory_for_30_days_of_minutes() -> None:
    """A 30-day ring of minute buckets holds two arrays of doubles: under 700 kB."""
    ring = BucketRing(30 * 24 * 60 + 1, 60_000)
    assert 690_000 < ring.nbytes() < 700_000
