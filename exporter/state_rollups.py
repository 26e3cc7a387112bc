"""Hourly rollup table of the state database: schema, encode, upsert, read and prune.

One row per (metric name, series text, hour); the hour is (hour_ms, hour_ms + 1h] as in the SLO
buckets, so `last` is what Prometheus returns at the hour's end. The functions take the caller's
connection: StateStore owns the lock and the transaction, this module only knows the table.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger("value_exporter.state")

TABLE = "rollup_hourly"

# Migration 2 of exporter.state.MIGRATIONS; never edit it once released, append a migration.
MIGRATION_SQL = """
    CREATE TABLE rollup_hourly (
        name TEXT NOT NULL,
        series TEXT NOT NULL,
        hour_ms INTEGER NOT NULL,
        labels TEXT NOT NULL,
        last REAL NOT NULL,
        last_ms INTEGER NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        sum REAL NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (name, series, hour_ms)
    ) WITHOUT ROWID;
    CREATE INDEX rollup_hourly_hour ON rollup_hourly (hour_ms);
"""

# An hour already holding a later sample ignores a repeated write (an evaluation saved twice).
_UPSERT = """
    INSERT INTO rollup_hourly (name, series, hour_ms, labels, last, last_ms, min, max, sum, count)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name, series, hour_ms) DO UPDATE SET
        last = excluded.last, last_ms = excluded.last_ms,
        min = min(rollup_hourly.min, excluded.min), max = max(rollup_hourly.max, excluded.max),
        sum = rollup_hourly.sum + excluded.sum, count = rollup_hourly.count + excluded.count
    WHERE excluded.last_ms > rollup_hourly.last_ms
"""

_SELECT = (
    "SELECT name, series, hour_ms, labels, last, last_ms, min, max, sum, count "
    "FROM rollup_hourly WHERE name = ? AND hour_ms >= ? AND hour_ms < ? "
    "ORDER BY series, hour_ms")

EncodedRow = tuple[str, str, int, str, float, int, float, float, float, int]


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One series' samples in one hour (hour_ms, hour_ms + 1h]: last, min, max, sum, count."""

    name: str
    series: str  # canonical text, `name{a="b"}`
    labels: Mapping[str, str]
    hour_ms: int
    last: float
    last_ms: int
    min: float
    max: float
    sum: float
    count: int


def encode(rows: Iterable[RollupRow]) -> list[EncodedRow]:
    """Rows as SQL parameters; a row with a NaN or infinite value is left out, so one bad
    sample cannot poison its hour's min, max and sum."""
    return [(r.name, r.series, r.hour_ms, json.dumps(dict(r.labels), sort_keys=True),
             r.last, r.last_ms, r.min, r.max, r.sum, r.count)
            for r in rows if all(map(math.isfinite, (r.last, r.min, r.max, r.sum)))]


def upsert(conn: sqlite3.Connection, rows: list[EncodedRow]) -> None:
    """Fold encoded rows into their hours; runs inside the caller's transaction."""
    conn.executemany(_UPSERT, rows)


def read(conn: sqlite3.Connection, names: Iterable[str], start_ms: int,
         end_ms: int) -> list[RollupRow]:
    """Rows of these metric names whose hour starts in [start_ms, end_ms).

    Unreadable rows (bad label JSON, a non-number) are left out and logged, never raised; a
    database error is logged and reads as no rows.
    """
    try:
        raw = [r for name in sorted(set(names))
               for r in conn.execute(_SELECT, (name, start_ms, end_ms))]
    except sqlite3.Error as exc:
        log.error("event=rollup_read_failed error=%r", str(exc))
        return []
    out: list[RollupRow] = []
    for row in raw:
        try:
            labels = json.loads(row[3])
            if not isinstance(labels, dict):
                raise TypeError("labels are not an object")
            out.append(RollupRow(str(row[0]), str(row[1]),
                                 {str(k): str(v) for k, v in labels.items()},
                                 int(row[2]), float(row[4]), int(row[5]), float(row[6]),
                                 float(row[7]), float(row[8]), int(row[9])))
        except (TypeError, ValueError) as exc:
            log.warning("event=rollup_row_unreadable series=%r hour_ms=%r error=%r",
                        row[1], row[2], str(exc))
    return out


def prune(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete hours that start before `before_ms`; returns how many rows went (raises
    sqlite3.Error, which the store counts as a write failure)."""
    return conn.execute("DELETE FROM rollup_hourly WHERE hour_ms < ?", (before_ms,)).rowcount
