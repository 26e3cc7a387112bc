"""`query_max_samples` bounds the query API and rule groups, and a reload applies a new bound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.api import Api, ApiError
from exporter.daemon import Daemon
from exporter.labels import make_labels
from exporter.promql.engine import TOO_MANY_SAMPLES
from exporter.web import Request

RULES = """\
groups:
  - name: sums
    rules:
      - record: job:x:sum_over_time1m
        expr: sum_over_time(x[1m])
"""
EXPR = "sum_over_time(x[1m])"
# x = 1, 2, ..., 10 at t = 1 s ... 10 s: at t = 10 s the window (-50 s, 10 s] holds all ten
# samples, so the query loads 10 samples and sums to 1 + 2 + ... + 10 = 55.
LOADED, SUM = 10, 55.0


def _config(folder: Path, max_samples: int) -> Path:
    (folder / "rules.yaml").write_text(RULES)
    path = folder / "config.yaml"
    path.write_text(f"evaluation_interval: 10s\nstate_dir: state\nrule_files: [rules.yaml]\n"
                    f"query_max_samples: {max_samples}\n"
                    "targets: [{name: x, url: 'http://127.0.0.1:9/metrics'}]\n")
    return path


@pytest.fixture
def daemon_at(tmp_path: Path) -> Iterator[list[Daemon]]:
    """Daemons built by a test (not started: rules and API are driven by hand), closed after."""
    made: list[Daemon] = []
    yield made
    for d in made:
        d.state.close()
        d.web.stop()


def _daemon(folder: Path, max_samples: int, made: list[Daemon]) -> Daemon:
    d = Daemon(str(_config(folder, max_samples)), listen="127.0.0.1:0")
    d.web.start()  # bound at construction; started so that stop() releases it
    made.append(d)
    for i in range(1, 11):
        d.store.append(make_labels({"__name__": "x"}), i * 1000, float(i))
    return d


def _request(kind: str) -> Request:
    params = {"query": [EXPR]}
    params.update({"time": ["10"]} if kind == "query" else
                  {"start": ["10"], "end": ["10"], "step": ["1"]})
    return Request("GET", f"/api/v1/{kind}", params, {})


@pytest.mark.parametrize(("kind", "limit", "ok"), [
    ("query", LOADED, True), ("query", LOADED - 1, False),
    ("query_range", LOADED, True), ("query_range", LOADED - 1, False),
], ids=["instant-at-limit", "instant-over-limit", "range-at-limit", "range-over-limit"])
def test_api_uses_configured_max_samples(tmp_path: Path, daemon_at: list[Daemon], kind: str,
                                         limit: int, ok: bool) -> None:
    """The query API fails a query loading more samples than `query_max_samples` (as Prometheus's
    --query.max-samples: errorType execution, HTTP 422) and answers one loading exactly that."""
    api = Api(_daemon(tmp_path, limit, daemon_at))
    handler = api.query if kind == "query" else api.query_range
    if ok:
        data = handler(_request(kind))
        point = data["result"][0]["value" if kind == "query" else "values"]
        assert (point if kind == "query" else point[0]) == [10, "55"]  # SUM, hand-computed
        return
    with pytest.raises(ApiError) as caught:
        handler(_request(kind))
    assert (caught.value.error_type, caught.value.status) == ("execution", 422)
    assert str(caught.value) == TOO_MANY_SAMPLES


def test_reload_of_only_max_samples_applies_to_unchanged_group(
        tmp_path: Path, daemon_at: list[Daemon]) -> None:
    """A reload that changes only `query_max_samples` keeps the unchanged group's evaluator (its
    alert state) yet evaluates it, and API queries, with the new bound."""
    d = _daemon(tmp_path, 100, daemon_at)
    [evaluator] = d._loaded.evaluators.values()
    assert evaluator.evaluate(10_000).errors == []
    _config(tmp_path, LOADED - 1)
    assert d.reload() == []
    [after] = d._loaded.evaluators.values()
    assert after is evaluator
    [failed] = after.evaluate(20_000).errors
    assert failed.last_error == TOO_MANY_SAMPLES
    with pytest.raises(ApiError):
        Api(d).query(_request("query"))
    _config(tmp_path, 100)  # and back: the looser bound applies again
    assert d.reload() == []
    assert d._loaded.evaluators[after.group.key].evaluate(30_000).errors == []
