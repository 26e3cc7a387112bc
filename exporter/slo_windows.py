"""SLO time arithmetic: calendar periods in a time zone, maintenance, window names (pure)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from exporter.durations import format_duration
from exporter.rules.slo_model import SLO, CalendarWindow, MaintenanceWindow, RollingWindow

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# The window "the current burn rate" is measured over, for the time until the budget is spent.
EXHAUSTION_WINDOW_MS = HOUR_MS

# Nominal calendar period lengths for alert factors. Alert rules are static expressions, so
# they cannot follow the length of the current month; 30d is what Sloth uses for a month,
# 91d is a quarter on average (365/4 rounded down), so a factor is at most ~3% off.
NOMINAL_PERIOD_MS = {"week": 7 * DAY_MS, "month": 30 * DAY_MS, "quarter": 91 * DAY_MS}
# The longest period a calendar unit can have (DST adds an hour at most), for sizing.
LONGEST_PERIOD_MS = {"week": 7 * DAY_MS + HOUR_MS, "month": 31 * DAY_MS + HOUR_MS,
                     "quarter": 92 * DAY_MS + HOUR_MS}


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zoneinfo for a name (cached: SLOs ask every evaluation)."""
    return ZoneInfo(name)


def _local(t_ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(tz)


def _ms(local: datetime) -> int:
    # A naive-local wall time made aware: fold=0 picks the first of a repeated hour and
    # zoneinfo shifts a skipped (spring-forward) time past the gap, as calendars expect.
    return round(local.timestamp() * 1000)


def period_start_ms(t_ms: int, window: CalendarWindow) -> int:
    """Start of the calendar period containing t (inclusive), in the window's time zone."""
    tz = zone(window.timezone)
    local = _local(t_ms, tz)
    if window.unit == "week":
        day = local.date() - timedelta(days=local.weekday())  # ISO weeks start on Monday
    elif window.unit == "month":
        day = local.date().replace(day=1)
    elif window.unit == "quarter":
        day = local.date().replace(month=(local.month - 1) // 3 * 3 + 1, day=1)
    else:
        raise ValueError(f"unknown calendar unit {window.unit!r}")
    start = _ms(datetime(day.year, day.month, day.day, tzinfo=tz))
    if start > t_ms:  # cannot happen for midnight starts, but keep the invariant explicit
        raise AssertionError("period start after t")
    return start


def next_period_start_ms(start_ms: int, window: CalendarWindow) -> int:
    """Start of the period after the one starting at start_ms."""
    tz = zone(window.timezone)
    local = _local(start_ms, tz)
    if window.unit == "week":
        day = local.date() + timedelta(days=7)
        return _ms(datetime(day.year, day.month, day.day, tzinfo=tz))
    months = 1 if window.unit == "month" else 3
    month = local.month - 1 + months
    return _ms(datetime(local.year + month // 12, month % 12 + 1, 1, tzinfo=tz))


def slo_window_ms(slo: SLO) -> int:
    """The nominal SLO window length: the rolling duration or the calendar unit's nominal length."""
    if isinstance(slo.window, RollingWindow):
        return slo.window.duration_ms
    return NOMINAL_PERIOD_MS[slo.window.unit]


def window_label(slo: SLO) -> str:
    """How the info series names the window: `30d`, `month`, `quarter@Europe/Berlin`."""
    if isinstance(slo.window, RollingWindow):
        return format_duration(slo.window.duration_ms)
    if slo.window.timezone == "UTC":
        return slo.window.unit
    return f"{slo.window.unit}@{slo.window.timezone}"


def window_name(ms: int) -> str:
    """The window part of a series name (`5m`, `1h`, `3d`, `1w`), as Prometheus prints it."""
    return format_duration(ms)


def alert_windows_ms(slo: SLO) -> tuple[int, ...]:
    """Every window an error ratio and burn rate is exported for: the enabled tiers' long and
    short windows plus the exhaustion window, ascending."""
    windows = {EXHAUSTION_WINDOW_MS}
    for tier in slo.alerting.tiers:
        if tier.enabled:
            windows.add(tier.long_window_ms)
            windows.add(tier.short_window_ms)
    return tuple(sorted(windows))


# -- maintenance --------------------------------------------------------------------------


def _parse_local(text: str, tz: ZoneInfo) -> datetime:
    start = datetime.fromisoformat(text)
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    return start.astimezone(tz)


def _occurrence_before(m: MaintenanceWindow, t_ms: int, back: int) -> int | None:
    """Start (ms) of the `back`-th most recent occurrence of m starting at or before t."""
    tz = zone(m.timezone)
    first = _parse_local(m.start, tz)
    first_ms = _ms(first)
    if t_ms < first_ms:
        return None
    if m.every is None:
        return first_ms if back == 0 else None
    now = _local(t_ms, tz)
    wall = first.timetz().replace(tzinfo=None)
    if m.every == "day":
        day = now.date()
        step = 1
    elif m.every == "week":
        day = now.date() - timedelta(days=(now.weekday() - first.weekday()) % 7)
        step = 7
    elif m.every == "month":
        return _monthly_before(first, now, t_ms, back, tz)
    else:
        raise ValueError(f"unknown recurrence {m.every!r}")
    candidate = _ms(datetime.combine(day, wall, tzinfo=tz))
    if candidate > t_ms:
        day -= timedelta(days=step)
    day -= timedelta(days=step * back)
    start = _ms(datetime.combine(day, wall, tzinfo=tz))
    return start if start >= first_ms else None


def _monthly_before(first: datetime, now: datetime, t_ms: int, back: int,
                    tz: ZoneInfo) -> int | None:
    # The same day of month, clamped to short months (the 31st runs on the 30th in April).
    def at(year: int, month: int) -> int:
        day = min(first.day, calendar.monthrange(year, month)[1])
        return _ms(datetime(year, month, day, first.hour, first.minute, first.second,
                            tzinfo=tz))

    index = now.year * 12 + now.month - 1
    if at(index // 12, index % 12 + 1) > t_ms:
        index -= 1
    index -= back
    start = at(index // 12, index % 12 + 1)
    return start if start >= _ms(first) else None


def in_maintenance(windows: tuple[MaintenanceWindow, ...], t_ms: int) -> bool:
    """Whether instant t lies in a planned maintenance window [start, start + duration)."""
    for m in windows:
        # Two occurrences back covers windows longer than their recurrence step.
        for back in range(2):
            start = _occurrence_before(m, t_ms, back)
            if start is not None and start <= t_ms < start + m.duration_ms:
                return True
    return False
