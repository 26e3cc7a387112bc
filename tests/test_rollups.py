"""Tests for hourly rollups: hour boundaries, accumulation, atomicity, pruning, restarts."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from exporter.config import load_config
from exporter.errors import UserError
from exporter.labels import make_labels
from exporter.rollups import HOUR_MS, fold, hour_of, prune, rolled_up, sample_rows
from exporter.rules.model import RuleGroup
from exporter.state import DB_NAME, RollupRow, StateStore

H = 1_800_000_000_000 // HOUR_MS * HOUR_MS  # an hour boundary (2027-01-15T08:00Z)
EVENTS = make_labels({"__name__": "slo:events:total", "slo": "checkout", "service": "shop"})
SERIES = 'slo:events:total{service="shop", slo="checkout"}'


def _open(folder: Path) -> StateStore:
    return StateStore.open(folder, clock=lambda: H / 1000)


def _save(store: StateStore, t_ms: int, value: float) -> bool:
    return store.save_many([("slo", "checkout", {"t": t_ms})], t_ms,
                           rollups=sample_rows([(EVENTS, value)], t_ms))


@pytest.mark.parametrize(("t_ms", "hour"), [
    (H, H - HOUR_MS),  # the hour's end belongs to it: (start, start + 1h]
    (H + 1, H),
    (H + HOUR_MS - 1, H),
    (H + HOUR_MS, H),
], ids=["at-boundary", "just-after", "just-before-next", "next-boundary"])
def test_hour_of_is_left_open(t_ms: int, hour: int) -> None:
    """A sample exactly at an hour boundary closes the hour before it, as the SLO buckets do."""
    assert hour_of(t_ms) == hour


def test_sample_rows_skip_non_finite_and_use_canonical_text() -> None:
    """NaN and infinite samples are no data; each row is keyed by Prometheus's series text."""
    other = make_labels({"__name__": "x", "a": "1"})
    rows = sample_rows([(EVENTS, 10.0), (other, math.nan), (other, math.inf)], H + 60_000)
    assert rows == [RollupRow("slo:events:total", SERIES, {"service": "shop", "slo": "checkout"},
                              H, 10.0, H + 60_000, 10.0, 10.0, 10.0, 1)]


def test_fold_keeps_last_min_max_sum_count() -> None:
    """Three samples in one hour fold into last 5, min 2, max 9, sum 16, count 3."""
    rows = [r for t, v in ((H + 3, 5.0), (H + 1, 2.0), (H + 2, 9.0))
            for r in sample_rows([(EVENTS, v)], t)]
    assert fold(rows) == [RollupRow("slo:events:total", SERIES, rows[0].labels, H, 5.0, H + 3,
                                    2.0, 9.0, 16.0, 3)]


def test_database_accumulates_each_hour_and_ignores_a_repeat(tmp_path: Path) -> None:
    """Samples at 15m, 30m, 60m fold into one hour, the next starts afresh, a repeat is ignored."""
    store = _open(tmp_path)
    for minutes, value in ((15, 100.0), (30, 130.0), (60, 190.0), (75, 220.0)):
        assert _save(store, H + minutes * 60_000, value)
    assert _save(store, H + 30 * 60_000, 999.0)  # an evaluation saved again: already counted
    rows = store.read_rollups(["slo:events:total"], H, H + 2 * HOUR_MS)
    # Hour (H, H+1h]: 100, 130, 190 -> last 190, min 100, max 190, sum 420, count 3.
    # Hour (H+1h, H+2h]: 220 alone.
    assert [(r.hour_ms, r.last, r.last_ms, r.min, r.max, r.sum, r.count) for r in rows] == [
        (H, 190.0, H + HOUR_MS, 100.0, 190.0, 420.0, 3),
        (H + HOUR_MS, 220.0, H + 75 * 60_000, 220.0, 220.0, 220.0, 1)]
    assert store.read_rollups(["other"], H, H + 2 * HOUR_MS) == []
    store.close()


@pytest.mark.parametrize("table", ["state", "rollup_hourly"], ids=["blob-fails", "rollup-fails"])
def test_rollups_and_blobs_land_in_one_transaction(tmp_path: Path, table: str) -> None:
    """When either write fails, neither the blob nor the rollup of that evaluation is saved."""
    store = _open(tmp_path)
    assert _save(store, H + 60_000, 1.0)
    # Another connection adds a trigger that refuses the next insert or update into one table.
    with sqlite3.connect(tmp_path / DB_NAME) as other:
        other.execute(f"CREATE TRIGGER refuse BEFORE UPDATE ON {table} "
                      "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    assert not _save(store, H + 120_000, 2.0)
    rows = store.read_rollups(["slo:events:total"], H, H + HOUR_MS)
    assert [(r.last, r.count) for r in rows] == [(1.0, 1)]
    assert store.load("slo", "checkout") == {"t": H + 60_000}
    assert store.write_failures == 1
    store.close()


def test_pruning_keeps_the_retention(tmp_path: Path) -> None:
    """With 2h of retention at H+3h30m, hours starting before H+1h go and the rest stay."""
    store = _open(tmp_path)
    for k in range(4):
        assert _save(store, H + k * HOUR_MS + 60_000, float(k))
    # Cut-off: hour_of(H + 3h30m - 2h) = hour_of(H + 1h30m) = H + 1h.
    assert prune(store, H + 3 * HOUR_MS + 30 * 60_000, 2 * HOUR_MS) == 1
    rows = store.read_rollups(["slo:events:total"], 0, H + 10 * HOUR_MS)
    assert [r.hour_ms for r in rows] == [H + HOUR_MS, H + 2 * HOUR_MS, H + 3 * HOUR_MS]
    store.close()


def test_an_hour_keeps_accumulating_across_a_restart(tmp_path: Path) -> None:
    """A restart in mid-hour continues the same row: counts and sums add up, last is the newest."""
    store = _open(tmp_path)
    assert _save(store, H + 10 * 60_000, 5.0)
    store.close()
    again = _open(tmp_path)
    assert _save(again, H + 40 * 60_000, 7.0)
    rows = again.read_rollups(["slo:events:total"], H, H + HOUR_MS)
    assert [(r.last, r.min, r.max, r.sum, r.count) for r in rows] == [(7.0, 5.0, 7.0, 12.0, 2)]
    again.close()


def test_unreadable_rows_are_skipped(tmp_path: Path) -> None:
    """A row with broken label JSON is left out of a read, which never raises."""
    store = _open(tmp_path)
    assert _save(store, H + 60_000, 1.0)
    with sqlite3.connect(tmp_path / DB_NAME) as other:
        other.execute("INSERT INTO rollup_hourly VALUES ('slo:events:total', 'broken', ?, "
                      "'{not json', 1, ?, 1, 1, 1, 1)", (H, H + 1))
    rows = store.read_rollups(["slo:events:total"], H, H + HOUR_MS)
    assert [r.series for r in rows] == [SERIES]
    store.close()


def test_read_only_open_sees_rollups_of_a_running_store(tmp_path: Path) -> None:
    """The report's read-only connection reads what the sidecar wrote while the sidecar holds it."""
    store = _open(tmp_path)
    assert _save(store, H + 60_000, 3.0)
    reader = StateStore.open_read_only(tmp_path / DB_NAME)
    assert reader is not None
    assert [r.last for r in reader.read_rollups(["slo:events:total"], H, H + HOUR_MS)] == [3.0]
    reader.close()
    store.close()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert StateStore.open_read_only(tmp_path / "junk.db") is None


def test_a_version_1_database_gains_the_rollup_table(tmp_path: Path) -> None:
    """A state database written before rollups existed is migrated, its blobs kept."""
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.executescript("""
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
                                         applied_at_ms INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1, 'opaque state blobs', 0);
            CREATE TABLE state (kind TEXT NOT NULL, key TEXT NOT NULL,
                                updated_at_ms INTEGER NOT NULL, json TEXT NOT NULL,
                                PRIMARY KEY (kind, key)) WITHOUT ROWID;
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            INSERT INTO state VALUES ('slo', 'old', 1, '{"kept": true}');
        """)
    store = _open(tmp_path)
    assert store.status == "opened" and store.load("slo", "old") == {"kept": True}
    assert _save(store, H + 60_000, 1.0)
    assert len(store.read_rollups(["slo:events:total"], H, H + HOUR_MS)) == 1
    store.close()


@pytest.mark.parametrize(("name", "expected"), [
    ("value:metrics", True), ("journey:purchase", True), ("improvement:payment-success", True),
    ("slo:checkout-availability", False),  # its SLO series are rolled up from the SLO evaluator
    ("shop", False),
], ids=["value", "journey", "improvement", "slo-alerts", "own-group"])
def test_which_groups_are_rolled_up(name: str, expected: bool) -> None:
    """Generated business groups are rolled up; a file's own technology groups are not."""
    assert rolled_up(RuleGroup(name=name, file="f.yaml", rules=())) is expected


@pytest.mark.parametrize(("line", "expected"), [
    ("", 395 * 86_400_000),  # default: 13 months
    ("rollup_retention: 30d\n", 30 * 86_400_000),
], ids=["default", "30d"])
def test_rollup_retention_config(tmp_path: Path, line: str, expected: int) -> None:
    """`rollup_retention` is a top-level duration, 395d unless set."""
    path = tmp_path / "config.yaml"
    path.write_text(line + "targets: [{name: shop, url: 'http://127.0.0.1:9/metrics'}]\n")
    assert int(load_config(path).rollup_retention) == expected


def test_rollup_retention_must_be_positive(tmp_path: Path) -> None:
    """A zero retention is an error with its position."""
    path = tmp_path / "config.yaml"
    path.write_text("rollup_retention: 0s\ntargets: [{name: shop, url: 'http://127.0.0.1:9/m'}]\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert info.value.lines() == [f"{path}:1:19: rollup_retention: must be above 0"]
