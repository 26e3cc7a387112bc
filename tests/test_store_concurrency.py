"""Tests that appends, truncation and reads of one series never tear its two arrays apart."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from exporter.labels import make_labels
from exporter.store import SeriesStore

ROUNDS = 300


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, to provoke interleavings."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_truncation_neither_loses_appends_nor_pairs_wrong_values(busy_switching: None) -> None:
    """Every value equals its timestamp, whatever a reader catches, and no sample is lost."""
    store = SeriesStore()
    labels = make_labels({"__name__": "x"})
    series = store.get_or_create(labels)
    done = threading.Event()
    torn: list[str] = []

    def append() -> None:
        for t in range(1, ROUNDS * 50 + 1):
            store.append(labels, t, float(t))
        done.set()

    def truncate() -> None:
        while not done.is_set():
            last = series.last()
            store.truncate((last[0] - 200) if last else 0)

    def read() -> None:
        while not done.is_set():
            ts, vs = series.arrays()
            n = min(len(ts), len(vs))
            bad = [i for i in range(max(0, n - 50), n) if ts[i] != vs[i]]
            if bad:
                torn.append(f"ts[{bad[0]}]={ts[bad[0]]} vs[{bad[0]}]={vs[bad[0]]}")
                return

    threads = [threading.Thread(target=f) for f in (append, truncate, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not torn, torn[0]
    ts, vs = series.arrays()
    # The newest samples are all there, in order, each with its own value.
    assert list(ts[-100:]) == list(range(ROUNDS * 50 - 99, ROUNDS * 50 + 1))
    assert list(vs[-100:]) == [float(t) for t in ts[-100:]]
    assert len(ts) == len(vs)
