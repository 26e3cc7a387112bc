"""Numbers and names as a business reader reads them: EUR 1,240.50, 99.95 %, 3 h 20 min."""

from __future__ import annotations

import math
from datetime import UTC, datetime

NO_DATA = "no data"


def money(value: float | None, currency: str) -> str:
    """`EUR 1,240.50` (currency code first, thousands separated, cents always shown)."""
    if value is None:
        return NO_DATA
    return f"{currency} {value:,.2f}"


def percent(ratio: float | None, digits: int = 2) -> str:
    """`99.95 %` from 0.9995."""
    if ratio is None:
        return NO_DATA
    text = f"{ratio * 100:,.{digits}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # never "-0 %"
    return f"{text} %"


def count(value: float | None) -> str:
    """`1,209,600` (whole events; a fraction from a rate shows as the nearest whole number)."""
    if value is None:
        return NO_DATA
    return f"{value:,.0f}"


def duration(seconds: float | None) -> str:
    """`3 h 20 min`, `45 s`, `250 ms`, `2 d 4 h`: the two largest units that matter."""
    if seconds is None:
        return NO_DATA
    if seconds < 1:
        return f"{seconds * 1000:,.0f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (mins, "min")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    shown = [f"{n} {u}" for n, u in parts[first:first + 2] if n]
    return " ".join(shown)


def with_unit(value: float | None, unit: str | None) -> str:
    """A value in its unit: money, seconds as a duration, a ratio as a percentage."""
    if value is None:
        return NO_DATA
    if unit in ("seconds", "second"):
        return duration(value)
    if unit == "ratio" and abs(value) <= 1:
        return percent(value)  # a share; a ratio above 1 (incidents per 1,000) stays a number
    if unit and len(unit) == 3 and unit.isupper():
        return money(value, unit)
    text = f"{value:,.4g}" if math.isfinite(value) and abs(value) < 1e6 else f"{value:,.0f}"
    return f"{text} {unit}" if unit and unit != "ratio" else text


def title(name: str) -> str:
    """`checkout-availability` → `Checkout availability`."""
    words = name.replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else name


def day(ms: int) -> str:
    """`1 February 2027` (UTC)."""
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{at.day} {at:%B %Y}"


def moment(ms: int) -> str:
    """`2027-02-14 13:00 UTC`."""
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
