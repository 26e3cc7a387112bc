"""Durations in Prometheus's notation (`1h30m`, `30d`), shared by config, rule files and output."""

from __future__ import annotations

import re

_MS_PER = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}

# Units must appear in this order and at most once each, as in Prometheus's model.ParseDuration.
_DURATION_RE = re.compile(
    r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", re.ASCII
)
_UNITS_IN_ORDER = ("y", "w", "d", "h", "m", "s", "ms")

# Prometheus stores durations as Go time.Duration (int64 nanoseconds); refuse what would overflow.
_MAX_MS = (2**63 - 1) // 1_000_000

DURATION_EXPECTED = "a duration like 15s, 1m30s, 1h, 30d (units y w d h m s ms, largest first)"


class DurationError(ValueError):
    """A string that is not a Prometheus duration."""


class Duration(int):
    """Milliseconds that print in Prometheus's notation; arithmetic gives plain ints."""

    __slots__ = ()

    @property
    def seconds(self) -> float:
        """The duration in (fractional) seconds, for APIs that take seconds."""
        return int(self) / 1000.0

    def __str__(self) -> str:
        return format_duration(int(self))

    def __repr__(self) -> str:
        return f"Duration({format_duration(int(self))!r})"


def parse_duration(text: str) -> Duration:
    """Parse `1h30m` into milliseconds; `0` is zero, as in Prometheus; raises DurationError."""
    if text == "0":
        return Duration(0)
    m = _DURATION_RE.fullmatch(text)
    if text == "" or m is None:
        raise DurationError(f"not a valid duration string: {text!r}")
    total = 0
    for unit, digits in zip(_UNITS_IN_ORDER, m.groups(), strict=True):
        if digits is not None:
            total += int(digits) * _MS_PER[unit]
    if total > _MAX_MS:
        raise DurationError(f"duration out of range: {text!r}")
    return Duration(total)


def format_duration(ms: int) -> str:
    """Milliseconds back to Prometheus's notation (`5400000` -> `1h30m`; `0` -> `0s`).

    Years and weeks are only used when they divide evenly, as Prometheus does: `90d`
    reads better than `12w6d`.
    """
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    rest = abs(ms)
    out = []
    for unit in _UNITS_IN_ORDER:
        mult = _MS_PER[unit]
        if unit in ("y", "w") and rest % mult != 0:
            continue
        count, rest = divmod(rest, mult)
        if count:
            out.append(f"{count}{unit}")
    return sign + "".join(out)
