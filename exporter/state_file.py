"""State database file: schema migrations, the file lock, and opening with checks.

Opening verifies before it writes (integrity, ownership, schema version), so a file that is
refused leaves here unchanged; `Unusable.corrupt` tells the store whether to move it aside.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from exporter import state_rollups

log = logging.getLogger("value_exporter.state")

# Schema migrations, applied in order inside one transaction each; never edit a released one,
# append. Notification delivery state (issue 6) may stay a blob kind ("delivery"); CSI
# baselines are a blob kind. Hourly rollups (issue 5, exporter/rollups.py) have their own table,
# defined with its read/write/prune helpers in exporter/state_rollups.py.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "opaque state blobs and store metadata", """
        CREATE TABLE state (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            json TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        ) WITHOUT ROWID;
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
    """),
    (2, "hourly rollups of value, journey, improvement, parameter and SLO series",
     state_rollups.MIGRATION_SQL),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at_ms INTEGER NOT NULL
    )
"""
META_LAST_SAVED = "last_saved_ms"
_META_CREATED = "created_at_ms"


class Unusable(Exception):
    """The database file cannot be used; `corrupt` says whether to move it aside."""

    def __init__(self, reason: str, *, corrupt: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.corrupt = corrupt


def inode(path: Path | None) -> tuple[int, int] | None:
    """The file's identity (device, inode), or None when it is missing or in memory."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def acquire(lock_file: TextIO, timeout_s: float) -> bool:
    """Take the exclusive file lock, waiting up to `timeout_s`; False when another holds it."""
    # flock (not fcntl record locks): held per open file, released by the kernel when the
    # process dies, even by SIGKILL, so a restart after a crash never waits.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def connect(target: str, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection with explicit transactions, shareable across threads."""
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so one
    # save is exactly one transaction. check_same_thread=False: the store's lock serialises.
    conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None,
                           check_same_thread=False)
    return conn


def open_checked(path: Path, lock_timeout_s: float, clock: Callable[[], float],
                 busy_timeout_ms: int) -> tuple[sqlite3.Connection, int | None]:
    """Connect, verify, migrate; returns the connection and the previous run's last save."""
    try:
        conn = connect(str(path), lock_timeout_s)
    except sqlite3.Error as exc:
        raise Unusable(f"cannot open: {exc}", corrupt=False) from None
    try:
        # Checks first, read-only: a file we refuse must leave this function unchanged.
        result = _pragma(conn, "integrity_check")
        if result != "ok":
            raise Unusable(f"integrity_check: {result}", corrupt=True)
        _check_ownership(conn)
        mode = _pragma(conn, "journal_mode=WAL")
        if mode != "wal":
            log.warning("event=state_no_wal path=%s journal_mode=%s hint=%r", path, mode,
                        "state_dir must be on a local disk; SQLite's WAL fails on network "
                        "file systems")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, clock)
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (META_LAST_SAVED,)).fetchone()
        return conn, int(row[0]) if row is not None else None
    except sqlite3.DatabaseError as exc:
        conn.close()
        name = getattr(exc, "sqlite_errorname", "")
        text = f"{name or type(exc).__name__}: {exc}"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise Unusable(f"database is locked by another process ({text})",
                            corrupt=False) from None
        # Not a database, malformed, or an error that is not an operational one (I/O, full
        # disk, read-only, cannot open): only a broken file is moved aside.
        corrupt = name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or not isinstance(
            exc, sqlite3.OperationalError)
        raise Unusable(text, corrupt=corrupt) from None
    except BaseException:
        conn.close()
        raise


def _pragma(conn: sqlite3.Connection, pragma: str) -> str:
    rows = conn.execute(f"PRAGMA {pragma}").fetchall()
    return "; ".join(str(r[0]) for r in rows[:5])


def _check_ownership(conn: sqlite3.Connection) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "schema_version" not in tables:
        # Someone else's database in our file: keep it (moved aside) rather than write into it.
        raise Unusable(f"not a value-exporter state database (tables: {sorted(tables)})",
                        corrupt=True)
    if "schema_version" in tables:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if row[0] is not None and int(row[0]) > SCHEMA_VERSION:
            raise Unusable(f"schema version {row[0]} is newer than this build's "
                            f"{SCHEMA_VERSION} (a downgrade?); the file is left untouched",
                            corrupt=False)


def migrate(conn: sqlite3.Connection, clock: Callable[[], float]) -> None:
    """Apply the migrations this database lacks, in order, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0]) if row[0] is not None else 0
        now_ms = int(clock() * 1000)
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                         (version, description, now_ms))
            if version == 1:
                conn.execute("INSERT INTO meta VALUES (?, ?)", (_META_CREATED, str(now_ms)))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def move_aside(path: Path, clock: Callable[[], float]) -> Path:
    """Rename a broken database (and its WAL) to `<name>.corrupt-<UTC stamp>`; returns it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, target)
    # The WAL belongs to the bad file (keep it beside it for a post-mortem); the shared-memory
    # index is rebuilt from the WAL, so it goes.
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + "-wal"))
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + "-shm").unlink()
    return target


