"""State database (SQLite, WAL, under state_dir): the evaluators' state survives a restart.

The store keeps opaque JSON blobs keyed by (kind, key), so it knows nothing about what the SLO
engine, the rule groups or the notifier put in them. One `save_many` call is one transaction:
an evaluation's state lands whole or not at all.

Durability: `journal_mode=WAL` with `synchronous=NORMAL`. In WAL mode a commit is a write() to
the WAL file; NORMAL skips the fsync per commit, so a killed process (SIGKILL, OOM) loses
nothing that was committed (the data is in the OS page cache), and only a power loss or kernel
crash can lose the last few commits, never corrupt the file. FULL would fsync every evaluation
of every group, which costs more than the few seconds of state it protects; the data gap
accounting covers that loss like any other downtime.

Robustness at start (each case logs one `event=state_*` line and the daemon keeps serving):
- state_dir missing: created; not creatable or not writable: memory-only mode (loud error);
- a file that is not SQLite, truncated or corrupted, or fails `PRAGMA integrity_check`, or is
  another program's database: moved aside to `state.db.corrupt-<UTC timestamp>` (with its WAL),
  and a fresh database created;
- another process holds the database (the `state.db.lock` file lock, or a SQLite write lock)
  for longer than `lock_timeout_s`: memory-only mode with a loud error, never touching the other
  process's file (two daemons writing one state would corrupt each other's budgets); the
  `value_exporter_state_persistent` gauge is 0 so an alert can catch it;
- a schema newer than this build knows (a downgrade): memory-only, the file left as it is.
A write error while running (disk full, I/O error, a lock held too long) is logged, counted
through `on_write_failure`, and never stops evaluation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from exporter import state_file, state_rollups
from exporter.state_file import MIGRATIONS as MIGRATIONS  # re-exported: the schema's history
from exporter.state_file import SCHEMA_VERSION as SCHEMA_VERSION
from exporter.state_rollups import RollupRow as RollupRow  # re-exported: callers import it here

log = logging.getLogger("value_exporter.state")

DB_NAME = "state.db"
LOCK_NAME = "state.db.lock"
DEFAULT_LOCK_TIMEOUT_S = 10.0  # covers a rolling restart whose old process is still stopping
WRITE_BUSY_TIMEOUT_MS = 2000  # how long a save waits for a reader/writer before it fails
FAILURE_LOG_EVERY_S = 60.0

# Kinds in use (a kind names what wrote the blob; keys are unique within a kind).
KIND_RULE_GROUP = "rule_group"  # GroupEvaluator.to_state(), key: rule_group_key(file, name)
KIND_SLO = "slo"  # SLOEvaluator.to_state(), key: the SLO name
# Schema, migrations and opening checks: exporter/state_file.py; rollups: state_rollups.py.


@dataclass(frozen=True, slots=True)
class StoredState:
    """One blob as stored: when it was last saved (evaluation time) and its data."""

    updated_at_ms: int
    data: dict[str, Any]


def rule_group_key(file: str, name: str) -> str:
    """The key of a rule group's state: its file and name (as Prometheus identifies groups)."""
    return json.dumps([file, name])


class StateStore:
    """The state database; thread-safe (one connection behind a lock: writes serialize anyway)."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path | None, lock_file: TextIO | None,
                 status: str, previous_saved_ms: int | None,
                 on_write_failure: Callable[[], None] | None) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._lock_file = lock_file
        self.path = path
        # "opened", "created", "rebuilt", or "memory" (nothing persists in this run).
        self.status = status
        self.previous_saved_ms = previous_saved_ms
        self._last_saved_ms = previous_saved_ms
        self._on_write_failure = on_write_failure
        self.write_failures = 0
        self._failing_since: float | None = None
        self._suppressed = 0
        self._last_failure_log = 0.0
        self._closed = False
        self._inode = state_file.inode(path) if status != "read-only" else None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str], *,
             lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
             on_write_failure: Callable[[], None] | None = None,
             clock: Callable[[], float] = time.time) -> StateStore:
        """Open (or create, or rebuild) `state_dir/state.db`; never raises for a bad file."""
        folder = Path(state_dir)
        path = folder / DB_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock_file = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            return cls._memory(f"state_dir not usable: {exc.strerror or exc}", on_write_failure,
                               folder)
        if not state_file.acquire(lock_file, lock_timeout_s):
            lock_file.close()
            return cls._memory(f"{folder / LOCK_NAME} is held by another process for "
                               f"{lock_timeout_s:g}s (another value-exporter on this state_dir?)",
                               on_write_failure, folder)
        existed = path.exists() and path.stat().st_size > 0
        try:
            try:
                conn, previous = state_file.open_checked(path, lock_timeout_s, clock,
                                                      WRITE_BUSY_TIMEOUT_MS)
                status = "opened" if existed else "created"
            except state_file.Unusable as exc:
                if not exc.corrupt:
                    raise
                moved = state_file.move_aside(path, clock)
                conn, previous = state_file.open_checked(path, lock_timeout_s, clock,
                                                      WRITE_BUSY_TIMEOUT_MS)
                status = "rebuilt"
                log.error("event=state_rebuilt path=%s reason=%r moved_to=%s", path, exc.reason,
                          moved)
        except (state_file.Unusable, sqlite3.Error, OSError) as exc:
            lock_file.close()
            reason = (exc.reason if isinstance(exc, state_file.Unusable)
                      else f"{type(exc).__name__}: {exc}")
            return cls._memory(reason, on_write_failure, folder)
        log.info("event=state_opened path=%s status=%s schema_version=%d last_saved_ms=%s",
                 path, status, SCHEMA_VERSION, previous)
        return cls(conn, path=path, lock_file=lock_file, status=status,
                   previous_saved_ms=previous, on_write_failure=on_write_failure)

    @classmethod
    def open_read_only(cls, path: str | os.PathLike[str]) -> StateStore | None:
        """Open a state database for reading only (the report), beside a running sidecar.

        No lock and no migration: WAL lets a reader in while the sidecar writes. None when the
        file is not a value-exporter database this build can read.
        """
        try:
            conn = sqlite3.connect(f"file:{Path(path).absolute()}?mode=ro", uri=True,
                                   timeout=WRITE_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return None
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error:
            conn.close()
            return None
        if not {"schema_version", state_rollups.TABLE} <= tables:
            conn.close()
            return None
        return cls(conn, path=Path(path), lock_file=None, status="read-only",
                   previous_saved_ms=None, on_write_failure=None)

    @classmethod
    def memory(cls, on_write_failure: Callable[[], None] | None = None) -> StateStore:
        """A store that keeps nothing across restarts (tests, or when the file is unusable)."""
        conn = state_file.connect(":memory:", 0)
        state_file.migrate(conn, time.time)
        return cls(conn, path=None, lock_file=None, status="memory", previous_saved_ms=None,
                   on_write_failure=on_write_failure)

    @classmethod
    def _memory(cls, reason: str, on_write_failure: Callable[[], None] | None,
                folder: Path) -> StateStore:
        log.error("event=state_memory_only state_dir=%s reason=%r consequence=%r", folder, reason,
                  "alert state, SLO budgets and baselines will NOT survive a restart")
        return cls.memory(on_write_failure)

    @property
    def persistent(self) -> bool:
        """Whether saves reach a file (False in memory-only mode)."""
        return self.path is not None

    # -- reading -----------------------------------------------------------------------

    def load(self, kind: str, key: str) -> dict[str, Any] | None:
        """The saved blob for (kind, key), or None (also when the stored JSON is unreadable)."""
        entry = self.load_entry(kind, key)
        return entry.data if entry is not None else None

    def load_entry(self, kind: str, key: str) -> StoredState | None:
        """The saved blob with the evaluation time it was saved at, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT updated_at_ms, json FROM state WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return _decode(kind, key, row[0], row[1]) if row is not None else None

    def load_kind(self, kind: str) -> dict[str, StoredState]:
        """Every blob of one kind, by key (unreadable ones left out)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, updated_at_ms, json FROM state WHERE kind = ? ORDER BY key", (kind,)
            ).fetchall()
        out: dict[str, StoredState] = {}
        for key, t_ms, text in rows:
            entry = _decode(kind, key, t_ms, text)
            if entry is not None:
                out[key] = entry
        return out

    def read_rollups(self, names: Iterable[str], start_ms: int, end_ms: int) -> list[RollupRow]:
        """Rollup rows of these metric names whose hour starts in [start_ms, end_ms).

        Unreadable rows (bad label JSON, a non-number) are left out and logged, never raised.
        """
        with self._lock:
            if self._closed:
                return []
            return state_rollups.read(self._conn, names, start_ms, end_ms)

    def prune_rollups(self, before_ms: int) -> int:
        """Delete rollup hours that start before `before_ms`; returns how many rows went."""
        with self._lock:
            if self._closed:
                return 0
            try:
                return state_rollups.prune(self._conn, before_ms)
            except sqlite3.Error as exc:
                self._failed(f"prune rollups: {type(exc).__name__}: {exc}")
                return 0

    def last_saved_ms(self) -> int | None:
        """The evaluation time of the latest successful save (this run or the previous one)."""
        return self._last_saved_ms

    def downtime_ms(self, now_ms: int) -> int:
        """How long the sidecar was away: from the previous run's last save to `now_ms`.

        0 on a first start (nothing saved) and in memory-only mode; the SLO engine counts this
        as a data gap, never as good time.
        """
        if self.previous_saved_ms is None:
            return 0
        return max(0, now_ms - self.previous_saved_ms)

    # -- writing -----------------------------------------------------------------------

    def save_many(self, items: Iterable[tuple[str, str, Mapping[str, Any]]], t_ms: int,
                  *, delete: Iterable[tuple[str, str]] = (),
                  rollups: Iterable[RollupRow] = ()) -> bool:
        """Upsert blobs (and delete keys) in one transaction at evaluation time `t_ms`.

        `rollups` (samples folded into their hour) land in the same transaction, so a kill
        never leaves an evaluation's state saved without its rollups, or the other way round.

        Returns False (and counts a failure) when nothing was written; a blob that is not
        JSON-serialisable is left out and counted, the others are still written.
        """
        rows: list[tuple[str, str, int, str]] = []
        bad = 0
        for kind, key, blob in items:
            try:
                rows.append((kind, key, t_ms, json.dumps(blob, separators=(",", ":"),
                                                        allow_nan=False)))
            except (TypeError, ValueError) as exc:
                bad += 1
                self._failed(f"kind={kind} key={key!r} not JSON: {exc}")
        gone = list(delete)
        hours = state_rollups.encode(rollups)
        with self._lock:
            if self._closed:
                return False
            self._recreate_if_deleted()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(
                        "INSERT INTO state (kind, key, updated_at_ms, json) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (kind, key) DO UPDATE SET "
                        "updated_at_ms = excluded.updated_at_ms, json = excluded.json", rows)
                    self._conn.executemany("DELETE FROM state WHERE kind = ? AND key = ?", gone)
                    state_rollups.upsert(self._conn, hours)
                    self._conn.execute(
                        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) "
                        "DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
                        (state_file.META_LAST_SAVED, t_ms))
                    self._conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._failed(f"{type(exc).__name__}: {exc}")
                return False
            self._last_saved_ms = max(self._last_saved_ms or t_ms, t_ms)
            if self._failing_since is not None and not bad:
                log.warning("event=state_write_recovered failed_for_s=%.1f",
                            time.monotonic() - self._failing_since)
                self._failing_since = None
                self._suppressed = 0
        return not bad

    def _recreate_if_deleted(self) -> None:
        """A database file deleted (or replaced) while running: the open connection would keep
        writing to the unlinked file, lost at the next start, so open a new one at the path.
        Every evaluation saves its whole state, so the new file is complete within one round."""
        if (self._inode is None or self.path is None
                or state_file.inode(self.path) == self._inode):
            return
        try:
            conn, _ = state_file.open_checked(self.path, WRITE_BUSY_TIMEOUT_MS / 1000, time.time,
                                              WRITE_BUSY_TIMEOUT_MS)
        except (state_file.Unusable, sqlite3.Error, OSError) as exc:
            self._failed(f"state database deleted while running, not recreated: {exc}")
            return
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn, self._inode = conn, state_file.inode(self.path)
        log.error("event=state_recreated path=%s reason=%r", self.path,
                  "the database file was deleted or replaced while running")

    def _failed(self, error: str) -> None:
        self.write_failures += 1
        if self._on_write_failure is not None:
            self._on_write_failure()
        now = time.monotonic()
        new_episode = self._failing_since is None
        if new_episode:
            self._failing_since = now
        # One line per minute while it keeps failing, so a full disk does not flood the log.
        if new_episode or now - self._last_failure_log >= FAILURE_LOG_EVERY_S:
            log.error("event=state_write_failed path=%s error=%r suppressed=%d", self.path,
                      error, self._suppressed)
            self._last_failure_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    def close(self) -> None:
        """Checkpoint the WAL into the database file and release the file lock."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.path is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            if self._lock_file is not None:
                self._lock_file.close()  # closing the descriptor drops the flock


# -- helpers ---------------------------------------------------------------------------


def _decode(kind: str, key: str, t_ms: int, text: str) -> StoredState | None:
    try:
        data = json.loads(text)
    except ValueError as exc:
        log.error("event=state_blob_unreadable kind=%s key=%r error=%r", kind, key, str(exc))
        return None
    if not isinstance(data, dict):
        log.error("event=state_blob_unreadable kind=%s key=%r error=%r", kind, key,
                  "not a JSON object")
        return None
    return StoredState(int(t_ms), data)
