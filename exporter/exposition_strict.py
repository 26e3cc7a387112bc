"""Strict exposition checks for the parse stage (scrape -> parse -> store), behind `check metrics`.

Everything scrape mode refuses is refused here too; on top come the rules of the OpenMetrics
1.0 and Prometheus text 0.0.4 specifications: families in one group each with metadata first,
type-specific sample names and labels, histogram bucket rules, exemplar placement, ordering of
timestamps. Every error is collected, one `(line, message)` each, so a file is fixed in one go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from exporter.exposition_fast import (
    OM_FAST_STRICT,
    PAIRS,
    TEXT_FAST,
    SampleTuple,
    split_body,
    split_lines,
)
from exporter.exposition_lines import (
    OPENMETRICS,
    Entry,
    LineError,
    Meta,
    NeedMore,
    Other,
    Pairs,
    Sample,
    build_labels,
    ms_from_seconds,
    parse_float,
    parse_line,
)
from exporter.labels import Labels
from exporter.store import MetricMetadata

_OM_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "histogram": ("_count", "_sum", "_bucket", "_created"),
    "gaugehistogram": ("_gcount", "_gsum", "_bucket"),
    "info": ("_info",),
}
_TEXT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "summary": ("", "_count", "_sum"),
    "histogram": ("_count", "_sum", "_bucket"),
}
_NOT_NAN = ("_total", "_sum", "_count", "_bucket", "_gcount", "_gsum")
_NOT_NEGATIVE = ("_total", "_sum", "_count", "_bucket", "_gcount")
_NORM_BY_TYPE = {"histogram": "le", "summary": "quantile"}
_EXEMPLAR_MAX_RUNES = 128


@dataclass
class StrictReport:
    """The parse of a whole exposition with every problem found."""

    samples: list[SampleTuple] = field(default_factory=list)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    families: int = 0


def parse_strict(text: str, fmt: str) -> StrictReport:
    """Parse `text` (already decoded) in format `fmt`, collecting every error."""
    body, has_eof = split_body(text, fmt)
    lines = split_lines(body)
    checker = _Checker(fmt)
    skip = 0
    offset = 0
    for i, line in enumerate(lines):
        if i >= skip:
            lineno = i + 1
            try:
                entry: Entry | None = _fast_entry(line, fmt)
                if entry is None:
                    try:
                        entry, _ = parse_line(line, 0, fmt, True, True)
                    except NeedMore:
                        entry, end = parse_line(body, offset, fmt, True, False)
                        skip = i + 1 + body.count("\n", offset, end)
                if entry is not None:
                    checker.feed(lineno, entry)
            except LineError as exc:
                checker.error(lineno, str(exc))
        offset += len(line) + 1
    if not has_eof:
        checker.error(len(lines) + 1, "data does not end with # EOF")
    checker.close_family()
    checker.report.errors.sort(key=lambda e: e[0])
    checker.report.metadata = {
        name: MetricMetadata(m.get("TYPE", "unknown"), m.get("HELP", ""), m.get("UNIT", ""))
        for name, m in checker.meta.items()
    }
    return checker.report


def _fast_entry(line: str, fmt: str) -> Sample | None:
    """The canonical-line fast path; None sends the line to the careful parser."""
    if fmt == OPENMETRICS:
        m = OM_FAST_STRICT.fullmatch(line)
        if m is None:
            return None
        name, inner, val, ts, einner, ev, ets = m.groups()
    else:
        m = TEXT_FAST.fullmatch(line)
        if m is None:
            return None
        name, inner, val, ts = m.groups()
        einner = ev = ets = None
    if inner and (inner.startswith("__") or ",__" in inner or "\\" in inner):
        return None  # reserved names and escapes get the careful parser's checks
    value = parse_float(val)
    if value is None:
        return None
    ts_ms: int | None = None
    ts_raw: float | None = None
    if ts is not None:
        if fmt == OPENMETRICS:
            ts_raw = parse_float(ts)
            if ts_raw is None or not math.isfinite(ts_raw):
                return None
            ts_ms = ms_from_seconds(ts_raw)
        else:
            ts_ms = int(ts)
            if ts_ms >= 2**63:
                return None
    exemplar = None
    if ev is not None:
        evalue = parse_float(ev)
        ets_f = None if ets is None else parse_float(ets)
        if evalue is None or (ets is not None and (ets_f is None or not math.isfinite(ets_f))):
            return None
        if einner and "\\" in einner:
            return None
        exemplar = (PAIRS.findall(einner) if einner else [], evalue, ets_f)
    pairs: Pairs = PAIRS.findall(inner) if inner else []
    return Sample(name, pairs, value, ts_ms, ts_raw, exemplar)


@dataclass
class _Histogram:
    """One histogram (or gauge histogram) instance: a label group at one timestamp."""

    line: int
    what: str
    bucket: float | None = None
    value: float = 0.0
    count: float | None = None
    has_sum: bool = False
    has_gsum: bool = False
    negative_bucket: bool = False
    negative_gsum: bool = False


@dataclass
class _Family:
    name: str
    line: int
    type: str = "unknown"
    meta: set[str] = field(default_factory=set)
    unit: str = ""
    has_samples: bool = False
    allowed: dict[str, str] = field(default_factory=dict)
    groups: set[tuple[tuple[str, str], ...]] = field(default_factory=set)
    group: tuple[tuple[str, str], ...] | None = None
    group_ts: float | None = None
    group_series: set[Labels] = field(default_factory=set)
    hist: _Histogram | None = None
    quantile: float | None = None


class _Checker:
    """Feeds entries through family bookkeeping; errors go to the report, never raise."""

    def __init__(self, fmt: str) -> None:
        self.om = fmt == OPENMETRICS
        self.report = StrictReport()
        self.meta: dict[str, dict[str, str]] = {}
        self.family: _Family | None = None
        self.names: set[str] = set()
        self.series: set[Labels] = set()
        self.norm: str | None = None

    def error(self, line: int, message: str) -> None:
        self.report.errors.append((line, message))

    def suffixes(self, type_: str) -> tuple[str, ...]:
        table = _OM_SUFFIXES if self.om else _TEXT_SUFFIXES
        return table.get(type_, ("",))

    def feed(self, line: int, entry: Entry) -> None:
        if isinstance(entry, Meta):
            self.feed_meta(line, entry)
        elif isinstance(entry, Sample):
            self.feed_sample(line, entry)
        elif isinstance(entry, Other) and entry.kind == "eof":
            self.error(line, "unexpected data after # EOF")

    def start_family(self, name: str, line: int) -> _Family:
        self.close_family()
        fam = _Family(name, line, allowed={name: ""})
        self.family = fam
        self.report.families += 1
        return fam

    def close_family(self) -> None:
        fam = self.family
        if fam is None:
            return
        self.family = None
        self.finish_histogram(fam)
        if fam.unit and fam.type in ("info", "stateset"):
            self.error(fam.line, f"{fam.type} {fam.name!r} cannot have a UNIT")
        names = {fam.name, *fam.allowed}
        clash = sorted(names & self.names)
        if clash:
            self.error(fam.line, f"metric family {fam.name!r} clashes with an earlier family "
                       f"over {clash[0]!r} (each family must be one group of lines)")
        self.names |= names

    def feed_meta(self, line: int, entry: Meta) -> None:
        self.meta.setdefault(entry.name, {})[entry.kind] = entry.text
        if entry.kind == "TYPE":
            self.norm = _NORM_BY_TYPE.get(entry.text)
        fam = self.family
        if fam is None or fam.name != entry.name:
            fam = self.start_family(entry.name, line)
        elif fam.has_samples:
            self.error(line, f"{entry.kind} for {entry.name!r} after its samples")
            return
        if entry.kind in fam.meta:
            self.error(line, f"second {entry.kind} line for {entry.name!r}")
            return
        fam.meta.add(entry.kind)
        if entry.kind == "TYPE":
            fam.type = entry.text
            fam.allowed = {entry.name + s: s for s in self.suffixes(entry.text)}
        elif entry.kind == "UNIT":
            fam.unit = entry.text

    def feed_sample(self, line: int, s: Sample) -> None:
        labels = build_labels(s.name, s.pairs, self.norm)
        self.report.samples.append((labels, s.value, s.ts_ms))
        fam = self.family
        if fam is None or s.name not in fam.allowed:
            fam = self.start_family(s.name, line)
            if not self.om:
                # Without a TYPE line the text format cannot say which names form a family;
                # take x, x_bucket, x_sum and x_count as one, as a stripped histogram shows them.
                base = s.name
                for suffix in ("_bucket", "_sum", "_count"):
                    if base.endswith(suffix) and len(base) > len(suffix):
                        base = base[: -len(suffix)]
                        break
                fam.name = base
                fam.allowed = {base + x: x for x in ("", "_bucket", "_sum", "_count")}
        fam.has_samples = True
        suffix = fam.allowed[s.name]
        d = dict(s.pairs)
        problem = self.sample_problem(fam, suffix, s, d)
        if problem:
            self.error(line, f"{s.name}: {problem}")
            if "label" in problem:
                return  # without a usable le/quantile the group bookkeeping cannot go on
        self.check_group(line, fam, suffix, s, d, labels)

    def sample_problem(self, fam: _Family, suffix: str, s: Sample, d: dict[str, str]) -> str:
        v, t = s.value, fam.type
        if not self.om and fam.type == "summary" and suffix == "" and "quantile" not in d:
            return "summary sample without a quantile label"
        if not self.om:
            return self.text_problem(fam, suffix, d)
        if t == "stateset" and fam.name not in d:
            return f"stateset sample without a {fam.name!r} label"
        if t == "stateset" and v not in (0.0, 1.0):
            return "stateset values must be 0 or 1"
        if t == "info" and v != 1.0:
            return "info values must be 1"
        if suffix == "_bucket":
            le = d.get("le")
            bound = None if le is None else parse_float(le)
            if bound is None or bound != bound or (bound == math.inf and le != "+Inf"):
                return f"invalid le label {le!r} (a float, +Inf written as \"+Inf\")"
        if suffix in ("_bucket", "_count", "_gcount") and not (
            math.isfinite(v) and v == int(v)
        ):
            return "bucket and count values must be integers"
        if t == "summary" and suffix == "":
            q = d.get("quantile")
            qf = None if q is None else parse_float(q)
            if qf is None or not 0.0 <= qf <= 1.0:
                return f"invalid quantile label {q!r} (a float from 0 to 1)"
            if v < 0:
                return "quantile values cannot be negative"
        if suffix in _NOT_NAN and v != v:
            return "counter-like values cannot be NaN"
        if suffix in _NOT_NEGATIVE and v < 0:
            return "counter-like values cannot be negative"
        if s.exemplar is not None:
            if not (suffix == "_bucket" or (t == "counter" and suffix == "_total")):
                return "exemplars are only allowed on histogram buckets and counter totals"
            runes = sum(len(k) + len(x) for k, x in s.exemplar[0])
            if runes > _EXEMPLAR_MAX_RUNES:
                return f"exemplar labels have {runes} characters, more than 128"
        return ""

    def text_problem(self, fam: _Family, suffix: str, d: dict[str, str]) -> str:
        if suffix == "_bucket" and (d.get("le") is None or parse_float(d["le"]) is None):
            return f"invalid le label {d.get('le')!r}"
        if fam.type == "summary" and suffix == "" and parse_float(d["quantile"]) is None:
            return f"invalid quantile label {d['quantile']!r}"
        return ""

    def check_group(self, line: int, fam: _Family, suffix: str, s: Sample, d: dict[str, str],
                    labels: Labels) -> None:
        drop = None
        if suffix == "_bucket":
            drop = "le"
        elif fam.type == "summary" and suffix == "":
            drop = "quantile"
        elif fam.type == "stateset":
            drop = fam.name
        if fam.type == "info" and self.om:
            group: tuple[tuple[str, str], ...] = ()
        else:
            group = tuple(sorted((k, x) for k, x in d.items() if k != drop))
        ts = s.ts_raw if self.om else s.ts_ms
        if group != fam.group:
            if group in fam.groups:
                self.error(line, f"{s.name}: samples of one label group must be together")
            fam.groups.add(group)
            fam.group, fam.group_ts = group, ts
            fam.group_series = set()
            fam.quantile = None
            self.new_histogram(fam, line, s.name)
        elif self.om:
            if (ts is None) != (fam.group_ts is None):
                self.error(line, f"{s.name}: mix of samples with and without timestamps")
            elif ts is not None and fam.group_ts is not None and ts < fam.group_ts:
                if fam.type != "info":
                    self.error(line, f"{s.name}: timestamps go backwards")
            elif ts != fam.group_ts and fam.type in ("histogram", "gaugehistogram"):
                self.new_histogram(fam, line, s.name)
            fam.group_ts = ts
        if labels in (fam.group_series if self.om else self.series) and (ts is None or not self.om):
            self.error(line, f"{s.name}: duplicate sample for the same series")
        (fam.group_series if self.om else self.series).add(labels)
        if fam.type in ("histogram", "gaugehistogram"):
            self.track_histogram(line, fam, suffix, s, d)
        elif fam.type == "summary" and suffix == "" and not self.om:
            q = parse_float(d["quantile"])
            if q is not None and fam.quantile is not None and q <= fam.quantile:
                self.error(line, f"{s.name}: quantiles must be in increasing order")
            fam.quantile = q

    def new_histogram(self, fam: _Family, line: int, name: str) -> None:
        if fam.type in ("histogram", "gaugehistogram"):
            self.finish_histogram(fam)
            fam.hist = _Histogram(line, name)

    def track_histogram(self, line: int, fam: _Family, suffix: str, s: Sample,
                        d: dict[str, str]) -> None:
        h = fam.hist
        assert h is not None
        v = s.value
        if suffix == "_bucket":
            bound = parse_float(d["le"])
            assert bound is not None
            if bound < 0:
                h.negative_bucket = True
            if h.bucket is not None and bound <= h.bucket:
                self.error(line, f"{s.name}: buckets must be in increasing order of le")
            if v < h.value:
                self.error(line, f"{s.name}: bucket counts must not decrease (cumulative)")
            h.bucket, h.value = bound, v
        elif suffix in ("_count", "_gcount"):
            h.count = v
        elif suffix == "_sum":
            h.has_sum = True
        elif suffix == "_gsum":
            h.has_gsum = True
            h.negative_gsum = v < 0

    def finish_histogram(self, fam: _Family) -> None:
        h, fam.hist = fam.hist, None
        if h is None:
            return
        problems = []
        if h.bucket != math.inf:
            problems.append("no +Inf bucket")
        elif h.count is not None and h.count != h.value:
            problems.append("count does not match the +Inf bucket")
        if self.om:
            g = "g" if fam.type == "gaugehistogram" else ""
            if (h.has_sum or h.has_gsum) and h.count is None:
                problems.append(f"_{g}sum without _{g}count")
            if not (h.has_sum or h.has_gsum) and h.count is not None:
                problems.append(f"_{g}count without _{g}sum")
            if h.negative_bucket and h.has_sum:
                problems.append("_sum with negative buckets")
            if h.negative_gsum and not h.negative_bucket:
                problems.append("negative _gsum without negative buckets")
        for problem in problems:
            self.error(h.line, f"{h.what}: histogram {fam.name!r}: {problem}")
