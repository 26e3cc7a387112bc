"""Series store: columnar per-series sample buffers behind an inverted label index."""

from __future__ import annotations

import ctypes
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from exporter.labels import METRIC_NAME, Labels, Matcher, MatchType, is_stale, metric_name

DEFAULT_LOOKBACK_MS = 5 * 60 * 1000
_Item = TypeVar("_Item", int, float)

# Truncation copies each series' arrays into new ones (see Series). glibc gives every thread
# its own malloc arena, and a buffer stays in the arena of the thread that allocated it (or
# moved it when it outgrew CPython's small-object allocator); when the copies, and the growth
# after them, happened on whichever scheduler thread came along, the buffers wandered between
# arenas and each arena kept the free space left behind, so resident memory grew for as long
# as the daemon ran (+15% from minute 6 to minute 10 of the soak). So every copy is made on
# this one thread, with room for the samples due before the next truncation: appends then do
# not reallocate, the buffers stay in one arena, and each copy reuses the space the last freed.
_TRUNCATOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-truncate")
# array shrinks its buffer when more than this many items go at once (CPython's array_resize).
_SHRINK_KEEPS_BUFFER = 15


def _trim_function() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        return None
    return trim


# The space old copies free lies among live buffers, where the heap cannot shrink from its top;
# glibc's malloc_trim gives such free pages back to the system, so resident memory shows what
# is held rather than what the heap once reached.
_MALLOC_TRIM = _trim_function()


class Series:
    """One series: its label set and two parallel arrays (ms timestamps, float values).

    Samples are appended in time order. Writers append the value before the timestamp and
    readers bound themselves by `len(ts)`, so a reader never sees a timestamp without its
    value. Truncation swaps in new arrays rather than deleting in place, so a reader holding
    the old pair keeps a consistent view; `gen` is odd while the two are being swapped, and
    readers take the pair through `arrays()`, which retries across a swap, so they never pair
    new timestamps with old values. Appends and truncation exclude each other through the
    store's `write_lock`, so no sample lands in an array that is being replaced.
    """

    __slots__ = ("gen", "id", "labels", "ts", "vs")

    def __init__(self, series_id: int, labels: Labels) -> None:
        self.id = series_id
        self.labels = labels
        self.gen = 0
        self.ts: array[int] = array("q")
        self.vs: array[float] = array("d")

    def arrays(self) -> tuple[array[int], array[float]]:
        """The timestamp and value arrays as one consistent pair."""
        while True:
            gen = self.gen
            ts, vs = self.ts, self.vs
            if gen == self.gen and not gen & 1:
                return ts, vs
            time.sleep(0)  # a swap is under way: let the truncating thread finish it

    def __len__(self) -> int:
        return len(self.ts)

    def __repr__(self) -> str:
        return f"Series({self.labels!r}, {len(self.ts)} samples)"

    def window(self, start_ms: int, end_ms: int) -> tuple[array[int], array[float], int, int]:
        """Samples in the left-open window (start, end]: arrays plus [lo, hi) indices."""
        ts, vs = self.arrays()
        n = len(ts)
        lo = bisect_right(ts, start_ms, 0, n)
        hi = bisect_right(ts, end_ms, lo, n)
        return ts, vs, lo, hi

    def value_at(
        self, t_ms: int, lookback_ms: int = DEFAULT_LOOKBACK_MS
    ) -> tuple[int, float] | None:
        """The newest sample in (t - lookback, t], or None if absent or stale."""
        ts, vs = self.arrays()
        i = bisect_right(ts, t_ms, 0, len(ts)) - 1
        if i < 0 or ts[i] <= t_ms - lookback_ms:
            return None
        v = vs[i]
        if is_stale(v):
            return None
        return ts[i], v

    def last(self) -> tuple[int, float] | None:
        """The newest sample, stale or not."""
        ts, vs = self.arrays()
        n = len(ts)
        if n == 0:
            return None
        return ts[n - 1], vs[n - 1]

    def truncate_before(self, min_ms: int) -> None:
        """Forget samples older than min_ms.

        The new arrays have room for as many samples again as were dropped (plus a quarter):
        at a steady rate, what arrives before the next truncation.
        """
        i = bisect_left(self.ts, min_ms)
        if i:
            room = i + i // 4 + 2
            vs = _copy_with_room(self.vs, i, room)
            ts = _copy_with_room(self.ts, i, room)
            self.gen += 1  # odd: readers retry until both arrays are the new ones
            self.vs, self.ts = vs, ts
            self.gen += 1


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """What a family's `# TYPE`, `# HELP` and `# UNIT` lines said."""

    type: str = "unknown"
    help: str = ""
    unit: str = ""


class AppendResult:
    """Why an append was refused, as Prometheus names it."""

    OK = "ok"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate_timestamp"


class SeriesStore:
    """All series the exporter holds, selectable by label matchers."""

    def __init__(self, lookback_ms: int = DEFAULT_LOOKBACK_MS) -> None:
        self.lookback_ms = lookback_ms
        self._lock = threading.RLock()
        # Held by every append and by truncation's copy-and-swap of one series (see Series).
        self.write_lock = threading.Lock()
        self._by_labels: dict[Labels, Series] = {}
        self._by_id: dict[int, Series] = {}
        # Postings: label name -> value -> ids of the series with it. Ids only grow, so
        # appending keeps each array sorted; an array takes 8 bytes an entry where a set of
        # ints took about 60, which was the largest part of a big store's memory.
        self._postings: dict[str, dict[str, array[int]]] = {}
        self._next_id = 1
        self.metadata: dict[str, MetricMetadata] = {}

    # -- writing -----------------------------------------------------------------------

    def get_or_create(self, labels: Labels) -> Series:
        """The series for a label set, created (and indexed) on first use."""
        series = self._by_labels.get(labels)
        if series is not None:
            return series
        with self._lock:
            series = self._by_labels.get(labels)
            if series is None:
                series = Series(self._next_id, labels)
                self._next_id += 1
                self._by_id[series.id] = series
                postings = self._postings
                for name, value in labels:
                    values = postings.get(name)
                    if values is None:
                        values = postings[name] = {}
                    ids = values.get(value)
                    if ids is None:
                        values[value] = array("q", (series.id,))
                    else:
                        ids.append(series.id)
                self._by_labels[labels] = series
        return series

    def append(self, labels: Labels, t_ms: int, value: float) -> str:
        """Add one sample; refuses (and says why) out-of-order or conflicting duplicates."""
        series = self.get_or_create(labels)
        with self.write_lock:
            return append_sample(series, t_ms, value)

    def append_many(self, samples: Iterable[tuple[Labels, int, float]]) -> int:
        """Add many samples; returns how many were refused."""
        refused = 0
        get = self.get_or_create
        for labels, t_ms, value in samples:
            series = get(labels)
            with self.write_lock:
                if append_sample(series, t_ms, value) != AppendResult.OK:
                    refused += 1
        return refused

    def delete(self, series: Series) -> None:
        """Remove a series and its index entries."""
        self._delete_all([series])

    def _delete_all(self, gone: Iterable[Series]) -> None:
        """Remove series and their index entries, each posting array rewritten at most once."""
        with self._lock:
            dropped: dict[tuple[str, str], set[int]] = {}
            for series in gone:
                if self._by_id.pop(series.id, None) is None:
                    continue
                del self._by_labels[series.labels]
                for pair in series.labels:
                    dropped.setdefault(pair, set()).add(series.id)
            for (name, value), ids in dropped.items():
                values = self._postings[name]
                old = values[value]
                if len(ids) == 1:
                    (sid,) = ids
                    del old[bisect_left(old, sid)]
                    kept = old
                else:
                    kept = array("q", [i for i in old if i not in ids])
                if kept:
                    values[value] = kept
                else:
                    del values[value]
                    if not values:
                        del self._postings[name]

    def truncate(self, min_ms: int, min_ms_by_name: Mapping[str, int] | None = None) -> int:
        """Drop samples older than min_ms (or their name's own limit in `min_ms_by_name`) and
        series left empty; returns series removed."""
        by_name = dict(min_ms_by_name or {})
        with self._lock:
            held = list(self._by_id.values())
        # The copies need no lock (readers keep the arrays they took), so selections made
        # meanwhile, by rule evaluations for one, do not wait for them.
        try:
            job = _TRUNCATOR.submit(_truncate_all, held, min_ms, by_name, self.write_lock)
        except RuntimeError:  # the interpreter is exiting: no arena left to keep tidy
            emptied = _truncate_all(held, min_ms, by_name, self.write_lock)
        else:
            emptied = job.result()
        with self._lock:
            # A scrape may have written to a series since it was found empty: it stays.
            emptied = [series for series in emptied if len(series) == 0]
            self._delete_all(emptied)
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)
        return len(emptied)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._by_labels.clear()
            self._by_id.clear()
            self._postings.clear()
            self.metadata.clear()

    # -- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Series]:
        with self._lock:
            return iter(list(self._by_id.values()))

    def get(self, labels: Labels) -> Series | None:
        """The series with exactly this label set, if held."""
        return self._by_labels.get(labels)

    def holds(self, series: Series) -> bool:
        """Whether this series object is still in the store (not deleted by truncation)."""
        return self._by_id.get(series.id) is series

    def sample_count(self) -> int:
        """Samples held across all series."""
        return sum(len(s) for s in list(self._by_id.values()))

    def select(self, matchers: Sequence[Matcher]) -> list[Series]:
        """Series whose labels satisfy every matcher, in creation order (as Prometheus's head).

        Matchers that cannot match an absent label narrow through the index; the others
        (`x!="a"`, `x=~".*"`) filter the candidates, as a missing label counts as "".
        """
        with self._lock:
            candidates: set[int] | None = None
            filters = [m for m in matchers if m.matches_empty()]
            # Narrow with the most selective matchers first: equality on the metric name.
            narrowing = sorted((m for m in matchers if not m.matches_empty()), key=_selectivity)
            if len(narrowing) == 1 and narrowing[0].type is MatchType.EQUAL:
                # Fast path (a bare metric name, the usual selector): the posting array is
                # already in creation order, so no set and no sort.
                m = narrowing[0]
                posting = self._postings.get(m.name, {}).get(m.value, ())
                by_id = self._by_id
                if not filters:
                    return [by_id[i] for i in posting]
                return [s for s in (by_id[i] for i in posting)
                        if all(_series_matches(s.labels, f) for f in filters)]
            for m in narrowing:
                ids = self._ids_matching(m)
                candidates = ids if candidates is None else candidates & ids
                if not candidates:
                    return []
            # Ids grow with creation, so both pools are in creation order: deterministic
            # results, and sorting ints is far cheaper than sorting label sets.
            if candidates is None:
                pool: Iterable[Series] = self._by_id.values()
            else:
                by_id = self._by_id
                pool = (by_id[i] for i in sorted(candidates))
            if not filters:
                return list(pool)
            return [s for s in pool if all(_series_matches(s.labels, m) for m in filters)]

    def select_any(self, alternatives: Sequence[Sequence[Matcher]]) -> list[Series]:
        """Series any of the matcher groups selects (`a or b` in a selector), each once."""
        if len(alternatives) == 1:
            return self.select(alternatives[0])
        seen: dict[int, Series] = {}
        for matchers in alternatives:
            for series in self.select(matchers):
                seen.setdefault(series.id, series)
        return [seen[i] for i in sorted(seen)]

    def _ids_matching(self, m: Matcher) -> set[int]:
        values = self._postings.get(m.name)
        if not values:
            return set()
        if m.type is MatchType.EQUAL:
            return set(values.get(m.value, ()))
        ids: set[int] = set()
        for value, members in values.items():
            if m.matches(value):
                ids.update(members)
        return ids

    def label_names(self) -> list[str]:
        """Every label name in use, sorted."""
        with self._lock:
            return sorted(self._postings)

    def label_values(self, name: str) -> list[str]:
        """Every value a label takes, sorted."""
        with self._lock:
            return sorted(self._postings.get(name, {}))

    def metric_names(self) -> list[str]:
        """Every metric name held, sorted."""
        return self.label_values(METRIC_NAME)


def append_sample(series: Series, t_ms: int, value: float) -> str:
    """Append to one series with Prometheus's ordering rules."""
    ts = series.ts
    n = len(ts)
    if n:
        last_t = ts[n - 1]
        if t_ms < last_t:
            return AppendResult.OUT_OF_ORDER
        if t_ms == last_t:
            last_v = series.vs[n - 1]
            same = last_v == value or (last_v != last_v and value != value)
            return AppendResult.OK if same else AppendResult.DUPLICATE
    series.vs.append(value)
    ts.append(t_ms)
    return AppendResult.OK


def _copy_with_room(a: array[_Item], start: int, room: int) -> array[_Item]:
    """a[start:] in a new array whose buffer holds `room` more items before it must grow."""
    kept = a[start:]
    n = len(kept)
    kept.extend(a[:room])  # any items: only the size the buffer grows to matters
    while len(kept) > n:  # drop them a few at a time, so the buffer keeps its size
        del kept[max(n, len(kept) - _SHRINK_KEEPS_BUFFER):]
    return kept


def _truncate_all(held: list[Series], min_ms: int, by_name: dict[str, int],
                  write_lock: threading.Lock) -> list[Series]:
    """Truncate each series at its name's limit (min_ms by default); returns those left empty."""
    emptied = []
    for series in held:
        limit = by_name.get(metric_name(series.labels), min_ms) if by_name else min_ms
        with write_lock:  # per series, so scrapes wait for one copy at most
            series.truncate_before(limit)
        if len(series) == 0:
            emptied.append(series)
    return emptied


def _selectivity(m: Matcher) -> int:
    if m.type is MatchType.EQUAL:
        return 0 if m.name == METRIC_NAME else 1
    return 2 if m.type is MatchType.REGEX else 3


def _series_matches(labels: Labels, m: Matcher) -> bool:
    for k, v in labels:
        if k == m.name:
            return m.matches(v)
    return m.matches("")
