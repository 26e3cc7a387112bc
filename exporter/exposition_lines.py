"""Exposition line grammar for the parse stage (scrape -> parse -> store): one line at a time.

The slow path of `exporter.exposition`: it reproduces the token rules of Prometheus 3.5's
`promlex.l` (text format 0.0.4) and `openmetricslex.l` (OpenMetrics 1.0), quirks included, so
scrape mode accepts exactly what Prometheus accepts. With `strict=True` the quirks the specs
forbid (missing commas, trailing commas, `{abc}` read as a metric name, ...) are refused.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from exporter.labels import METRIC_NAME, Labels

TEXT = "text"
OPENMETRICS = "openmetrics"

# Go's strconv.ParseFloat grammar minus hex floats and underscores, which Prometheus refuses
# ("unsupported character in float"). ASCII only: Python's float() would take other digits or "1_0".
FLOAT = (
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)
_FLOAT_RE = re.compile(FLOAT, re.ASCII)
# Label normalisation uses plain strconv.ParseFloat, which also reads hex floats.
_HEX_FLOAT_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WS = re.compile(r"[ \t]*")
# A quoted string: Prometheus lets it run over line breaks except in OpenMetrics label values.
_QSTR = re.compile(r'"(?:\\.|[^\\"])*"')
_QSTR_OPEN = re.compile(r'"(?:\\.|[^\\"])*')
_OM_LVALUE = re.compile(r'"(?:\\.|[^\\"\n])*"')
_TEXT_VALUE = re.compile(r"[^{ \t\n\x00]+")
_DIGITS = re.compile(r"[0-9]+")
_OM_TOKEN = re.compile(r" [^ \n\x00]+")
_TEXT_META = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+")
_OM_META = re.compile(r"# (HELP|TYPE|UNIT) ")
_UNESCAPE = re.compile(r'\\([\\"n])')
_UNESCAPE_TEXT_HELP = re.compile(r"\\([\\n])")
_HOLDERS = tuple(map(chr, range(0xE000, 0xE008)))  # private-use characters, see _unescape_all
_VALID_LVALUE_ESCAPES = re.compile(r'(?:[^\\]|\\[\\"n])*')
_VALID_HELP_ESCAPES = re.compile(r"(?:[^\\]|\\[\\n])*")

TEXT_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "summary": "summary",
    "untyped": "unknown",
}
OM_TYPES = {t: t for t in (
    "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"
)}

Pairs = list[tuple[str, str]]


class LineError(Exception):
    """A problem with one line; the caller adds the line number."""


class NeedMore(Exception):
    """A quoted string runs past the end of the line (the text format allows that)."""


class Sample(NamedTuple):
    """One sample line as written: labels unescaped but not yet normalised or sorted."""

    name: str
    pairs: Pairs
    value: float
    ts_ms: int | None
    ts_raw: float | None  # OpenMetrics seconds, kept for strict ordering checks
    exemplar: tuple[Pairs, float, float | None] | None


class Meta(NamedTuple):
    """A `# HELP`, `# TYPE` or `# UNIT` line; `text` is the unescaped help or the type."""

    kind: str
    name: str
    text: str


class Other(NamedTuple):
    """A line without data: "blank", "comment", "stop" (text NUL) or "eof" (`# EOF`)."""

    kind: str


Entry = Sample | Meta | Other


def unescape(value: str) -> str:
    r"""Undo `\\`, `\"` and `\n` as Prometheus's lvalReplacer does; other escapes stay."""
    if "\\" not in value:
        return value
    return _unescape_all(value, ('\\"', '"'), ("\\n", "\n"))


def unescape_help(text: str) -> str:
    r"""Undo `\\` and `\n` in a text-format HELP as Prometheus's helpReplacer does."""
    if "\\" not in text:
        return text
    return _unescape_all(text, ("\\n", "\n"))


def _unescape_all(value: str, *pairs: tuple[str, str]) -> str:
    """Undo escapes with str.replace (linear, in C; a regex with a Python callback spends a
    microsecond per escape, 2 s on a 10 MB label of them). Escaped backslashes become a
    character the value lacks first, so `\\n` stays a backslash and an `n`."""
    hold = next((ch for ch in _HOLDERS if ch not in value), None)
    if hold is None:  # a value holding all of them: the regex, slower but right
        pattern = _UNESCAPE if len(pairs) == 2 else _UNESCAPE_TEXT_HELP
        return pattern.sub(_unescape_one, value)
    value = value.replace("\\\\", hold)
    for escaped, plain in pairs:
        value = value.replace(escaped, plain)
    return value.replace(hold, "\\")


def _unescape_one(m: re.Match[str]) -> str:
    c = m.group(1)
    return "\n" if c == "n" else c


def parse_float(s: str) -> float | None:
    """A sample value by Prometheus's rules, or None when Prometheus would refuse it."""
    if _FLOAT_RE.fullmatch(s) is None:
        return None
    f = float(s)
    if f - f != 0.0 and not _is_special(s):
        return None  # Go reports a range error where Python overflows to ±Inf
    return f


def _is_special(s: str) -> bool:
    return s.lstrip("+-")[:1] in ("i", "I", "n", "N")


def ms_from_seconds(seconds: float) -> int:
    """`int64(seconds * 1000)` as Go computes it on amd64 (out of range gives MinInt64)."""
    ms = seconds * 1000.0
    if not (-9.3e18 < ms < 9.3e18):
        return _INT64_MIN
    i = int(ms)
    return i if _INT64_MIN <= i <= _INT64_MAX else _INT64_MIN


def go_format_float(f: float) -> str:
    """Prometheus's formatOpenMetricsFloat: Go's shortest 'g' form, with ".0" on integers."""
    if f == 1.0:
        return "1.0"
    if f == 0.0:
        return "0.0"
    if f == -1.0:
        return "-1.0"
    if f != f:
        return "NaN"
    if f in (math.inf, -math.inf):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if f < 0 else ""
    mant, _, exp_s = repr(abs(f)).partition("e")
    int_part, _, frac = mant.partition(".")
    all_digits = int_part + frac
    digits = all_digits.lstrip("0")
    point = len(int_part) + (int(exp_s) if exp_s else 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go uses %e past these exponents when printing shortest
        tail = "." + digits[1:] if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{tail}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}.0"
    return f"{sign}{digits[:point]}.{digits[point:]}"


_NORMALISED: dict[str, str] = {}


def normalise_float_label(value: str) -> str:
    """An `le` or `quantile` value in Prometheus 3's canonical form (unchanged if not a float)."""
    cached = _NORMALISED.get(value)
    if cached is not None:
        return cached
    f: float | None
    if _FLOAT_RE.fullmatch(value) is not None:
        f = float(value)
        if f - f != 0.0 and not _is_special(value):
            f = None
    elif _HEX_FLOAT_RE.fullmatch(value) is not None:
        try:
            f = float.fromhex(value)
        except OverflowError:
            f = None
    else:
        f = None
    result = value if f is None else go_format_float(f)
    if len(_NORMALISED) > 4096:  # a hostile target must not grow this without bound
        _NORMALISED.clear()
    _NORMALISED[value] = result
    return result


# -- the slow path ----------------------------------------------------------------------


def parse_line(s: str, pos: int, fmt: str, strict: bool, partial: bool) -> tuple[Entry, int]:
    """Parse the line starting at `pos`; returns the entry and the index of its end.

    `partial` says `s` holds a single line with its line break cut off; a quoted string that
    reaches the end then raises NeedMore so the caller can retry with the following text.
    """
    try:
        if fmt == TEXT:
            return _Line(s, pos, strict, partial).text_line()
        return _Line(s, pos, strict, partial).om_line()
    except IndexError as exc:  # a defensive net: every bound is checked, but never leak this
        raise LineError("unexpected end of line") from exc


class _Line:
    def __init__(self, s: str, pos: int, strict: bool, partial: bool) -> None:
        self.s = s
        self.p = pos
        self.strict = strict
        self.partial = partial

    def at(self, i: int) -> str:
        return self.s[i] if i < len(self.s) else "\n"

    def eol(self) -> int:
        e = self.s.find("\n", self.p)
        return len(self.s) if e < 0 else e

    def show(self) -> str:
        return repr(self.s[self.p : self.p + 12] or "end of line")

    def skip_ws(self) -> None:
        m = _WS.match(self.s, self.p)
        assert m is not None
        self.p = m.end()

    def quoted(self, pattern: re.Pattern[str]) -> str:
        """The raw text between the quotes of the string at the cursor."""
        m = pattern.match(self.s, self.p)
        if m is None:
            if self.partial and pattern is _QSTR:
                o = _QSTR_OPEN.match(self.s, self.p)
                if o is not None and o.end() == len(self.s):
                    raise NeedMore
            raise LineError("unterminated or invalid quoted string")
        self.p = m.end()
        return m.group()[1:-1]

    # -- text format (promlex.l) ------------------------------------------------------

    def text_line(self) -> tuple[Entry, int]:
        self.skip_ws()
        c = self.at(self.p)
        if c == "\n":
            return Other("blank"), self.p
        if c == "\x00":  # promlex returns EOF on a NUL at the start of a line
            if self.strict:
                raise LineError("NUL byte at the start of a line")
            return Other("stop"), self.p
        if c == "#":
            return self.text_comment()
        return self.sample(TEXT), self.p

    def text_comment(self) -> tuple[Entry, int]:
        m = _TEXT_META.match(self.s, self.p)
        if m is None:
            return Other("comment"), self.eol()
        kind = m.group(1)
        self.p = m.end()
        name = self.meta_name(kind)
        end = self.eol()
        rest = self.s[self.p : end]
        if rest.startswith("\x00"):
            raise LineError(f"linebreak expected after {kind}")
        text = "" if rest.strip(" \t") == "" else rest[1:]
        if kind == "TYPE":
            if text not in TEXT_TYPES:
                raise LineError(f"invalid metric type {text!r}")
            return Meta(kind, name, TEXT_TYPES[text]), end
        if self.strict and _VALID_HELP_ESCAPES.fullmatch(text) is None:
            raise LineError("invalid escape sequence in HELP (only \\\\ and \\n are allowed)")
        if "\\" in text:
            text = unescape_help(text)
        return Meta(kind, name, text), end

    def meta_name(self, kind: str) -> str:
        c = self.at(self.p)
        if c == '"':
            return unescape(self.quoted(_QSTR))
        m = _NAME.match(self.s, self.p)
        if m is None:
            raise LineError(f"expected metric name after {kind}, got {self.show()}")
        self.p = m.end()
        return m.group()

    # -- OpenMetrics (openmetricslex.l) -------------------------------------------------

    def om_line(self) -> tuple[Entry, int]:
        s, p = self.s, self.p
        c = self.at(p)
        if c == "#":
            if s.startswith("# EOF", p):
                return Other("eof"), self.eol()
            m = _OM_META.match(s, p)
            if m is None:
                raise LineError(f"expected a valid start token, got {self.show()}")
            self.p = m.end()
            return self.om_meta(m.group(1))
        if c == "\n":
            raise LineError("blank lines are not allowed in OpenMetrics")
        return self.sample(OPENMETRICS), self.p

    def om_meta(self, kind: str) -> tuple[Entry, int]:
        name = self.meta_name(kind)
        end = self.eol()
        if self.at(self.p) != " " or (end == len(self.s) and not self.partial):
            raise LineError(f"expected text in {kind}")
        text = self.s[self.p + 1 : end]
        if kind == "TYPE":
            if text not in OM_TYPES:
                raise LineError(f"invalid metric type {text!r}")
        elif kind == "HELP":
            text = unescape(text)
        elif text and not (
            name.endswith(text) and len(name) > len(text) and name[-len(text) - 1] == "_"
        ):
            raise LineError(f"unit {text!r} not a suffix of metric {name!r}")
        return Meta(kind, name, text), end

    # -- samples --------------------------------------------------------------------------

    def sample(self, fmt: str) -> Sample:
        c = self.at(self.p)
        name: str | None = None
        pairs: Pairs = []
        if c != "{":
            m = _NAME.match(self.s, self.p)
            if m is None:
                raise LineError(f"expected a valid start token, got {self.show()}")
            name = m.group()
            self.p = m.end()
            if fmt == TEXT:
                if self.strict and self.at(self.p) not in " \t\n{":
                    raise LineError(f"expected whitespace after the metric name, got {self.show()}")
                self.skip_ws()
        if self.at(self.p) == "{":
            self.p += 1
            name = self.labels(fmt, name, pairs, exemplar=False)
        if name is None:
            raise LineError("metric name not set")
        if fmt == TEXT:
            return self.text_tail(name, pairs)
        return self.om_tail(name, pairs)

    def labels(self, fmt: str, name: str | None, pairs: Pairs, *, exemplar: bool) -> str | None:
        """Read `key="value",...}` after the brace; returns the metric name if given inside."""
        text = fmt == TEXT
        lvalue = _QSTR if text else _OM_LVALUE
        s = self.s
        while True:
            if text:
                self.skip_ws()
            c = self.at(self.p)
            if c == "}":
                self.p += 1
                return name
            start = self.p
            if c == '"':
                raw = self.quoted(_QSTR if text or not exemplar else _OM_LVALUE)
                label, is_quoted = unescape(raw), True
            else:
                m = _LNAME.match(s, self.p)
                if m is None:
                    raise LineError(f"expected label name, got {self.show()}")
                self.p = m.end()
                label, is_quoted = m.group(), False
            if text:
                self.skip_ws()
            c = self.at(self.p)
            if c in ",}":
                # A quoted string alone is the metric name. Prometheus strips one character off
                # each end even when unquoted, so `{abc}` names metric "b"; only strict refuses.
                if exemplar:
                    raise LineError("expected label name, got a bare name in an exemplar")
                if name is not None:
                    raise LineError("metric name already set")
                if not is_quoted:
                    if self.strict or self.p - start < 2:
                        raise LineError(f"label {label!r} has no value")
                    label = s[start + 1 : self.p - 1]
                name = label
                self.p += 1
                if c == "}":
                    return name
                if self.strict and not text and self.at(self.p) == "}":
                    raise LineError("trailing comma in label set")
                continue
            if c != "=":
                raise LineError(f"expected equal after label name {label!r}, got {self.show()}")
            self.p += 1
            if text:
                self.skip_ws()
            if self.at(self.p) != '"':
                raise LineError(f"expected label value for {label!r}, got {self.show()}")
            raw = self.quoted(lvalue)
            if self.strict:
                if text and (_VALID_LVALUE_ESCAPES.fullmatch(raw) is None or "\n" in raw):
                    raise LineError(f"invalid escape or line break in value of {label!r}")
                if label.startswith("__"):
                    raise LineError(f"label name {label!r} is reserved (starts with __)")
            pairs.append((label, unescape(raw)))
            if text:
                self.skip_ws()
            c = self.at(self.p)
            if c == ",":
                self.p += 1
                if self.strict and not text and self.at(self.p) == "}":
                    raise LineError("trailing comma in label set")
            elif c != "}" and (self.strict or not text):
                raise LineError(f"expected comma or brace close, got {self.show()}")

    def text_tail(self, name: str, pairs: Pairs) -> Sample:
        self.skip_ws()
        m = _TEXT_VALUE.match(self.s, self.p)
        if m is None:
            raise LineError(f"expected value after metric, got {self.show()}")
        value = parse_float(m.group())
        if value is None:
            raise LineError(f"invalid value {m.group()!r}")
        self.p = m.end()
        self.skip_ws()
        ts: int | None = None
        if self.at(self.p) != "\n":
            m = _DIGITS.match(self.s, self.p)
            if m is None:
                raise LineError(f"expected timestamp or new record, got {self.show()}")
            ts = int(m.group())
            if ts > _INT64_MAX:
                raise LineError(f"timestamp {m.group()} out of range")
            self.p = m.end()
            self.skip_ws()
            if self.at(self.p) != "\n":
                raise LineError(f"expected next entry after timestamp, got {self.show()}")
        return Sample(name, pairs, value, ts, None, None)

    def om_number(self, what: str) -> tuple[str, float]:
        m = _OM_TOKEN.match(self.s, self.p)
        if m is None:
            raise LineError(f"expected {what}, got {self.show()}")
        self.p = m.end()
        raw = m.group()[1:]
        value = parse_float(raw)
        if value is None:
            raise LineError(f"invalid {what} {raw!r}")
        return raw, value

    def om_timestamp(self, what: str) -> float:
        raw, ts = self.om_number(what)
        if ts - ts != 0.0:
            raise LineError(f"invalid {what} {raw!r}")
        return ts

    def om_tail(self, name: str, pairs: Pairs) -> Sample:
        if self.at(self.p) == "{":
            raise LineError("expected value after metric, got '{'")
        _, value = self.om_number("value")
        ts_raw: float | None = None
        exemplar = None
        if self.at(self.p) != "\n" and not self.s.startswith(" # {", self.p):
            ts_raw = self.om_timestamp("timestamp")
        if self.s.startswith(" # {", self.p):
            self.p += 4
            epairs: Pairs = []
            self.labels(OPENMETRICS, None, epairs, exemplar=True)
            _, evalue = self.om_number("exemplar value")
            ets = None
            if self.at(self.p) != "\n":
                ets = self.om_timestamp("exemplar timestamp")
            exemplar = (epairs, evalue, ets)
        if self.at(self.p) != "\n":
            raise LineError(f"expected end of line, got {self.show()}")
        ts_ms = None if ts_raw is None else ms_from_seconds(ts_raw)
        return Sample(name, pairs, value, ts_ms, ts_raw, exemplar)


def build_labels(name: str, pairs: Pairs, norm: str | None) -> Labels:
    """The sorted label set Prometheus would store for a sample, or LineError if it refuses.

    Mirrors the scrape loop: a label name that has an empty value anywhere is dropped entirely
    (labels.Builder), a missing or repeated name fails the scrape, and `le`/`quantile` values
    are normalised when the last `# TYPE` said histogram/summary (`norm`).
    """
    if not name:
        raise LineError("empty metric name")
    if not pairs:
        return ((METRIC_NAME, name),)
    for _, v in pairs:
        if not v:
            empty = {k for k, v in pairs if not v}
            if METRIC_NAME in empty:
                raise LineError("metric name dropped by an empty __name__ label")
            pairs = [p for p in pairs if p[0] not in empty]
            break
    d: dict[str, str] = dict(pairs)
    if len(d) != len(pairs) or METRIC_NAME in d:
        seen: set[str] = {METRIC_NAME}
        for k, _ in pairs:
            if k in seen:
                raise LineError(f"label name {k!r} is not unique")
            seen.add(k)
    if "" in d:
        raise LineError("empty label name")
    if norm is not None and norm in d:
        d[norm] = normalise_float_label(d[norm])
    d[METRIC_NAME] = name
    return tuple(sorted(d.items()))
