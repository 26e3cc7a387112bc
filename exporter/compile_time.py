"""Calendar periods and maintenance windows for compile (SLO model -> PromQL date arithmetic).

PromQL's date functions (`day_of_month()`, `days_in_month()`, `day_of_week()`, `month()`,
`day_of_year()`) work in UTC only. A zone with a fixed offset is UTC shifted: the local
wall clock is `time() + offset`, so periods compile exactly. A zone with daylight saving
time changes its offset twice a year, which a static expression cannot follow: those SLOs
are a compile error naming the SLO, and the sidecar (which uses zoneinfo) handles them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from exporter.compile_promql import binary, call, either, number
from exporter.rules.slo_model import MaintenanceWindow

DAY_S = 86_400
WEEK_S = 7 * DAY_S

# A zone compiles when its offset is the same at every sample from 2025 to 2075: enough to
# see DST (two offsets a year) and announced changes, and independent of the compile date,
# so the same input always compiles the same way.
_SAMPLE_YEARS = range(2025, 2076)


class NotFixedOffset(ValueError):
    """A time zone whose UTC offset changes (daylight saving time or a scheduled change)."""


@lru_cache(maxsize=64)
def fixed_offset_seconds(timezone: str) -> int:
    """The zone's constant UTC offset in seconds (Etc/GMT-1 -> 3600); NotFixedOffset else."""
    tz = ZoneInfo(timezone)
    offsets = set()
    for year in _SAMPLE_YEARS:
        for month in range(1, 13):
            moment = datetime(year, month, 1, tzinfo=UTC) + timedelta(days=14)
            delta = moment.astimezone(tz).utcoffset()
            offsets.add(int(delta.total_seconds()) if delta is not None else 0)
    if len(offsets) != 1:
        raise NotFixedOffset(timezone)
    return offsets.pop()


def _local_now(offset_s: int, shift_s: float = 0) -> str:
    """A one-sample vector of the local wall-clock time (minus `shift_s`) as a Unix time."""
    seconds = offset_s - shift_s
    if not seconds:
        return call("vector", "time()")
    op = "+" if seconds > 0 else "-"
    return call("vector", binary("time()", op, number(abs(seconds))))


def _year_start(local: str) -> str:
    days_before = binary(binary(call("day_of_year", local), "-", "1"), "*", number(DAY_S))
    return binary(_day_start(local), "-", days_before)


def _february_days(local: str) -> str:
    return call("days_in_month", binary(_year_start(local), "+", number(31 * DAY_S)))


def _day_start(local: str) -> str:
    return binary(local, "-", binary(local, "%", number(DAY_S)))


def _month_start(local: str) -> str:
    days_before = binary(binary(call("day_of_month", local), "-", "1"), "*", number(DAY_S))
    return binary(_day_start(local), "-", days_before)


def period_start_expr(unit: str, offset_s: int) -> str:
    """PromQL for the Unix time the current week (Monday), month or quarter began."""
    local = _local_now(offset_s)
    if unit == "week":
        weekday = binary(binary(call("day_of_week", local), "+", "6"), "%", "7")  # Monday = 0
        start = binary(_day_start(local), "-", binary(weekday, "*", number(DAY_S)))
    elif unit == "month":
        start = _month_start(local)
    elif unit == "quarter":
        start = _quarter_start(local)
    else:
        raise ValueError(f"unknown calendar unit {unit!r}")
    return binary(start, "-", number(offset_s)) if offset_s else start


def _quarter_start(local: str) -> str:
    # Year start plus the days of the months before the quarter: Jan..Mar is 59 days plus
    # February's length beyond 28 (days_in_month() on February 1st knows leap years),
    # Apr..Jun 91, Jul..Sep 92.
    month = call("month", local)
    days = binary(
        binary(binary(binary(month, ">", "3", bool_=True), "*",
                      binary("62", "+", _february_days(local))), "+",
               binary(binary(month, ">", "6", bool_=True), "*", "91")),
        "+", binary(binary(month, ">", "9", bool_=True), "*", "92"))
    return binary(_year_start(local), "+", binary(days, "*", number(DAY_S)))


def period_length_expr(unit: str, offset_s: int) -> str:
    """PromQL scalar: the current calendar period's length in seconds (months and quarters
    vary), for the time until the budget is exhausted."""
    if unit == "week":
        return number(WEEK_S)
    local = _local_now(offset_s)
    if unit == "month":
        days = call("days_in_month", local)
    else:
        # Jan..Mar: 62 days plus February; Apr..Jun 91; Jul..Dec 92.
        month = call("month", local)
        days = binary(
            binary(binary(binary(month, "<=", "3", bool_=True), "*",
                          binary("62", "+", _february_days(local))), "+",
                   binary(binary(month, ">", "3", bool_=True), "*", "91")),
            "+", binary(month, ">", "6", bool_=True))
    return call("scalar", binary(days, "*", number(DAY_S)))


def maintenance_expr(window: MaintenanceWindow, shift_ms: int = 0) -> str:
    """A one-sample vector present while `window` is on at `time() - shift`, as the
    sidecar's [start, end) (it asks about the start of the interval it counts).

    One-off windows compare `time()` with two timestamps; daily and weekly ones use the
    phase `(time() - first start) % period`, since days and weeks have a fixed length in a
    fixed-offset zone; monthly ones measure from the local month start, with the day clamped
    to short months as the sidecar does. NotFixedOffset for zones with daylight saving time.
    """
    offset_s = fixed_offset_seconds(window.timezone)
    first = datetime.fromisoformat(window.start)
    if first.tzinfo is None:
        first = first.replace(tzinfo=ZoneInfo(window.timezone))
    start_s = int(first.timestamp())
    length = number(window.duration_ms / 1000)
    shift_s = shift_ms / 1000
    now = _local_now(0, shift_s)
    started = binary(now, ">=", number(start_s))
    if window.every is None:
        return binary(started, "<", number(start_s + window.duration_ms / 1000))
    if window.every in ("day", "week"):
        period = DAY_S if window.every == "day" else WEEK_S
        phase = binary(binary(now, "-", number(start_s)), "%", number(period))
        return binary(binary(phase, "<", length), "and", started)
    local = _local_now(offset_s, shift_s)
    this_month = _month_start(local)
    # A window late in the previous month can run into this one: test both occurrences.
    last_month = binary(this_month, "-", binary(
        call("days_in_month", binary(this_month, "-", number(DAY_S))), "*", number(DAY_S)))
    into_day = first.hour * 3600 + first.minute * 60 + first.second
    branches = []
    for month_start in (this_month, last_month):
        # The day is clamped to short months (the 31st runs on the 30th in April).
        day = call("clamp_max", call("days_in_month", month_start), number(first.day))
        occurrence = binary(month_start, "+", binary(
            binary(binary(day, "-", "1"), "*", number(DAY_S)), "+", number(into_day)))
        phase = binary(local, "-", occurrence)
        branches.append(binary(binary(phase, ">=", "0"), "<", length))
    return binary(either(*branches), "and", started)


def any_maintenance_expr(windows: tuple[MaintenanceWindow, ...], shift_ms: int = 0) -> str:
    """A vector present while any of the windows is on at `time() - shift`."""
    return either(*(maintenance_expr(w, shift_ms) for w in windows))
