"""Tests for the state database: round trips, one transaction per save, and every bad start."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from exporter import state as state_module
from exporter.state import DB_NAME, SCHEMA_VERSION, StateStore, rule_group_key

FIXED_CLOCK = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _open(folder: Path, **kwargs: Any) -> StateStore:
    return StateStore.open(folder, clock=lambda: FIXED_CLOCK, **kwargs)


def _fill(folder: Path, rows: int = 200) -> None:
    store = _open(folder)
    blob = {"buckets": list(range(200)), "text": "x" * 500}
    assert store.save_many([("slo", f"slo-{i}", blob) for i in range(rows)], 1000)
    store.close()


def _aside(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


def test_round_trip_and_downtime_across_reopen(tmp_path: Path) -> None:
    """Blobs saved in one run load in the next, with the previous run's last save as downtime."""
    store = _open(tmp_path / "a" / "b")  # a missing state_dir is created, parents too
    assert store.status == "created" and store.persistent
    assert store.previous_saved_ms is None and store.downtime_ms(5000) == 0
    key = rule_group_key("/rules/shop.yaml", "shop")
    assert store.save_many([("rule_group", key, {"alerts": [1, 2]}),
                            ("slo", "checkout", {"b": [[0, 1.5, 2.0]]})], 60_000)
    assert store.save_many([("slo", "checkout", {"b": []})], 75_000)
    assert store.last_saved_ms() == 75_000
    store.close()

    again = _open(tmp_path / "a" / "b")
    assert again.status == "opened"
    assert again.previous_saved_ms == 75_000
    assert again.downtime_ms(135_000) == 60_000
    assert again.load("rule_group", key) == {"alerts": [1, 2]}
    entry = again.load_entry("slo", "checkout")
    assert entry is not None and entry.updated_at_ms == 75_000 and entry.data == {"b": []}
    assert again.load("slo", "missing") is None
    assert list(again.load_kind("slo")) == ["checkout"]
    again.close()


def test_database_is_wal_with_schema_version(tmp_path: Path) -> None:
    """The file is in WAL mode and records the schema version it was migrated to."""
    _open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] \
            == SCHEMA_VERSION
    finally:
        conn.close()


def test_delete_and_save_are_one_transaction(tmp_path: Path) -> None:
    """A save with deletes replaces and removes keys together."""
    store = _open(tmp_path)
    store.save_many([("slo", "a", {"v": 1}), ("slo", "b", {"v": 2})], 1)
    store.save_many([("slo", "a", {"v": 3})], 2, delete=[("slo", "b")])
    assert {k: e.data for k, e in store.load_kind("slo").items()} == {"a": {"v": 3}}
    store.close()


def test_unserialisable_blob_is_counted_and_the_rest_saved(tmp_path: Path) -> None:
    """A blob that is not JSON (or holds NaN) is left out and counted; the others are saved."""
    failures: list[int] = []
    store = _open(tmp_path, on_write_failure=lambda: failures.append(1))
    ok = store.save_many([("slo", "bad", {"v": object()}), ("slo", "nan", {"v": float("nan")}),
                          ("slo", "good", {"v": 1})], 10)
    assert not ok and len(failures) == 2 and store.write_failures == 2
    assert store.load("slo", "good") == {"v": 1}
    assert store.load("slo", "bad") is None and store.load("slo", "nan") is None
    store.close()


def test_write_error_is_logged_counted_and_rolled_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A save that hits a held write lock fails whole, is counted and logged, and later recovers."""
    monkeypatch.setattr(state_module, "WRITE_BUSY_TIMEOUT_MS", 100)
    failures: list[int] = []
    store = _open(tmp_path, on_write_failure=lambda: failures.append(1))
    store.save_many([("slo", "a", {"v": 1})], 1)
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    with caplog.at_level(logging.INFO, logger="value_exporter.state"):
        assert not store.save_many([("slo", "a", {"v": 2}), ("slo", "b", {"v": 2})], 2)
        assert not store.save_many([("slo", "a", {"v": 3})], 3)  # same episode: not re-logged
        other.execute("ROLLBACK")
        other.close()
        assert store.save_many([("slo", "a", {"v": 4})], 4)
    assert len(failures) == 2
    logged = [r.getMessage() for r in caplog.records]
    assert sum("event=state_write_failed" in m for m in logged) == 1
    assert any("event=state_write_recovered" in m for m in logged)
    assert store.load("slo", "a") == {"v": 4} and store.load("slo", "b") is None
    assert store.last_saved_ms() == 4
    store.close()


def test_io_error_during_save_never_raises(tmp_path: Path) -> None:
    """An I/O error from SQLite (a full disk, say) makes save_many return False, not raise."""

    class Broken:
        def execute(self, sql: str, *args: Any) -> Any:
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError("database or disk is full")
            return None

        def close(self) -> None:
            pass

    store = _open(tmp_path)
    real = store._conn
    store._conn = Broken()  # type: ignore[assignment]
    assert not store.save_many([("slo", "a", {})], 1)
    assert store.write_failures == 1
    store._conn = real
    store.close()


def test_many_threads_save_concurrently(tmp_path: Path) -> None:
    """Evaluations on a thread pool can save at the same time; every save lands."""
    store = _open(tmp_path)

    def work(n: int) -> None:
        for i in range(50):
            assert store.save_many([("rule_group", f"g{n}", {"i": i})], n * 1000 + i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {k: e.data["i"] for k, e in store.load_kind("rule_group").items()} == \
        {f"g{n}": 49 for n in range(8)}
    assert store.last_saved_ms() == 7049
    store.close()


def test_deleted_database_starts_fresh(tmp_path: Path) -> None:
    """A state database deleted between runs (WAL and all) is created again, empty."""
    _fill(tmp_path)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    store = _open(tmp_path)
    assert store.status == "created" and store.load_kind("slo") == {}
    store.close()


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _scribble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(4096 + 100, len(data) - 4096, 4096):  # the middle of every page
        data[offset:offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _half_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:50])


def _foreign(path: Path) -> None:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", [_garbage, _truncate, _scribble, _half_header, _foreign],
                         ids=["not-sqlite", "truncated", "corrupted-pages", "cut-header",
                              "foreign-database"])
def test_bad_database_is_moved_aside_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Any,
) -> None:
    """A damaged or foreign file is moved aside with a timestamp, logged once, and rebuilt."""
    _fill(tmp_path)
    damage(tmp_path / DB_NAME)
    before = (tmp_path / DB_NAME).read_bytes()
    with caplog.at_level(logging.INFO, logger="value_exporter.state"):
        store = _open(tmp_path)
    assert store.status == "rebuilt" and store.persistent
    assert store.load_kind("slo") == {}
    assert store.save_many([("slo", "new", {"v": 1})], 5)
    store.close()
    aside = _aside(tmp_path)
    assert [p.name for p in aside if not p.name.endswith("-wal")] == \
        ["state.db.corrupt-20231114T221320Z"]
    assert aside[0].read_bytes() == before  # kept for a post-mortem, byte for byte
    rebuilt = [r.getMessage() for r in caplog.records if "event=state_rebuilt" in r.getMessage()]
    assert len(rebuilt) == 1 and "moved_to=" in rebuilt[0] and "reason=" in rebuilt[0]
    assert _open(tmp_path).load("slo", "new") == {"v": 1}


def test_second_bad_start_in_the_same_second_keeps_both_files(tmp_path: Path) -> None:
    """Two rebuilds with the same timestamp never overwrite the first bad file."""
    for _ in range(2):
        _garbage(tmp_path / DB_NAME)
        _open(tmp_path).close()
    assert len(_aside(tmp_path)) == 2


def test_locked_by_another_daemon_runs_memory_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """While another process owns the state_dir, a second store waits briefly, then keeps
    state in memory only, with a loud error, and never writes the owner's file."""
    owner = _open(tmp_path)
    owner.save_many([("slo", "a", {"owner": True})], 1)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="value_exporter.state"):
        second = _open(tmp_path, lock_timeout_s=0.3)
    assert time.monotonic() - started >= 0.3
    assert second.status == "memory" and not second.persistent
    assert second.load("slo", "a") is None
    assert second.save_many([("slo", "a", {"owner": False})], 2)  # works, in memory
    errors = [r for r in caplog.records if "event=state_memory_only" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "another process" in errors[0].getMessage()
    second.close()
    assert owner.load("slo", "a") == {"owner": True}
    owner.close()
    third = _open(tmp_path, lock_timeout_s=0.3)  # the lock is free again
    assert third.persistent and third.load("slo", "a") == {"owner": True}
    third.close()


def test_sqlite_write_lock_at_start_runs_memory_only(tmp_path: Path) -> None:
    """A SQLite write lock held by some other program at start gives memory-only mode."""
    _fill(tmp_path, rows=1)
    other = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        store = _open(tmp_path, lock_timeout_s=0.2)
        assert store.status == "memory"
        store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _aside(tmp_path) == []  # a locked file is not a corrupt one


def test_newer_schema_is_left_untouched(tmp_path: Path) -> None:
    """A database from a newer build (a downgrade) is not migrated, moved or written."""
    _fill(tmp_path, rows=1)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future', 0)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    store = _open(tmp_path)
    assert store.status == "memory"
    store.close()
    assert _aside(tmp_path) == []


def test_unusable_state_dir_runs_memory_only(tmp_path: Path) -> None:
    """A state_dir that cannot be created (a file is in the way) gives memory-only mode."""
    (tmp_path / "file").write_text("x")
    store = _open(tmp_path / "file" / "state")
    assert store.status == "memory"
    assert store.save_many([("slo", "a", {"v": 1})], 1) and store.load("slo", "a") == {"v": 1}
    store.close()


def test_unreadable_blob_loads_as_none(tmp_path: Path) -> None:
    """A row whose JSON was damaged loads as absent instead of failing the start."""
    store = _open(tmp_path)
    store.save_many([("slo", "a", {"v": 1}), ("slo", "b", {"v": 2})], 1)
    store._conn.execute("UPDATE state SET json = '{broken' WHERE key = 'a'")
    assert store.load("slo", "a") is None
    assert list(store.load_kind("slo")) == ["b"]
    store.close()


_WRITER = """
import sys
from exporter.state import StateStore
store = StateStore.open(sys.argv[1])
t = 0
while True:
    t += 1
    store.save_many([("slo", "s%d" % (t % 5), {"t": t, "pad": "x" * 2000})], t)
    print(t, flush=True)
"""


def test_sigkill_mid_write_loses_nothing_committed(tmp_path: Path) -> None:
    """A writer killed with SIGKILL leaves an intact database holding every reported commit."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        last = 0
        for line in proc.stdout:
            last = int(line)
            if last >= 300:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    store = _open(tmp_path)
    assert store.status == "opened"
    saved = store.last_saved_ms()
    assert saved is not None and saved >= last
    entry = store.load_entry("slo", f"s{saved % 5}")
    assert entry is not None and entry.data["t"] == saved
    store.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
