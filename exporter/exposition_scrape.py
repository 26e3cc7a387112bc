"""Scrape-mode parsing (scrape -> parse -> store): what Prometheus 3.5's scrape loop accepts.

The text format goes through `Scraper.run_text` (canonical lines in bulk), OpenMetrics through
`run_lines` (the reference run_text must agree with), and a name-filtered parse through
`run_filtered`; lines off the fast path go to `exporter.exposition_lines`.
"""

from __future__ import annotations

import math
from operator import getitem
from typing import Any

from exporter.exposition_fast import (
    CHUNK,
    NORM_BY_TYPE,
    OM_FAST,
    SHAPES,
    TEXT_BULK,
    TEXT_FAST,
    TEXT_META_FAST,
    ExpositionError,
    Miss,
    SeriesRefs,
    TextShapes,
    fast_sample,
    line_starts,
    split_body,
    split_lines,
    text_value,
)
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
    normalise_float_label,
    parse_line,
    unescape_help,
)
from exporter.labels import METRIC_NAME
from exporter.store import MetricMetadata


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


OK, NEED_MORE, STOP = 0, 1, 2


class Scraper:
    """Scrape-mode state: the samples so far, metadata, and the last `# TYPE` seen."""

    def __init__(self, fmt: str, keep: frozenset[str] | None) -> None:
        self.fmt = fmt
        self.keep = keep
        self.samples: list[Any] = []  # SampleTuple, or (ref, value, ts) for a refs hit
        self.refs: SeriesRefs | None = None
        self.misses: list[Miss] = []
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
        """A line the fast path did not take; NEED_MORE if it continues on the next line."""
        m = TEXT_META_FAST.fullmatch(line) if self.fmt == TEXT else None
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
            return NEED_MORE
        return self.apply(entry)

    def apply(self, entry: Entry) -> int:
        if isinstance(entry, Sample):
            if self.keep is None or entry.name in self.keep:
                labels = build_labels(entry.name, entry.pairs, self.norm)
                self.samples.append((labels, entry.value, entry.ts_ms))
        elif isinstance(entry, Meta):
            self.meta.setdefault(entry.name, {})[entry.kind] = entry.text
            if entry.kind == "TYPE":
                self.norm = NORM_BY_TYPE.get(entry.text)
        elif isinstance(entry, Other):
            if entry.kind == "stop":
                return STOP
            if entry.kind == "eof":
                raise LineError("unexpected data after # EOF")
        return OK

    def fast(self, line: str) -> bool:
        """Take a canonical sample line; False sends it to the slow path."""
        om = self.fmt == OPENMETRICS
        m = (OM_FAST if om else TEXT_FAST).fullmatch(line)
        if m is None:
            return False
        name = m.group(1)
        if self.keep is not None and name not in self.keep:
            return True
        refs = None if om else self.refs
        if refs is not None:
            written = m.group(2) or ""
            by_text = refs.get(self.norm, {}).get(name)
            ref = None if by_text is None else by_text.get(written)
            if ref is not None:
                checked = text_value(m.group(3), m.group(4))
                if checked is None:
                    return False  # the slow path words the error
                self.samples.append((ref, *checked))
                return True
        sample = fast_sample(m.groups(), om, self.norm)
        if sample is None:
            return False
        if refs is not None:
            self.misses.append((len(self.samples), self.norm, name, written))
        self.samples.append(sample)
        return True

    def run_all(self, text: str) -> None:
        if self.fmt == TEXT:
            self.run_text(text)
        else:
            self.run_lines(text)

    def run_text(self, body: str) -> None:
        """The text-format fast path: `run_lines` in effect, with the common case done in bulk.

        `TEXT_BULK.findall` cuts every canonical sample line into groups in C, a chunk of
        lines at a time (the rows stay in the CPU cache); the loop turns those into samples with
        a TextShape per label-name sequence. The rest (comments, empty label values, quoted
        names, odd values, errors) goes through the same code as in `run_lines`, and both
        must give identical results, errors included: tests/test_exposition.py checks.
        """
        if not body:
            return
        end = len(body) - (body[-1] == "\n")  # the lines are body[:end].split("\n")
        append = self.samples.append
        shapes = TextShapes()
        metric_name = shapes.of(METRIC_NAME)
        norm = self.norm
        shape_of = shapes.known(norm).get
        refs = self.refs
        misses = self.misses
        known_refs = {} if refs is None else refs.get(norm, {})
        lines: list[str] | None = None  # split only when a line needs the per-line code
        offsets: _LineOffsets | None = None
        pos = first = 0  # where the chunk starts, and the index of its first line
        while True:
            stop = body.find("\n", pos + CHUNK, end)
            if stop < 0:
                stop = end
            rows = TEXT_BULK.findall(body, pos, stop)
            if len(rows) != body.count("\n", pos, stop) + 1:  # cannot happen: never guess
                rows = [("",) * 8 + (line,) for line in body[pos:stop].split("\n")]
            for i, (name, inner, val, ts, name2, inner2, val2, ts2, line) in enumerate(
                rows, first
            ):
                written = inner  # the series text as written, the key into refs
                if name2 and "\\" in inner2 and '=""' not in inner2 and "\x00" not in inner2:
                    # Escapes but no empty values: encode escaped backslashes as NUL (checked
                    # absent) and escaped quotes as line breaks (never in a line), so splitting
                    # at quotes still works, and mark the last split item; the _Pairs decode.
                    name, val, ts, written = name2, val2, ts2, inner2
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
                        if refs is not None:
                            # A known series text: its ref, no labels built (scrapeCache).
                            by_text = known_refs.get(name)
                            ref = None if by_text is None else by_text.get(written)
                            if ref is not None:
                                append((ref, v, int(ts) if ts else None))
                                continue
                            misses.append((len(self.samples), norm, name, written))
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
                        if refs is not None:
                            misses.pop()  # the per-line code refuses it (repeated names)
                    if lines is None:
                        lines = split_lines(body)
                    line = lines[i]
                elif name2:
                    try:
                        sample = fast_sample((name2, inner2, val2, ts2), False, norm)
                    except LineError as exc:  # found by fuzzing: a{__name__=""} 1
                        raise ExpositionError(i + 1, str(exc)) from None
                    if sample is not None:
                        append(sample)
                        continue
                    if lines is None:
                        lines = split_lines(body)
                    line = lines[i]
                try:
                    code = OK if self.fast(line) else self.slow(line)
                    if code == NEED_MORE:  # a quoted string runs over line breaks
                        if lines is None:
                            lines = split_lines(body)
                        if offsets is None:
                            offsets = _LineOffsets(lines)
                        start = offsets.of(i)
                        entry, stop = parse_line(body, start, self.fmt, False, False)
                        if self.apply(entry) == STOP:
                            return
                        norm = self.norm
                        shape_of = shapes.known(norm).get
                        known_refs = {} if refs is None else refs.get(norm, {})
                        first = i + 1 + body.count("\n", start, stop)
                        break  # go on after the entry's last line, in a new chunk
                    if code == STOP:
                        return
                    norm = self.norm
                    shape_of = shapes.known(norm).get
                    known_refs = {} if refs is None else refs.get(norm, {})
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
        shapes = SHAPES
        norm = self.norm
        refs = self.refs
        known_refs = {} if refs is None else refs.get(norm, {})
        skip = 0
        for i, line in enumerate(lines):
            try:
                if i < skip:
                    continue
                m = fullmatch(line)
                if m is not None:
                    if refs is not None:
                        # A known series text: its ref, no labels built (scrapeCache).
                        groups = m.groups()
                        by_text = known_refs.get(groups[0])
                        ref = None if by_text is None else by_text.get(groups[1] or "")
                        if ref is not None:
                            checked = fast_sample((groups[0], None, *groups[2:]), om, norm)
                            if checked is not None:
                                append((ref, checked[1], checked[2]))
                                continue
                        else:
                            self.misses.append((len(self.samples), norm, groups[0],
                                                groups[1] or ""))
                    # The hot path, inlined: a canonical line whose label names were seen before.
                    inner = m.group(2)
                    if om or not inner or "\\" in inner or '=""' in inner:
                        del inner  # m.groups() copies it again
                        sample = fast_sample(m.groups(), om, norm)
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
                            sample = fast_sample(m.groups(), om, norm)
                            if sample is not None:
                                append(sample)
                                continue
                code = self.slow(line)
                if code == NEED_MORE:
                    if body is None:
                        body = text[:body_len]
                    start = offsets.of(i)
                    entry, end = parse_line(body, start, self.fmt, False, False)
                    skip = i + 1 + body.count("\n", start, end)
                    code = self.apply(entry)
                if self.misses and self.misses[-1][0] == len(self.samples):
                    self.misses.pop()  # recorded for a line that gave no sample
                if code == STOP:
                    return
                norm = self.norm
                known_refs = {} if refs is None else refs.get(norm, {})
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
        first, later = line_starts(self.keep)
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
                code = OK if self.fast(line) else self.slow(line)
                if code == NEED_MORE:
                    entry, end = parse_line(body, pos, self.fmt, False, False)
                    code = self.apply(entry)
            except LineError as exc:
                raise ExpositionError(body.count("\n", 0, pos) + 1, str(exc)) from None
            if code == STOP:
                return
            pos = -1
        if not has_eof:
            raise ExpositionError(body.count("\n") + 1, "data does not end with # EOF")


