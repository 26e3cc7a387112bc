"""The parse stage's fast path, shared by scrape and strict mode: regexes for canonical lines,
label-set shapes, and the types and errors every exposition module uses."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Collection, Sequence
from operator import itemgetter
from typing import Any

from exporter.exposition_lines import (
    OPENMETRICS,
    build_labels,
    ms_from_seconds,
    normalise_float_label,
    unescape,
)
from exporter.labels import METRIC_NAME, Labels

SampleTuple = tuple[Labels, float, int | None]

INT64_MAX = 2**63 - 1
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
TEXT_META_FAST = re.compile(rf"# (HELP|TYPE) ({_NAME_RE}) (.*)", re.ASCII | re.DOTALL)
PAIRS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*+)="([^"\\]*+(?:\\.[^"\\]*+)*+)"')
# The text-format fast path, `Scraper.run_text`, reads a body a chunk of lines at a time with
# this one findall: one row per line, with groups for the first alternative that takes it.
#  1. A plain sample line: TEXT_FAST without escapes or empty label values; run_text builds
#     its sample in the loop.
#  2. Any other line TEXT_FAST takes: run_text builds those with escapes (but no empty values)
#     in the loop too, and leaves the rest to fast_sample.
#  3. Anything else: the whole line, for the per-line code (`fast`, then `slow`).
# run_text must give exactly what `run_lines` gives for every line, errors included. Both
# sample alternatives keep to one line: no line breaks in label values.
_PLAIN_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]++"'
_LINE_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*+="[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"'
_SAMPLE_TAIL = rf" ({_NUM})(?: ([0-9]++))?$"
_NAME_ONCE = r"[a-zA-Z_:][a-zA-Z0-9_:]*+"  # _NAME_RE, possessive: no name character follows
CHUNK = 50_000  # characters of body per findall
TEXT_BULK = re.compile(
    rf"^(?:({_NAME_ONCE})(?:\{{((?:{_PLAIN_PAIR}(?:,{_PLAIN_PAIR})*+,?)?)\}})?{_SAMPLE_TAIL}"
    rf"|({_NAME_ONCE})(?:\{{((?:{_LINE_PAIR}(?:,{_LINE_PAIR})*+,?)?)\}})?{_SAMPLE_TAIL}"
    r"|(.*))",
    re.ASCII | re.MULTILINE,
)
_first = itemgetter(0)
# How to turn a line's label pairs (in written order) plus __name__ into a sorted label set,
# keyed by the label names in written order: a handful of shapes covers a whole exposition.
_Shape = tuple[tuple[str, ...], Callable[[list[tuple[str, str]]], Labels], int, int]
SHAPES: dict[tuple[str, ...], _Shape | None] = {}
NORM_BY_TYPE = {"histogram": "le", "summary": "quantile"}


class ExpositionError(Exception):
    """An exposition Prometheus (or, in strict mode, the format spec) refuses."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# A scrape's series cache as the parser reads it: normalised label (see Scraper.norm), then
# metric name, then the label set as written between the braces -> what the scraper stored.
SeriesRefs = dict[str | None, dict[str, dict[str, object]]]
# A sample line the parser built labels for but found no ref for: (index in samples, the keys).
Miss = tuple[int, str | None, str, str]


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


def text_value(val: str, ts: str | None) -> tuple[float, int | None] | None:
    """A text-format line's value and timestamp as fast_sample takes them, or None."""
    try:
        v = float(val)
    except ValueError:
        return None
    if v - v != 0.0 and val.lstrip("+-")[0] not in "iInN":
        return None
    if not ts:
        return v, None
    t = int(ts)
    return None if t > INT64_MAX else (v, t)


def fast_sample(groups: Sequence[Any], om: bool, norm: str | None) -> SampleTuple | None:
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
                if t > INT64_MAX:
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
    shape = SHAPES.get(tuple(map(_first, pairs)), _NO_SHAPE)
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
    if len(SHAPES) > 10_000:  # targets with ever-new label names must not grow this forever
        SHAPES.clear()
    SHAPES[key] = shape
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
TextShape = tuple[tuple[_Pairs, ...], Callable[[list[str]], tuple[str, ...]]]


class TextShapes:
    """run_text's shapes and label pairs for one parse. Shapes are keyed by the normalised
    label (`le`, `quantile` or None: see Scraper.norm), then by the even items of
    `label_set.split('"')`: `name=`, `,name=`, ..., and "" or a trailing "," (with a
    backslash appended for encoded label sets with escapes, see run_text).

    Sharing pairs between samples saves memory and, as the cyclic GC tracks tuples, time in
    its first collection after the parse.
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, bool, bool], _Pairs] = {}
        self.by_norm: dict[str | None, dict[tuple[str, ...], TextShape]] = {}

    def of(self, name: str, normalise: bool = False, escaped: bool = False) -> _Pairs:
        pairs = self.pairs.get((name, normalise, escaped))
        if pairs is None:
            pairs = _Pairs(sys.intern(name), normalise, escaped)
            self.pairs[name, normalise, escaped] = pairs
        return pairs

    def known(self, norm: str | None) -> dict[tuple[str, ...], TextShape]:
        return self.by_norm.setdefault(norm, {})

    def learn(self, key: tuple[str, ...], norm: str | None) -> TextShape | None:
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
def line_starts(keep: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for lines a filtered parse must visit: at the start, and after a line break."""
    names = _alternation(keep)
    # A brace opens a quoted metric name (`{"a.b",x="1"} 1`): when the name is a plain quoted
    # string followed by `,` or `}` (not `=`: then it is a label name), only kept names are
    # visited; any other brace line (escapes, a label first) is visited.
    starts = '[# \\t\\x00]|\\{(?!"[^"\\\\\\n]*+"[,}])'
    if names:
        starts += f'|\\{{"{names}"[,}}]|{names}[{{ \\t]'
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


