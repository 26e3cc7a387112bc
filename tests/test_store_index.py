"""The store's indexed selection (posting arrays, fast paths) agrees with a plain scan."""

from __future__ import annotations

import random

import pytest

from exporter.labels import Labels, Matcher, make_labels
from exporter.store import SeriesStore

NAMES = ("up", "http_requests_total", "queue_depth")
VALUES = ("a", "b", "c", "")


def _plain_select(series: list[tuple[int, Labels]], matchers: list[Matcher]) -> list[Labels]:
    """The definition: every matcher holds on the label's value, "" when absent."""
    return [labels for _, labels in sorted(series)
            if all(m.matches(dict(labels).get(m.name, "")) for m in matchers)]


def _random_store(rng: random.Random) -> tuple[SeriesStore, list[tuple[int, Labels]]]:
    store = SeriesStore()
    created: list[tuple[int, Labels]] = []
    for i in range(120):
        kv = {"__name__": rng.choice(NAMES)}
        for label in ("job", "code"):
            value = rng.choice(VALUES)
            if value:
                kv[label] = value
        labels = make_labels({**kv, "i": str(i)})
        # Half the series stop early, so truncation removes them (and their postings).
        store.append(labels, 0, 1.0)
        if rng.random() < 0.5:
            store.append(labels, 10_000, 2.0)
        created.append((i, labels))
    return store, created


MATCHER_SETS = [
    [("__name__", "=", "up")],
    [("__name__", "=", "up"), ("job", "!=", "a")],
    [("__name__", "=~", "up|queue_depth"), ("code", "=", "b")],
    [("job", "=", "")],
    [("job", "=~", "a|"), ("code", "!~", "c")],
    [("__name__", "=", "http_requests_total"), ("job", "=", "b"), ("code", "=~", ".+")],
    [("__name__", "=", "missing")],
]


@pytest.mark.parametrize("seed", [1, 2, 3], ids=["seed-1", "seed-2", "seed-3"])
@pytest.mark.parametrize("spec", MATCHER_SETS, ids=[
    "name", "name-and-not-equal", "regex-name-and-equal", "absent-label", "regex-with-empty",
    "three-matchers", "no-such-name"])
def test_select_matches_a_plain_scan_before_and_after_truncation(
        seed: int, spec: list[tuple[str, str, str]]) -> None:
    """Selection equals the plain definition, in creation order, also once series are gone."""
    store, created = _random_store(random.Random(seed))
    matchers = [Matcher.of(*m) for m in spec]
    assert [s.labels for s in store.select(matchers)] == _plain_select(created, matchers)
    # Samples at t=0 go; series that only had one are removed (with their index entries).
    removed = store.truncate(5_000)
    alive = [(i, labels) for i, labels in created if store.get(labels) is not None]
    assert removed == len(created) - len(alive)
    assert [s.labels for s in store.select(matchers)] == _plain_select(alive, matchers)


def test_a_removed_series_comes_back_as_a_new_one() -> None:
    """A label set deleted and written again is selectable once (no stale posting survives)."""
    store = SeriesStore()
    labels = make_labels({"__name__": "up", "job": "a"})
    store.append(labels, 0, 1.0)
    store.truncate(1)
    assert store.select([Matcher.of("__name__", "=", "up")]) == []
    store.append(labels, 2, 1.0)
    assert [s.labels for s in store.select([Matcher.of("job", "=", "a")])] == [labels]
