"""State database faults seen from the running daemon: a bad database at start, or one deleted
while running, never stops scraping, evaluating or serving; the log says what was done."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter import daemon as daemon_module
from exporter.daemon import Daemon
from exporter.state import DB_NAME, KIND_RULE_GROUP, StateStore, rule_group_key
from tests.scrape_fixtures import Target, respond, wait_until

RULES = """\
groups:
  - name: g
    rules:
      - record: job:x:sum
        expr: sum(x)
      - alert: XHigh
        expr: x > 0
"""


@pytest.fixture
def target() -> Iterator[Target]:
    with Target(respond('x{i="a"} 1\nx{i="b"} 2\n')) as t:
        yield t


def _config(folder: Path, target: Target) -> Path:
    (folder / "rules.yaml").write_text(RULES)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "scrape_timeout": "500ms",
        "evaluation_interval": "1s", "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": [{"name": "t", "url": f"http://{target.address}/metrics"}],
    }))
    return path


def _seed(folder: Path) -> None:
    """A good database with one saved blob, as a previous run leaves it."""
    store = StateStore.open(folder / "state")
    store.save_many([("slo", "old", {"v": 1})], 1000)
    store.close()


def _truncate(folder: Path) -> None:
    _seed(folder)
    db = folder / "state" / DB_NAME
    db.write_bytes(db.read_bytes()[:1000])


def _corrupt(folder: Path) -> None:
    _seed(folder)
    db = folder / "state" / DB_NAME
    data = bytearray(db.read_bytes())
    data[:100] = b"\xff" * 100  # the SQLite header: no longer a database
    db.write_bytes(bytes(data))


def _delete(folder: Path) -> None:
    _seed(folder)
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
        (folder / "state" / name).unlink(missing_ok=True)


# (id, damage before start, the log event, state_persistent)
BAD_STARTS: list[tuple[str, Callable[[Path], None], str, float]] = [
    ("deleted", _delete, "event=state_opened", 1.0),  # status=created
    ("truncated", _truncate, "event=state_rebuilt", 1.0),
    ("corrupted", _corrupt, "event=state_rebuilt", 1.0),
    ("locked-by-another-process", lambda f: None, "event=state_memory_only", 0.0),
]


@pytest.mark.parametrize(("damage", "event", "persistent"), [b[1:] for b in BAD_STARTS],
                         ids=[b[0] for b in BAD_STARTS])
def test_daemon_starts_and_serves_with_a_bad_database(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], None], event: str,
    persistent: float,
) -> None:
    """Deleted, truncated, corrupted or locked at start: the daemon starts, logs what it did,
    scrapes, evaluates and serves /metrics; the gauge says whether state persists."""
    damage(tmp_path)
    owner = None
    if persistent == 0.0:
        owner = StateStore.open(tmp_path / "state")  # another daemon holds the state_dir
        real_open = StateStore.open

        def quick_open(state_dir: Any, **kw: Any) -> StateStore:
            return real_open(state_dir, lock_timeout_s=0.2, **kw)

        monkeypatch.setattr(daemon_module.StateStore, "open", quick_open)
    with caplog.at_level(logging.INFO, logger="value_exporter"):
        d = Daemon(str(_config(tmp_path, target)))
        d.start()
        try:
            url = f"http://{d.listen_address}/metrics"
            # The first evaluation may run before the first scrape: wait for a result.
            assert wait_until(lambda: "\njob:x:sum " in requests.get(url, timeout=5).text, 15)
            metrics = requests.get(url, timeout=5).text
            healthy = requests.get(f"http://{d.listen_address}/-/healthy", timeout=5)
        finally:
            d.stop()
            if owner is not None:
                owner.close()
    assert healthy.status_code == 200
    assert "\njob:x:sum 3.0\n" in metrics  # 1 + 2
    assert f"value_exporter_state_persistent {persistent}" in metrics
    assert any(event in r.getMessage() for r in caplog.records), caplog.text
    if event == "event=state_rebuilt":
        assert [p.name for p in (tmp_path / "state").glob("state.db.corrupt-*")
                if not p.name.endswith(("-wal", "-shm"))]


def test_database_deleted_while_running_is_recreated(
    tmp_path: Path, target: Target, caplog: pytest.LogCaptureFixture,
) -> None:
    """Deleting state.db under a running daemon is noticed at the next save: a new file is
    created, logged, and holds the rule group's state when the daemon stops."""
    d = Daemon(str(_config(tmp_path, target)))
    db = tmp_path / "state" / DB_NAME
    with caplog.at_level(logging.INFO, logger="value_exporter"):
        d.start()
        try:
            assert wait_until(lambda: d.ready, 15)
            for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
                (tmp_path / "state" / name).unlink(missing_ok=True)
            assert wait_until(lambda: "event=state_recreated" in caplog.text, 10)
            assert wait_until(db.exists, 5)
        finally:
            d.stop()
    assert d.state.write_failures == 0
    store = StateStore.open(tmp_path / "state")
    try:
        blob = store.load(KIND_RULE_GROUP, rule_group_key(str(tmp_path / "rules.yaml"), "g"))
    finally:
        store.close()
    assert blob is not None, "the recreated database holds the group's state"
    # The file on disk is a database of its own, not a leftover of the deleted one.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert os.path.getsize(db) > 0
