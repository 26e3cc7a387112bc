"""Label sets: the immutable, sorted key every stage (parse, store, engine, export) shares."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from exporter.regex import compile_regex

# A label set is a tuple of (name, value) pairs sorted by name; the metric name is the
# `__name__` pair. Tuples hash fast and need no copying when shared between stages.
Labels = tuple[tuple[str, str], ...]

METRIC_NAME = "__name__"

# Prometheus marks the end of a series with this exact NaN bit pattern (value.StaleNaN).
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
_STALE_BYTES = struct.pack("<d", STALE_NAN)


def is_stale(value: float) -> bool:
    """True for the stale marker, false for every other value including ordinary NaN."""
    return value != value and struct.pack("<d", value) == _STALE_BYTES


def make_labels(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """Build a label set, dropping empty values as Prometheus does."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return tuple(sorted((k, v) for k, v in items if v != ""))


def get_label(labels: Labels, name: str) -> str:
    """The value of a label, or "" when the set does not have it."""
    for k, v in labels:
        if k == name:
            return v
    return ""


def metric_name(labels: Labels) -> str:
    """The `__name__` of a label set ("" when it has none)."""
    return get_label(labels, METRIC_NAME)


def drop_metric_name(labels: Labels) -> Labels:
    """The label set without `__name__`."""
    return tuple(p for p in labels if p[0] != METRIC_NAME)


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """A copy with one label set (or removed when value is empty)."""
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
    return tuple(sorted(rest))


def format_labels(labels: Labels) -> str:
    """Prometheus's text form: `name{a="b", c="d"}`."""
    name = metric_name(labels)
    inner = ", ".join(
        f'{k}="{_escape(v)}"' for k, v in labels if k != METRIC_NAME
    )
    if not inner:
        return name or "{}"
    return f"{name}{{{inner}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class MatchType(Enum):
    """The four PromQL label matcher operators."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; regexes are fully anchored as in Prometheus."""

    name: str
    type: MatchType
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def of(name: str, type_: MatchType | str, value: str) -> Matcher:
        mt = type_ if isinstance(type_, MatchType) else MatchType(type_)
        regex = None
        if mt in (MatchType.REGEX, MatchType.NOT_REGEX):
            regex = compile_regex(value)  # RegexError (a ValueError) for an invalid RE2 regex
        return Matcher(name, mt, value, regex)

    def matches(self, value: str) -> bool:
        """Whether a label value (\"\" for a missing label) satisfies the matcher."""
        t = self.type
        if t is MatchType.EQUAL:
            return value == self.value
        if t is MatchType.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if t is MatchType.REGEX else not hit

    def matches_empty(self) -> bool:
        """Whether a series without this label is selected."""
        return self.matches("")
