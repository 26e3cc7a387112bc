"""The per-series part of the scrape stage (scrape -> parse -> relabel -> store): target labels
and metric relabelling on a scraped label set, Prometheus's per-series checks, and the series
cache that lets a known series text skip all of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from exporter.config_scrape import ScrapeLimits
from exporter.exposition import Miss, SeriesRefs
from exporter.labels import METRIC_NAME, Labels
from exporter.relabel import RelabelConfig, apply_relabel
from exporter.store import SeriesStore

# Prometheus's legacy validation scheme (`metric_name_validation_scheme: legacy`); the default,
# utf8, takes any non-empty UTF-8 name, and a decoded body holds nothing else.
_METRIC_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Dropped:
    """The series cache's entry for a series text that metric relabelling drops: one object
    per entry, so a scrape can tell which entries it saw."""

    __slots__ = ()


DROPPED_SAMPLE: Final = (Dropped(), 0.0, None)  # marks a sample relabelling dropped


def mutate_labels(raw: Labels, target_pairs: Labels, honor_labels: bool,
                  configs: Sequence[RelabelConfig]) -> Labels | None:
    """Target labels attached as Prometheus's mutateSampleLabels does, then relabelled."""
    # By name, the (name, value) pair objects themselves: the stored label set reuses the
    # parser's pairs (shared by every series with that label) and the target's, instead
    # of a new pair for each label of each series.
    pairs = {p[0]: p for p in raw}
    if honor_labels:
        for pair in target_pairs:
            pairs.setdefault(pair[0], pair)
    else:
        conflicts = [pairs[n] for n, _ in target_pairs if n in pairs and pairs[n][1]]
        pairs.update((p[0], p) for p in target_pairs)
        # Shorter names first, so exported_exported_x never shadows exported_x.
        for name, value in sorted(conflicts, key=lambda p: len(p[0])):
            new = name
            while True:
                new = "exported_" + new
                if new not in pairs or not pairs[new][1]:
                    pairs[new] = (new, value)
                    break
    labels = tuple(sorted(p for p in pairs.values() if p[1] != ""))
    return apply_relabel(configs, labels)


def check_labels(labels: Labels, lim: ScrapeLimits, legacy: bool) -> tuple[str, str] | None:
    """Prometheus's per-series checks on a new series: (reason, message) or None."""
    name = ""
    for k, v in labels:
        if k == METRIC_NAME:
            name = v
        elif not k or (legacy and not _LABEL_NAME_RE.fullmatch(k)):
            return "parse_error", f"invalid label name {k!r}"
    if not name:
        return "parse_error", "__name__ label is missing"
    if legacy and not _METRIC_NAME_RE.fullmatch(name):
        return "parse_error", f"invalid metric name {name[:50]!r}"
    if lim.label_limit and len(labels) > lim.label_limit:
        return "label_limit", (f"label_limit exceeded (metric: {name[:50]}, number of labels:"
                               f" {len(labels)}, limit: {lim.label_limit})")
    for k, v in labels:
        if lim.label_name_length_limit and len(k.encode()) > lim.label_name_length_limit:
            return "label_limit", (
                f"label_name_length_limit exceeded (metric: {name[:50]}, label name: "
                f"{k[:50]}, length: {len(k.encode())}, limit: {lim.label_name_length_limit})")
        if lim.label_value_length_limit and len(v.encode()) > lim.label_value_length_limit:
            return "label_limit", (
                f"label_value_length_limit exceeded (metric: {name[:50]}, label name: "
                f"{k[:50]}, value: {v[:50]!r}, length: {len(v.encode())}, "
                f"limit: {lim.label_value_length_limit})")
    return None


class SeriesCache:
    """Prometheus's scrapeCache: series text as written -> stored series or Dropped, so a known
    line skips label parsing, relabelling and the store's label lookup.

    Only entries the last successful scrape saw are kept. It belongs to one scraper: a reload
    (maybe with new relabel rules) makes a new scraper, and so a new, empty cache.
    """

    def __init__(self) -> None:
        self.refs: SeriesRefs = {}  # what the parser reads (see exporter.exposition)

    def __len__(self) -> int:
        return sum(len(by_text) for names in self.refs.values() for by_text in names.values())

    def update(self, store: SeriesStore, hits: set[object],
               new: list[tuple[Miss, Labels | None]]) -> None:
        """After a successful scrape: evict the entries it did not see (`hits` are the refs
        it saw), then add its new series texts with their final labels (None: dropped)."""
        refs = self.refs
        if len(self) != len(hits):
            # Some entry went unseen (a series left the exposition): keep only what was seen.
            for names in refs.values():
                for name, by_text in list(names.items()):
                    kept = {k: v for k, v in by_text.items() if v in hits}
                    if kept:
                        names[name] = kept
                    else:
                        del names[name]
        for (_, norm, name, written), final in new:
            ref = Dropped() if final is None else store.get(final)
            if ref is not None:
                refs.setdefault(norm, {}).setdefault(name, {})[written] = ref
