"""Tests for the series store: ordering rules, selection through the index, staleness, retention."""

from __future__ import annotations

import math
import threading
from array import array

import pytest

from exporter.labels import STALE_NAN, Matcher, is_stale, make_labels
from exporter.store import AppendResult, Series, SeriesStore, _copy_with_room


def _labels(name: str, **kv: str) -> tuple[tuple[str, str], ...]:
    return make_labels({"__name__": name, **kv})


@pytest.fixture
def store() -> SeriesStore:
    s = SeriesStore()
    s.append(_labels("http_requests_total", job="api", code="200"), 0, 1.0)
    s.append(_labels("http_requests_total", job="api", code="500"), 0, 2.0)
    s.append(_labels("http_requests_total", job="web", code="200"), 0, 3.0)
    s.append(_labels("up", job="api"), 0, 1.0)
    return s


def _names(series: list) -> list[str]:  # type: ignore[type-arg]
    return [",".join(f"{k}={v}" for k, v in s.labels if k != "__name__") for s in series]


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        pytest.param([("__name__", "=", "up")], ["job=api"], id="name-equal"),
        pytest.param(
            [("__name__", "=", "http_requests_total"), ("code", "!=", "200")],
            ["code=500,job=api"],
            id="not-equal",
        ),
        pytest.param(
            [("__name__", "=", "http_requests_total"), ("job", "=~", "a.*")],
            ["code=200,job=api", "code=500,job=api"],
            id="regex-anchored",
        ),
        pytest.param([("job", "=~", "p")], [], id="regex-is-fully-anchored"),
        pytest.param(
            [("__name__", "=~", ".+"), ("code", "=", "")],
            ["job=api"],
            id="empty-equal-selects-missing-label",
        ),
        pytest.param(
            [("__name__", "=", "http_requests_total"), ("code", "!~", "2..")],
            ["code=500,job=api"],
            id="not-regex",
        ),
        pytest.param([("nothere", "=", "x")], [], id="unknown-label"),
    ],
)
def test_select(
    store: SeriesStore, matchers: list[tuple[str, str, str]], expected: list[str]
) -> None:
    """Selection returns exactly the series every matcher accepts, in creation order."""
    got = store.select([Matcher.of(n, op, v) for n, op, v in matchers])
    assert _names(got) == expected


def test_out_of_order_and_duplicates_are_refused() -> None:
    """Appends follow Prometheus: older samples and conflicting duplicates are refused."""
    s = SeriesStore()
    lbl = _labels("x")
    assert s.append(lbl, 10, 1.0) == AppendResult.OK
    assert s.append(lbl, 5, 1.0) == AppendResult.OUT_OF_ORDER
    assert s.append(lbl, 10, 1.0) == AppendResult.OK
    assert s.append(lbl, 10, 2.0) == AppendResult.DUPLICATE
    assert list(s.get(lbl).vs) == [1.0]  # type: ignore[union-attr]


def test_stale_marker_ends_lookback() -> None:
    """A stale marker as newest sample hides the series; the bit pattern survives storage."""
    s = SeriesStore()
    lbl = _labels("x")
    s.append(lbl, 0, 1.0)
    s.append(lbl, 15_000, STALE_NAN)
    series = s.get(lbl)
    assert series is not None
    assert series.value_at(10_000) == (0, 1.0)
    assert series.value_at(20_000) is None
    assert is_stale(series.vs[1])
    assert not is_stale(math.nan)


def test_lookback_is_left_open() -> None:
    """A sample exactly lookback old is outside the window, as in Prometheus."""
    s = SeriesStore(lookback_ms=300_000)
    lbl = _labels("x")
    s.append(lbl, 0, 1.0)
    series = s.get(lbl)
    assert series is not None
    assert series.value_at(299_999) == (0, 1.0)
    assert series.value_at(300_000) is None


def test_window_is_left_open() -> None:
    """Range windows include the end and exclude the start."""
    s = SeriesStore()
    lbl = _labels("x")
    for t in range(0, 100_000, 10_000):
        s.append(lbl, t, float(t))
    series = s.get(lbl)
    assert series is not None
    ts, _vs, lo, hi = series.window(20_000, 50_000)
    assert list(ts[lo:hi]) == [30_000, 40_000, 50_000]


def test_truncate_drops_old_samples_and_empty_series(store: SeriesStore) -> None:
    """Retention removes old samples, then series with none left, and their index entries."""
    lbl = _labels("up", job="api")
    store.append(lbl, 60_000, 1.0)
    removed = store.truncate(30_000)
    assert removed == 3
    assert len(store) == 1
    assert store.label_values("code") == []
    assert store.select([Matcher.of("__name__", "=", "http_requests_total")]) == []
    assert list(store.get(lbl).ts) == [60_000]  # type: ignore[union-attr]


def test_label_names_and_values(store: SeriesStore) -> None:
    """The index answers label-name and label-value listings."""
    assert store.label_names() == ["__name__", "code", "job"]
    assert store.metric_names() == ["http_requests_total", "up"]
    assert store.label_values("job") == ["api", "web"]


def test_select_any_unions_matcher_groups_once_each(store: SeriesStore) -> None:
    """`a or b` selectors return each matching series once, in creation order."""
    groups = [
        [Matcher.of("__name__", "=", "http_requests_total"), Matcher.of("job", "=", "web")],
        [Matcher.of("job", "=", "web")],
        [Matcher.of("__name__", "=", "up")],
    ]
    assert _names(store.select_any(groups)) == ["code=200,job=web", "job=api"]


def test_truncate_keeps_each_names_own_limit_and_old_arrays_intact() -> None:
    """A name with its own retention keeps older samples; a reader's old arrays stay whole."""
    s = SeriesStore()
    short, long_ = _labels("short"), _labels("long")
    for t in range(0, 50_000, 10_000):
        s.append(short, t, float(t))
        s.append(long_, t, float(t))
    held = s.get(short)
    assert held is not None
    old_ts, old_vs = held.ts, held.vs
    # Default limit 30 s keeps 30 s and 40 s of `short`; `long` has its own limit of 10 s.
    assert s.truncate(30_000, {"long": 10_000}) == 0
    assert list(held.ts) == [30_000, 40_000]
    assert list(s.get(long_).ts) == [10_000, 20_000, 30_000, 40_000]  # type: ignore[union-attr]
    # A reader that took the arrays before truncation still sees all five samples, paired.
    assert list(old_ts) == [0, 10_000, 20_000, 30_000, 40_000]
    assert list(old_vs) == [0.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0]


def test_truncation_copies_on_one_thread_whoever_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Truncations called from different threads all copy on the same one (one malloc arena)."""
    copiers: set[int] = set()
    plain = Series.truncate_before

    def recording(series: Series, min_ms: int) -> None:
        copiers.add(threading.get_ident())
        plain(series, min_ms)

    monkeypatch.setattr(Series, "truncate_before", recording)
    s = SeriesStore()
    s.append(_labels("x"), 0, 1.0)
    callers = [threading.Thread(target=s.truncate, args=(t,)) for t in (-2, -1)]
    for caller in callers:
        caller.start()
        caller.join()
    s.truncate(0)
    # Three calls from three threads (two workers and this one), one copying thread.
    assert len(copiers) == 1
    assert threading.get_ident() not in copiers


@pytest.mark.parametrize(
    ("length", "start", "room"),
    [
        pytest.param(86, 12, 17, id="steady-minute-of-5s-scrapes"),
        pytest.param(5, 4, 7, id="room-larger-than-kept"),
        pytest.param(300, 1, 3, id="one-dropped"),
        pytest.param(400, 200, 252, id="room-past-the-shrink-step"),
    ],
)
def test_truncation_copy_has_room_for_the_next_samples(length: int, start: int, room: int) -> None:
    """The copy holds exactly a[start:], and `room` appends fit in its buffer without moving it."""
    for typecode in ("q", "d"):
        plain = array(typecode, range(length))
        kept = _copy_with_room(plain, start, room)
        assert kept == plain[start:]
        address = kept.buffer_info()[0]
        for _ in range(room):
            kept.append(kept[-1])
        assert kept.buffer_info()[0] == address
