"""Exposition parsing, the parse stage (scrape -> parse -> store): bytes to labelled samples.

Scrape mode (`exporter.exposition_scrape`) accepts exactly what Prometheus 3.5's scrape loop
accepts. Most lines take a compiled-regex fast path (`exporter.exposition_fast`); anything
unusual goes to `exporter.exposition_lines`, which follows Prometheus's lexers token by token.
Strict mode (`exporter.exposition_strict`) adds the rules of the format specifications for
`value-exporter check metrics`.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from exporter.exposition_fast import (
    ExpositionError,
    Miss,
    SampleTuple,
    SeriesRefs,
    split_body,
    split_lines,
)
from exporter.exposition_lines import OPENMETRICS, TEXT
from exporter.exposition_scrape import Scraper
from exporter.labels import METRIC_NAME, Labels
from exporter.store import MetricMetadata

__all__ = [
    "ExpositionError",
    "Miss",
    "ParseResult",
    "SampleTuple",
    "SeriesRefs",
    "check_metrics_command",
    "parse_exposition",
    "split_body",
    "split_lines",
]


@dataclass
class ParseResult:
    """Samples (label set with __name__, value, ms timestamp or None) and family metadata.

    With `refs`, a canonical text line whose series text is known yields that ref in place of
    its label set, and `misses` names the lines that could be cached but were not."""

    samples: list[Any] = field(default_factory=list)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    format: str = TEXT
    misses: list[Miss] = field(default_factory=list)


def parse_exposition(
    data: bytes | str,
    content_type: str | None = None,
    *,
    strict: bool = False,
    keep_names: Collection[str] | None = None,
    refs: SeriesRefs | None = None,
) -> ParseResult:
    """Parse one scrape body; raises ExpositionError (only) on input Prometheus would refuse.

    `keep_names` limits the result to samples with those metric names; other lines are skipped
    without being parsed, so errors in them go unnoticed (strict mode still checks everything).
    `refs` (text format, all names kept) skips label parsing for series texts seen before.
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
    scraper = Scraper(fmt, None if keep_names is None else frozenset(keep_names))
    scraper.refs = refs
    with _gc_paused():
        if keep_names is None:
            scraper.run_all(text)
        else:
            scraper.run_filtered(text)
    return ParseResult(scraper.samples, scraper.metadata(), fmt, scraper.misses)


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


def _name_of(labels: Labels) -> str:
    for k, v in labels:
        if k == METRIC_NAME:
            return v
    return ""


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
