"""Configuration reload under load: what did not change keeps its series and its alert state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.daemon import Daemon
from exporter.labels import is_stale, make_labels
from tests.scrape_fixtures import Target, respond, wait_until

SERIES = 2000  # per target
RULES = """\
groups:
  - name: load
    rules:
      - record: job:load_series:count
        expr: count by (job) (load_series)
      - alert: ManySeries
        expr: count by (job) (load_series) > 10
        for: 1h
"""


def _body(name: str) -> str:
    return "".join(f'load_series{{k="{name}{i}"}} {i}\n' for i in range(SERIES))


@pytest.fixture
def targets() -> Iterator[list[Target]]:
    servers = [Target(respond(_body(n))) for n in "abc"]
    yield servers
    for server in servers:
        server.stop()


def _write(folder: Path, servers: list[Target]) -> Path:
    (folder / "rules.yaml").write_text(RULES)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "scrape_timeout": "800ms",
        "evaluation_interval": "1s", "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": [{"name": f"t{i}", "url": f"http://{s.address}/metrics"}
                    for i, s in enumerate(servers)],
    }))
    return path


def _alerts(d: Daemon) -> dict[Any, int | None]:
    """activeAt of every ManySeries alert, by its labels."""
    [evaluator] = d._loaded.evaluators.values()
    return {a.labels: a.active_at for s in evaluator.alert_states if s
            for a in s.active.values()}


def test_reload_adding_a_target_keeps_the_rest(tmp_path: Path, targets: list[Target]) -> None:
    """With 4,000 series being scraped, a reload that adds a third target keeps every sample
    and no stale marker on the unchanged targets' series, the same scrapers and rule group
    evaluator, and the pending alerts' activeAt; the new target is scraped."""
    path = _write(tmp_path, targets[:2])
    d = Daemon(str(path))
    d.start()
    try:
        assert wait_until(lambda: len(_alerts(d)) == 2, 20)  # t0 and t1, pending for 1h
        scrapers = {s.name: s for s in d.scrapes.scrapers()}
        [evaluator] = d._loaded.evaluators.values()
        alerts = _alerts(d)
        watched = [d.store.get(make_labels({"__name__": "load_series", "job": f"t{i}",
                                            "instance": targets[i].address, "k": f"{n}{k}"}))
                   for i, n in enumerate("ab") for k in (0, SERIES - 1)]
        assert all(s is not None and len(s) >= 1 for s in watched)
        first = [(s.ts[0], len(s)) for s in watched if s is not None]
        _write(tmp_path, targets)
        assert d.reload() == []
        assert wait_until(lambda: len(_alerts(d)) == 3, 20)  # t2 joins
        after = _alerts(d)
        kept = {s.name: s for s in d.scrapes.scrapers()}
        [evaluator_after] = d._loaded.evaluators.values()
    finally:
        d.stop()
    assert all(kept[name] is scraper for name, scraper in scrapers.items())
    assert evaluator_after is evaluator
    assert {k: v for k, v in after.items() if k in alerts} == alerts
    for series, (t0, n0) in zip(watched, first, strict=True):
        assert series is not None and series.ts[0] == t0 and len(series) > n0
        assert not any(is_stale(v) for v in series.vs)
