"""Exposition parsing, the parse stage (scrape -> parse -> store): bytes to labelled samples.

Scrape mode accepts exactly what Prometheus 3.5's scrape loop accepts. Most lines take a
compiled-regex fast path; anything unusual goes to `exporter.exposition_lines`, which follows
Prometheus's lexers token by token. Strict mode (`exporter.exposition_strict`) adds the rules of
the format specifications for `value-exporter check metrics`.
"""

from __future__ import annotations

import functools
import gc
import math
import re
import sys
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import getitem, itemgetter
from typing import Any

from exporter.exposition_lines import (
    OPENMETRICS,
    TEXT,
    TEXT_TYPES,
    Entry,
    LineError,
    Meta,
    NeedMore,
    Other,
    Sample,
    build_labels,
    ms_from_seconds,
    normalise_float_label,
    parse_line,
    unescape,
    unescape_help,
)
from exporter.labels import METRIC_NAME, Labels
from exporter.store import MetricMetadata

__all__ = [
    "ExpositionError",
    "ParseResult",
    "check_metrics_command",
    "parse_exposition",
]

SampleTuple = tuple[Labels, float, int | None]

_INT64_MAX = 2**63 - 1
_NAME_RE = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LPAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\]*+(?:\\.[^"\\]*+)*+"'
_LSET = rf"(?:{_LPAIR}(?:,{_LPAIR})*+,?)?"
_LSET_NO_TRAILING = rf"(?:{_LPAIR}(?:,{_LPAIR})*+)?"
# Numbers are only screened here; float() is the judge, and over this alphabet it accepts
# exactly what Go's ParseFloat does (hex, underscores and other digits cannot get through).
_NUM = r"[0-9.eE+-]++|[+-]?[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]"
# Canonical sample lines without quoted names: the shape almost every target emits.
TEXT_FAST = re.compile(rf"({_NAME_RE})(?:\{{({_LSET})\}})? ({_NUM})(?: ([0-9]++))?", re.ASCII)
_OM_TAIL = rf" ({_NUM})(?: ({_NUM}))?(?: # \{{(%s)\}} ({_NUM})(?: ({_NUM}))?)?"
OM_FAST = re.compile(rf"({_NAME_RE})(?:\{{({_LSET})\}})?" + _OM_TAIL % _LSET, re.ASCII)
OM_FAST_STRICT = re.compile(
    rf"({_NAME_RE})(?:\{{({_LSET_NO_TRAILING})\}})?" + _OM_TAIL % _LSET_NO_TRAILING, re.ASCII
)
# A canonical text-format HELP or TYPE line; other comment shapes take the slow path.
_TEXT_META_FAST = re.compile(rf"# (HELP|TYPE) ({_NAME_RE}) (.*)", re.ASCII | re.DOTALL)
PAIRS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*+)="([^"\\]*+(?:\\.[^"\\]*+)*+)"')
# The text-format fast path, `_Scraper.run_text`, reads a body a chunk of lines at a time with
# this one findall: one row per line, with groups for the first alternative that takes it.
#  1. A plain sample line: TEXT_FAST without escapes or empty label values; run_text builds
#     its sample in the loop.
#  2. Any other line TEXT_FAST takes: run_text builds those with escapes (but no empty values)
#     in the loop too, and leaves the rest to _fast_sample.
#  3. Anything else: the whole line, for the per-line code (`fast`, then `slow`).
# run_text must give exactly what `run_lines` gives for every line, errors included. Both
# sample alternatives keep to one line: no line breaks in label values.
_PLAIN_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]++"'
_LINE_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
_SAMPLE_TAIL = rf" ({_NUM})(?: ([0-9]++))?$"
_NAME_ONCE = r"[a-zA-Z_:][a-zA-Z0-9_:]*+"  # _NAME_RE, possessive: no name character follows
_CHUNK = 50_000  # characters of body per findall
_TEXT_BULK = re.compile(
    rf"^(?:({_NAME_ONCE})(?:\{{((?:{_PLAIN_PAIR}(?:,{_PLAIN_PAIR})*+,?)?)\}})?{_SAMPLE_TAIL}"
    rf"|({_NAME_ONCE})(?:\{{((?:{_LINE_PAIR}(?:,{_LINE_PAIR})*+,?)?)\}})?{_SAMPLE_TAIL}"
    r"|(.*))",
    re.ASCII | re.MULTILINE,
)
_first = itemgetter(0)
# How to turn a line's label pairs (in written order) plus __name__ into a sorted label set,
# keyed by the label names in written order: a handful of shapes covers a whole exposition.
_Shape = tuple[tuple[str, ...], Callable[[list[tuple[str, str]]], Labels], int, int]
_SHAPES: dict[tuple[str, ...], _Shape | None] = {}
_NORM_BY_TYPE = {"histogram": "le", "summary": "quantile"}


class ExpositionError(Exception):
    """An exposition Prometheus (or, in strict mode, the format spec) refuses."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class ParseResult:
    """Samples (label set with __name__, value, ms timestamp or None) and family metadata."""

    samples: list[SampleTuple] = field(default_factory=list)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    format: str = TEXT


def parse_exposition(
    data: bytes | str,
    content_type: str | None = None,
    *,
    strict: bool = False,
    keep_names: Collection[str] | None = None,
) -> ParseResult:
    """Parse one scrape body; raises ExpositionError (only) on input Prometheus would refuse.

    `keep_names` limits the result to samples with those metric names; other lines are skipped
    without being parsed, so errors in them go unnoticed (strict mode still checks everything).
    """
    text = decode(data)
    fmt = select_format(text, content_type)
    if strict:
        from exporter.exposition_strict import parse_strict

        report = parse_strict(text, fmt)
        if report.errors:
            line, message = report.errors[0]
            raise ExpositionError(line, message)
        samples = report.samples
        if keep_names is not None:
            keep = set(keep_names)
            samples = [s for s in samples if _name_of(s[0]) in keep]
        return ParseResult(samples, report.metadata, fmt)
    scraper = _Scraper(fmt, None if keep_names is None else frozenset(keep_names))
    with _gc_paused():
        if keep_names is None:
            scraper.run_all(text)
        else:
            scraper.run_filtered(text)
    return ParseResult(scraper.samples, scraper.metadata(), fmt)


_gc_lock = threading.Lock()
_gc_parses = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep the cyclic GC out of a parse: it allocates ~6 tuples a sample and no cycles, so
    collections triggered by the allocation count are pure overhead (a third of the time)."""
    global _gc_parses, _gc_was_enabled
    with _gc_lock:
        if _gc_parses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_parses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_parses -= 1
            if _gc_parses == 0 and _gc_was_enabled:
                gc.enable()


def decode(data: bytes | str) -> str:
    """The text of a body; invalid UTF-8 is an ExpositionError naming its line."""
    if isinstance(data, str):
        if data.isascii():
            return data
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ExpositionError(data.count("\n", 0, exc.start) + 1, "invalid UTF-8") from None
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExpositionError(data.count(b"\n", 0, exc.start) + 1, "invalid UTF-8") from None


def select_format(text: str, content_type: str | None) -> str:
    """The format a Content-Type names; without one, OpenMetrics iff the body ends in `# EOF`."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/openmetrics-text":
            return OPENMETRICS
        if media == "text/plain":
            return TEXT
        raise ExpositionError(0, f"unsupported Content-Type {content_type!r}")
    tail = text[-7:]
    if tail.endswith("# EOF") or tail.endswith("# EOF\n"):
        start = len(text) - (6 if text.endswith("\n") else 5)
        if start == 0 or text[start - 1] == "\n":
            return OPENMETRICS
    return TEXT


def split_body(text: str, fmt: str) -> tuple[str, bool]:
    """The body to parse line by line and, for OpenMetrics, whether it ended with `# EOF`."""
    if fmt == OPENMETRICS:
        for eof in ("# EOF\n", "# EOF"):
            if text.endswith(eof):
                body = text[: len(text) - len(eof)]
                if not body or body.endswith("\n"):
                    return body, True
        return text, False
    return text, True


def split_lines(body: str) -> list[str]:
    """Lines of a body without their breaks (a final break ends the last line)."""
    lines = body.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _name_of(labels: Labels) -> str:
    for k, v in labels:
        if k == METRIC_NAME:
            return v
    return ""


class _LineOffsets:
    """Character offsets of lines, computed lazily and forwards only (needed rarely)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.index = 0
        self.offset = 0

    def of(self, index: int) -> int:
        if index < self.index:
            self.index, self.offset = 0, 0
        for line in self.lines[self.index : index]:
            self.offset += len(line) + 1
        self.index = index
        return self.offset


_OK, _NEED_MORE, _STOP = 0, 1, 2


class _Scraper:
    """Scrape-mode state: the samples so far, metadata, and the last `# TYPE` seen."""

    def __init__(self, fmt: str, keep: frozenset[str] | None) -> None:
        self.fmt = fmt
        self.keep = keep
        self.samples: list[SampleTuple] = []
        self.meta: dict[str, dict[str, str]] = {}
        # Prometheus normalises `le`/`quantile` by the type of the last TYPE line, even for
        # series of another family (a known quirk of textparse); so do we.
        self.norm: str | None = None

    def metadata(self) -> dict[str, MetricMetadata]:
        return {
            name: MetricMetadata(m.get("TYPE", "unknown"), m.get("HELP", ""), m.get("UNIT", ""))
            for name, m in self.meta.items()
        }

    def slow(self, line: str) -> int:
        """A line the fast path did not take; _NEED_MORE if it continues on the next line."""
        m = _TEXT_META_FAST.fullmatch(line) if self.fmt == TEXT else None
        if m is not None:
            kind, name, text = m.groups()
            if text.strip(" \t") == "":
                text = ""  # promlex: blanks alone after the name are no text
            if kind == "TYPE":
                text = TEXT_TYPES.get(text, "")
            elif "\\" in text:
                text = unescape_help(text)
            if text or kind == "HELP":
                return self.apply(Meta(kind, name, text))
        try:
            entry, _ = parse_line(line, 0, self.fmt, False, True)
        except NeedMore:
            return _NEED_MORE
        return self.apply(entry)

    def apply(self, entry: Entry) -> int:
        if isinstance(entry, Sample):
            if self.keep is None or entry.name in self.keep:
                labels = build_labels(entry.name, entry.pairs, self.norm)
                self.samples.append((labels, entry.value, entry.ts_ms))
        elif isinstance(entry, Meta):
            self.meta.setdefault(entry.name, {})[entry.kind] = entry.text
            if entry.kind == "TYPE":
                self.norm = _NORM_BY_TYPE.get(entry.text)
        elif isinstance(entry, Other):
            if entry.kind == "stop":
                return _STOP
            if entry.kind == "eof":
                raise LineError("unexpected data after # EOF")
        return _OK

    def fast(self, line: str) -> bool:
        """Take a canonical sample line; False sends it to the slow path."""
        om = self.fmt == OPENMETRICS
        m = (OM_FAST if om else TEXT_FAST).fullmatch(line)
        if m is None:
            return False
        name = m.group(1)
        if self.keep is not None and name not in self.keep:
            return True
        sample = _fast_sample(m.groups(), om, self.norm)
        if sample is None:
            return False
        self.samples.append(sample)
        return True

    def run_all(self, text: str) -> None:
        if self.fmt == TEXT:
            self.run_text(text)
        else:
            self.run_lines(text)

    def run_text(self, body: str) -> None:
        """The text-format fast path: `run_lines` in effect, with the common case done in bulk.

        `_TEXT_BULK.findall` cuts every canonical sample line into groups in C, a chunk of
        lines at a time (the rows stay in the CPU cache); the loop turns those into samples with
        a _TextShape per label-name sequence. The rest (comments, empty label values, quoted
        names, odd values, errors) goes through the same code as in `run_lines`, and both
        must give identical results, errors included: tests/test_exposition.py checks.
        """
        if not body:
            return
        end = len(body) - (body[-1] == "\n")  # the lines are body[:end].split("\n")
        append = self.samples.append
        shapes = _TextShapes()
        metric_name = shapes.of(METRIC_NAME)
        norm = self.norm
        shape_of = shapes.known(norm).get
        lines: list[str] | None = None  # split only when a line needs the per-line code
        offsets: _LineOffsets | None = None
        pos = first = 0  # where the chunk starts, and the index of its first line
        while True:
            stop = body.find("\n", pos + _CHUNK, end)
            if stop < 0:
                stop = end
            rows = _TEXT_BULK.findall(body, pos, stop)
            if len(rows) != body.count("\n", pos, stop) + 1:  # cannot happen: never guess
                rows = [("",) * 8 + (line,) for line in body[pos:stop].split("\n")]
            for i, (name, inner, val, ts, name2, inner2, val2, ts2, line) in enumerate(
                rows, first
            ):
                if name2 and "\\" in inner2 and '=""' not in inner2 and "\x00" not in inner2:
                    # Escapes but no empty values: encode escaped backslashes as NUL (checked
                    # absent) and escaped quotes as line breaks (never in a line), so splitting
                    # at quotes still works, and mark the last split item; the _Pairs decode.
                    name, val, ts = name2, val2, ts2
                    inner = inner2.replace("\\\\", "\x00").replace('\\"', "\n") + "\\"
                if name:
                    # A sample line to build here; this must match the hot path of run_lines.
                    try:
                        v = float(val)
                    except ValueError:
                        v = math.nan
                        val = "?"  # not a Go float: the per-line code words the error
                    if (v - v == 0.0 or val.lstrip("+-")[0] in "iInN") and (
                        not ts or len(ts) < 19
                    ):
                        if not inner:
                            append(((metric_name[name],), v, int(ts) if ts else None))
                            continue
                        flat = inner.split('"')  # name=, value, ,name=, value, ..., "" or ","
                        key = tuple(flat[::2])
                        shape = shape_of(key) or shapes.learn(key, norm)
                        if shape is not None:
                            pairs, values = shape
                            flat.append(name)
                            append((tuple(map(getitem, pairs, values(flat))), v,
                                    int(ts) if ts else None))
                            continue
                    if lines is None:
                        lines = split_lines(body)
                    line = lines[i]
                elif name2:
                    try:
                        sample = _fast_sample((name2, inner2, val2, ts2), False, norm)
                    except LineError as exc:  # found by fuzzing: a{__name__=""} 1
                        raise ExpositionError(i + 1, str(exc)) from None
                    if sample is not None:
                        append(sample)
                        continue
                    if lines is None:
                        lines = split_lines(body)
                    line = lines[i]
                try:
                    code = _OK if self.fast(line) else self.slow(line)
                    if code == _NEED_MORE:  # a quoted string runs over line breaks
                        if lines is None:
                            lines = split_lines(body)
                        if offsets is None:
                            offsets = _LineOffsets(lines)
                        start = offsets.of(i)
                        entry, stop = parse_line(body, start, self.fmt, False, False)
                        if self.apply(entry) == _STOP:
                            return
                        norm = self.norm
                        shape_of = shapes.known(norm).get
                        first = i + 1 + body.count("\n", start, stop)
                        break  # go on after the entry's last line, in a new chunk
                    if code == _STOP:
                        return
                    norm = self.norm
                    shape_of = shapes.known(norm).get
                except LineError as exc:
                    raise ExpositionError(i + 1, str(exc)) from None
            else:
                first += len(rows)
            if stop >= end:
                return
            pos = stop + 1

    def run_lines(self, text: str) -> None:
        """Line by line: OpenMetrics, and the reference that run_text must agree with."""
        whole, has_eof = split_body(text, self.fmt)
        lines = split_lines(whole)
        body_len = len(whole)
        # `whole` may be a copy of text without `# EOF`; it is cut again only when a value
        # runs over lines (rare), so a huge label is not held once more (issue 8's bound).
        del whole
        body: str | None = None
        offsets = _LineOffsets(lines)
        om = self.fmt == OPENMETRICS
        fullmatch = (OM_FAST if om else TEXT_FAST).fullmatch
        append = self.samples.append
        shapes = _SHAPES
        norm = self.norm
        skip = 0
        for i, line in enumerate(lines):
            try:
                if i < skip:
                    continue
                m = fullmatch(line)
                if m is not None:
                    # The hot path, inlined: a canonical line whose label names were seen before.
                    inner = m.group(2)
                    if om or not inner or "\\" in inner or '=""' in inner:
                        del inner  # m.groups() copies it again
                        sample = _fast_sample(m.groups(), om, norm)
                        if sample is not None:
                            append(sample)
                            continue
                    else:
                        val, ts = m.group(3, 4)
                        try:
                            v = float(val)
                        except ValueError:
                            v = math.nan
                            val = "?"  # not a Go float: the slow path words the error
                        if (v - v == 0.0 or val.lstrip("+-")[0] in "iInN") and (
                            ts is None or len(ts) < 19
                        ):
                            cut = inner[:-1] if inner[-1] == '"' else inner[:-2]
                            flat = cut.replace('",', '="').split('="')
                            shape = shapes.get(tuple(flat[::2]))
                            if shape is not None:
                                names, sort, le, quantile = shape
                                pairs = list(zip(names, flat[1::2]))  # noqa: B905 - equal by construction
                                if norm is not None:
                                    j = le if norm == "le" else quantile
                                    if j >= 0:
                                        pairs[j] = (norm, normalise_float_label(pairs[j][1]))
                                pairs.append((METRIC_NAME, m.group(1)))
                                append((sort(pairs), v, None if ts is None else int(ts)))
                                continue
                            sample = _fast_sample(m.groups(), om, norm)
                            if sample is not None:
                                append(sample)
                                continue
                code = self.slow(line)
                if code == _NEED_MORE:
                    if body is None:
                        body = text[:body_len]
                    start = offsets.of(i)
                    entry, end = parse_line(body, start, self.fmt, False, False)
                    skip = i + 1 + body.count("\n", start, end)
                    code = self.apply(entry)
                if code == _STOP:
                    return
                norm = self.norm
            except LineError as exc:
                # Raised on the fast path too: build_labels refuses repeated label names.
                raise ExpositionError(i + 1, str(exc)) from None
        if not has_eof:
            raise ExpositionError(len(lines) + 1, "data does not end with # EOF")

    def run_filtered(self, text: str) -> None:
        """Visit only lines that start with a kept name or are not plain sample lines.

        One regex search per visited line finds the next candidate line start, so lines of
        other metrics cost the regex engine's scan and nothing else.
        """
        assert self.keep is not None
        body, has_eof = split_body(text, self.fmt)
        first, later = _line_starts(self.keep)
        search = later.search
        end = 0
        pos = 0 if first.match(body) else -1
        while True:
            if pos < 0:
                m = search(body, end)
                if m is None:
                    break
                pos = m.start() + 1
            end = body.find("\n", pos)
            if end < 0:
                end = len(body)
            try:
                line = body[pos:end]
                code = _OK if self.fast(line) else self.slow(line)
                if code == _NEED_MORE:
                    entry, end = parse_line(body, pos, self.fmt, False, False)
                    code = self.apply(entry)
            except LineError as exc:
                raise ExpositionError(body.count("\n", 0, pos) + 1, str(exc)) from None
            if code == _STOP:
                return
            pos = -1
        if not has_eof:
            raise ExpositionError(body.count("\n") + 1, "data does not end with # EOF")


def _fast_sample(groups: Sequence[Any], om: bool, norm: str | None) -> SampleTuple | None:
    """The sample of a fast regex's groups (absent ones None or ""), or None if the slow path
    must judge (and word) it."""
    name, inner, val, ts = groups[:4]
    try:
        v = float(val)
        if v - v != 0.0 and val.lstrip("+-")[0] not in "iInN":
            return None  # Go reports a range error where Python overflows to ±Inf
        t = None
        if ts:
            if om:
                f = float(ts)
                if f - f != 0.0:
                    return None
                t = ms_from_seconds(f)
            else:
                t = int(ts)
                if t > _INT64_MAX:
                    return None
        if om and groups[5] is not None:
            ev, ets = groups[5], groups[6]
            if float(ev) - float(ev) != 0.0 and ev.lstrip("+-")[0] not in "iInN":
                return None
            if ets is not None and float(ets) - float(ets) != 0.0:
                return None
    except ValueError:
        return None
    if not inner:
        return ((METRIC_NAME, name),), v, t
    pairs: list[tuple[str, str]] = PAIRS.findall(inner)
    if "\\" in inner:
        pairs = [(k, unescape(x)) for k, x in pairs]
    shape = _SHAPES.get(tuple(map(_first, pairs)), _NO_SHAPE)
    if shape is _NO_SHAPE:
        shape = _learn_shape(tuple(map(_first, pairs)))
    if shape is None or '=""' in inner:
        return build_labels(name, pairs, norm), v, t
    _, sort, le, quantile = shape
    if norm is not None:
        j = le if norm == "le" else quantile
        if j >= 0:
            pairs[j] = (norm, normalise_float_label(pairs[j][1]))
    pairs.append((METRIC_NAME, name))
    return sort(pairs), v, t


_NO_SHAPE: _Shape = ((), tuple, -1, -1)


def _learn_shape(key: tuple[str, ...]) -> _Shape | None:
    """The sort order for one label-name sequence; None when names repeat (the slow path)."""
    names = [*key, METRIC_NAME]
    shape: _Shape | None = None
    if len(set(names)) == len(names):
        order = sorted(range(len(names)), key=names.__getitem__)
        le = key.index("le") if "le" in key else -1
        quantile = key.index("quantile") if "quantile" in key else -1
        shape = (tuple(sys.intern(k) for k in key), itemgetter(*order), le, quantile)
    if len(_SHAPES) > 10_000:  # targets with ever-new label names must not grow this forever
        _SHAPES.clear()
    _SHAPES[key] = shape
    return shape


class _Pairs(dict[str, tuple[str, str]]):
    """The (name, value) label pairs of one label name in a parse, made once per value and
    keyed by the value as written: with `normalise` the pair holds it normalised, and with
    `escaped` the key is a value encoded by run_text and the pair holds it unescaped."""

    __slots__ = ("escaped", "name", "normalise")

    def __init__(self, name: str, normalise: bool, escaped: bool) -> None:
        super().__init__()
        self.name = name
        self.normalise = normalise
        self.escaped = escaped

    def __missing__(self, value: str) -> tuple[str, str]:
        key = value
        if self.escaped:  # undo run_text's encoding, then unescape what is left: only \n
            value = value.replace("\n", '"').replace("\\n", "\n").replace("\x00", "\\")
        if self.normalise:
            value = normalise_float_label(value)
        pair = self[key] = (self.name, value)
        return pair


# How run_text builds the label set of one label-name sequence: the _Pairs of each name in
# sorted order (`__name__` included), and an itemgetter taking their values, in that order,
# from the list `label_set.split('"')` with the metric name appended.
_TextShape = tuple[tuple[_Pairs, ...], Callable[[list[str]], tuple[str, ...]]]


class _TextShapes:
    """run_text's shapes and label pairs for one parse. Shapes are keyed by the normalised
    label (`le`, `quantile` or None: see _Scraper.norm), then by the even items of
    `label_set.split('"')`: `name=`, `,name=`, ..., and "" or a trailing "," (with a
    backslash appended for encoded label sets with escapes, see run_text).

    Sharing pairs between samples saves memory and, as the cyclic GC tracks tuples, time in
    its first collection after the parse.
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, bool, bool], _Pairs] = {}
        self.by_norm: dict[str | None, dict[tuple[str, ...], _TextShape]] = {}

    def of(self, name: str, normalise: bool = False, escaped: bool = False) -> _Pairs:
        pairs = self.pairs.get((name, normalise, escaped))
        if pairs is None:
            pairs = _Pairs(sys.intern(name), normalise, escaped)
            self.pairs[name, normalise, escaped] = pairs
        return pairs

    def known(self, norm: str | None) -> dict[tuple[str, ...], _TextShape]:
        return self.by_norm.setdefault(norm, {})

    def learn(self, key: tuple[str, ...], norm: str | None) -> _TextShape | None:
        """The shape for `key`; None when label names repeat (the per-line code refuses it)."""
        names = [part.lstrip(",")[:-1] for part in key[:-1]]
        names.append(METRIC_NAME)
        if len(set(names)) != len(names):
            return None
        order = sorted(range(len(names)), key=names.__getitem__)
        escaped = key[-1].endswith("\\")
        pairs = tuple(self.of(names[j], names[j] == norm, escaped) for j in order)
        shape = (pairs, itemgetter(*[2 * j + 1 for j in order]))  # the metric name goes last
        self.known(norm)[key] = shape
        return shape


@functools.lru_cache(maxsize=64)
def _line_starts(keep: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for lines a filtered parse must visit: at the start, and after a line break."""
    names = _alternation(keep)
    starts = "[#{ \\t\\x00]" + (f"|{names}[{{ \\t]" if names else "")
    return re.compile(f"(?:{starts})"), re.compile(f"\\n(?:{starts})")


def _alternation(words: Collection[str]) -> str:
    """A regex matching any of `words`, factored as a trie so the engine rejects in one step."""
    if not words:
        return ""
    if max(len(w) for w in words) > 200:
        return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"
    trie: dict[str, dict[str, Any]] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        ends = "" in node
        if len(alts) == 1 and not ends:
            return alts[0]
        return "(?:" + "|".join(alts) + ")" + ("?" if ends else "")

    return "(?:" + build(trie) + ")"


def check_metrics_command(path: str, fmt: str | None) -> int:
    """`value-exporter check metrics`: strict-parse a file (or stdin for "-") and report."""
    from exporter.exposition_strict import parse_strict

    label = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            data: bytes = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        print(f"{label}: cannot read: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        text = decode(data)
        chosen = fmt or select_format(text, None)
        report = parse_strict(text, chosen)
    except ExpositionError as exc:
        print(f"{label}:{exc}", file=sys.stderr)
        return 1
    if report.errors:
        for line, message in report.errors:
            print(f"{label}:line {line}: {message}", file=sys.stderr)
        return 1
    series = len({labels for labels, _, _ in report.samples})
    print(f"OK: {report.families} families, {series} series ({chosen})")
    return 0
