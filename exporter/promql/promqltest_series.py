"""promqltest series descriptions (`metric{a="b"} 1+2x3 _ stale`) and numbers, parsed."""

from __future__ import annotations

import math
import re

from exporter.labels import METRIC_NAME, STALE_NAN, Labels

# A point of a series description: a float, None for `_` (no sample), or HISTOGRAM for a
# native histogram literal, which this project does not store.
HISTOGRAM = "histogram"
Point = float | None | str


class ScriptError(Exception):
    """A script line that is not valid promqltest syntax."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


# -- numbers and series descriptions ---------------------------------------------------

_GO_FLOAT = re.compile(
    r"^[+-]?(?:inf(?:inity)?|nan|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:e[+-]?\d+)?)$", re.IGNORECASE
)
_GO_INT = re.compile(r"^[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|[1-9][\d_]*|0)$")


def parse_number(text: str) -> float | None:
    """A whole line as a Go number (int with base prefix, or float), else None."""
    text = text.strip()
    if _GO_INT.match(text):
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-").replace("_", "")
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            digits = "0o" + digits[1:]  # Go reads a leading 0 as octal.
        return float(sign * int(digits, 0))
    if _GO_FLOAT.match(text):
        return float(text.replace("_", ""))
    return None


# A series-description number: no hex (the `x` is the repetition sign there).
_SERIES_NUMBER = re.compile(
    r"(?:inf|nan|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)", re.IGNORECASE
)


def parse_series_line(text: str, line: int) -> tuple[Labels, list[Point]]:
    """`metric{labels} <points>` as labels and expanded points."""
    try:
        labels, pos = _read_metric(text, 0, line)
        return labels, _read_points(text[pos:], line)
    except ScriptError:
        raise
    except (ValueError, IndexError) as err:
        raise ScriptError(line, f"bad series description {text!r}: {err}") from None


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _read_metric(text: str, pos: int, line: int) -> tuple[Labels, int]:
    pairs: dict[str, str] = {}
    m = _METRIC_NAME.match(text, pos)
    if m is not None:
        pairs[METRIC_NAME] = m.group(0)
        pos = m.end()
    if pos < len(text) and text[pos] == "{" and not text.startswith("{{", pos):
        pos += 1
        while True:
            pos = _skip_space(text, pos)
            if text[pos] == "}":
                pos += 1
                break
            if text[pos] in "\"'`":
                name, pos = read_quoted(text, pos, line)
            else:
                nm = _LABEL_NAME.match(text, pos)
                if nm is None:
                    raise ScriptError(line, f"bad label name at column {pos + 1}")
                name, pos = nm.group(0), nm.end()
            pos = _skip_space(text, pos)
            if text[pos] in ",}":
                pairs[METRIC_NAME] = name  # A lone quoted string is the metric name.
            else:
                if text[pos] != "=":
                    raise ScriptError(line, f"expected '=' at column {pos + 1}")
                pos = _skip_space(text, pos + 1)
                value, pos = read_quoted(text, pos, line)
                pairs[name] = value
            pos = _skip_space(text, pos)
            if text[pos] == ",":
                pos += 1
    elif not pairs:
        raise ScriptError(line, f"expected a metric in {text!r}")
    return tuple(sorted((k, v) for k, v in pairs.items() if v != "")), pos


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def read_quoted(text: str, pos: int, line: int) -> tuple[str, int]:
    """A Go-style quoted string starting at pos; returns it and the index after it."""
    quote = text[pos]
    if quote not in "\"'`":
        raise ScriptError(line, f"expected a quoted string at column {pos + 1}")
    pos += 1
    if quote == "`":
        end = text.index("`", pos)
        return text[pos:end], end + 1
    out: list[str] = []
    raw = bytearray()  # \x and octal escapes are bytes, decoded together.

    def flush() -> None:
        if raw:
            out.append(raw.decode("utf-8", errors="surrogateescape"))
            raw.clear()

    while True:
        c = text[pos]
        if c == quote:
            flush()
            return "".join(out), pos + 1
        if c != "\\":
            flush()
            out.append(c)
            pos += 1
            continue
        e = text[pos + 1]
        if e == "x":
            raw.append(int(text[pos + 2 : pos + 4], 16))
            pos += 4
        elif e in "01234567":
            raw.append(int(text[pos + 1 : pos + 4], 8))
            pos += 4
        elif e in "uU":
            width = 4 if e == "u" else 8
            flush()
            out.append(chr(int(text[pos + 2 : pos + 2 + width], 16)))
            pos += 2 + width
        else:
            flush()
            out.append(_ESCAPES.get(e, e))
            pos += 2


def _read_points(text: str, line: int) -> list[Point]:
    points: list[Point] = []
    pos = 0
    n = len(text)
    while True:
        pos = _skip_space(text, pos)
        if pos >= n:
            return points
        if text.startswith("{{", pos):
            end = _histogram_item_end(text, pos, line)
            item = text[pos:end]
            count = 1
            rep = re.search(r"x(\d+)$", item)
            if rep is not None and item.rstrip().endswith(rep.group(0)) and "}}" in item:
                count = int(rep.group(1)) + 1
            points.extend([HISTOGRAM] * count)
            pos = end
            continue
        end = pos
        while end < n and text[end] not in " \t":
            end += 1
        points.extend(_expand_item(text[pos:end], line))
        pos = end


def _histogram_item_end(text: str, pos: int, line: int) -> int:
    # `{{...}}`, optionally followed by `x<n>` or `+{{...}}x<n>` / `-{{...}}x<n>`.
    end = text.find("}}", pos)
    if end < 0:
        raise ScriptError(line, "unterminated histogram literal")
    end += 2
    if text.startswith(("+{{", "-{{"), end):
        nxt = text.find("}}", end)
        if nxt < 0:
            raise ScriptError(line, "unterminated histogram literal")
        end = nxt + 2
    m = re.compile(r"x\d+").match(text, end)
    return m.end() if m else end


def _expand_item(item: str, line: int) -> list[Point]:
    """One whitespace-free item: `_`, `_xN`, `v`, `vxN`, `v+dxN`, `v-dxN`, `stale`."""
    if item == "_":
        return [None]
    if item.startswith("_x"):
        return [None] * int(item[2:])
    pos = 0
    first, pos = _read_value(item, pos, line)
    if pos == len(item):
        return [first]
    delta = 0.0
    if item[pos] in "+-":
        sign = -1.0 if item[pos] == "-" else 1.0
        m = _SERIES_NUMBER.match(item, pos + 1)
        if m is None:
            raise ScriptError(line, f"bad series value {item!r}")
        delta = sign * _series_float(m.group(0))
        pos = m.end()
    if pos >= len(item) or item[pos] != "x" or not item[pos + 1 :].isdigit():
        raise ScriptError(line, f"bad series value {item!r}")
    times = int(item[pos + 1 :])
    out: list[Point] = []
    value = first
    for _ in range(times + 1):
        out.append(value)
        # Repeated addition, not first + i*delta: upstream accumulates the same way.
        value += delta
    return out


def _read_value(item: str, pos: int, line: int) -> tuple[float, int]:
    if item.startswith("stale", pos):
        return STALE_NAN, pos + 5
    sign = 1.0
    if item[pos] in "+-":
        sign = -1.0 if item[pos] == "-" else 1.0
        pos += 1
    m = _SERIES_NUMBER.match(item, pos)
    if m is None:
        raise ScriptError(line, f"bad series value {item!r}")
    return sign * _series_float(m.group(0)), m.end()


def _series_float(text: str) -> float:
    value = parse_number(text)
    if value is None:
        raise ValueError(f"bad number {text!r}")
    return value if not math.isnan(value) else math.nan
