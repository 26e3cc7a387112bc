"""Rule evaluation faults: a failing rule fails alone and is counted per rule; queries are
bounded by query_max_samples (Prometheus's --query.max-samples) with Prometheus's error text."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml

from exporter import conventions as c
from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.evaluate import HEALTH_ERR, HEALTH_OK, GroupEvaluator
from exporter.labels import make_labels
from exporter.promql.engine import (
    TOO_MANY_SAMPLES,
    TooManySamplesError,
    evaluate_instant,
    evaluate_range,
)
from exporter.rules.model import RecordingRule, RuleGroup
from exporter.store import SeriesStore
from tests.scrape_fixtures import Target, respond, wait_until

S = 1000


def _store() -> SeriesStore:
    """x{i="a"|"b"|"c"}, one sample every 15 s from 0 to 60 s (5 each)."""
    store = SeriesStore()
    for i in "abc":
        for k in range(5):
            store.append(make_labels({"__name__": "x", "i": i}), k * 15 * S, float(k))
    return store


# (expression at t=60 s, samples its selectors load): the bound passes at that number and
# fails one below it.
LOADS = [
    ("x", 3),  # one sample per series
    ("x[1m]", 12),  # (0 s, 60 s] is left-open: 15, 30, 45, 60 s of each of 3 series
    ("sum(rate(x[1m]))", 12),
    ("x[1m:15s]", 12),  # a subquery: steps 15, 30, 45, 60 s, one sample each per series
    ("max_over_time((x * 2)[1m:15s])", 24),  # 4 steps x 3 inner samples, then 12 in the matrix
    ("x + x", 6),
    ("timestamp(x)", 3),
    ("1 + 1", 0),
]


@pytest.mark.parametrize(("expr", "loaded"), LOADS, ids=[e for e, _ in LOADS])
def test_instant_query_sample_bound(expr: str, loaded: int) -> None:
    """A query loading exactly max_samples runs; one sample fewer allowed fails with
    Prometheus's text."""
    evaluate_instant(expr, _store(), 60 * S, max_samples=loaded)
    if loaded:
        with pytest.raises(TooManySamplesError) as err:
            evaluate_instant(expr, _store(), 60 * S, max_samples=loaded - 1)
        assert str(err.value) == TOO_MANY_SAMPLES == (
            "query processing would load too many samples into memory in query execution")


def test_range_query_counts_every_step() -> None:
    """A range query over 0..60 s at 15 s steps loads 5 steps x 3 series = 15 samples."""
    store = _store()
    evaluate_range("x", store, 0, 60 * S, 15 * S, max_samples=15)
    with pytest.raises(TooManySamplesError):
        evaluate_range("x", store, 0, 60 * S, 15 * S, max_samples=14)


def test_failing_rules_fail_alone_and_the_group_goes_on() -> None:
    """A many-to-many match and a query past the sample bound each fail with their own error;
    the rules before and after them write their results."""
    store = _store()
    group = RuleGroup("g", "f.yml", (
        RecordingRule("before", "sum(x)"),
        RecordingRule("many_to_many", "x * on() x"),
        RecordingRule("heavy", "sum(rate(x[1m]))"),  # 12 samples, 11 allowed
        RecordingRule("after", "count(x)"),
    ), interval_ms=15 * S)
    result = GroupEvaluator(group, store, default_interval_ms=15 * S,
                            max_samples=11).evaluate(60 * S)
    health = {s.rule.name: (s.health, s.last_error) for s in result.rules}
    assert health["before"] == (HEALTH_OK, "") and health["after"] == (HEALTH_OK, "")
    assert health["many_to_many"][0] == HEALTH_ERR
    assert "found duplicate series for the match group {} on the right" in \
        health["many_to_many"][1]
    assert health["heavy"] == (HEALTH_ERR, TOO_MANY_SAMPLES)
    # sum(x) at 60 s = 4 + 4 + 4; count(x) = 3
    assert store.get(make_labels({"__name__": "before"})).last() == (60 * S, 12.0)  # type: ignore[union-attr]
    assert store.get(make_labels({"__name__": "after"})).last() == (60 * S, 3.0)  # type: ignore[union-attr]
    assert [s.rule.name for s in result.errors] == ["many_to_many", "heavy"]


@pytest.mark.parametrize(("value", "error"), [
    (None, None), (1000, None), (0, "must be above 0"), ("many", "expected an integer"),
], ids=["default", "set", "zero", "not-a-number"])
def test_query_max_samples_config_key(tmp_path: Path, value: object, error: str | None) -> None:
    """query_max_samples defaults to Prometheus's 50,000,000 and must be a positive integer."""
    config = {"targets": [{"name": "a", "url": "http://127.0.0.1:9/metrics"}]}
    if value is not None:
        config["query_max_samples"] = value  # type: ignore[assignment]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    if error is None:
        expected = 50_000_000 if value is None else value
        assert load_config(path).query_max_samples == expected
    else:
        with pytest.raises(Exception, match=error):
            load_config(path)


RULES = """\
groups:
  - name: faults
    rules:
      - record: before
        expr: sum(x)
      - record: many_to_many
        expr: x * on() x
      - record: heavy
        expr: sum(rate(x[1m]))
      - record: after
        expr: count(x)
"""


def test_daemon_counts_each_failing_rule(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """In the daemon each failing rule is counted under its own name and logged, while the
    rules around it keep being written on every evaluation."""
    body = "".join(f'x{{i="{i}"}} 1\n' for i in "abc")
    with Target(respond(body)) as target:
        (tmp_path / "rules.yaml").write_text(RULES)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "listen": "127.0.0.1:0", "scrape_interval": "1s", "scrape_timeout": "500ms",
            "evaluation_interval": "1s", "rule_files": ["rules.yaml"],
            "state_dir": str(tmp_path / "state"), "query_max_samples": 5,
            "targets": [{"name": "t", "url": f"http://{target.address}/metrics"}],
        }))
        daemon = Daemon(str(tmp_path / "config.yaml"))
        registry = daemon.metrics.registry

        def failures(rule: str) -> float:
            value = registry.get_sample_value(
                c.RULE_EVALUATION_FAILURES, {c.RULE_GROUP_LABEL: "faults", c.RULE_LABEL: rule})
            return value or 0.0

        with caplog.at_level(logging.WARNING, logger="value_exporter"):
            daemon.start()
            try:
                # heavy reads 3 series x 2+ samples once a second scrape is in: over 5.
                assert wait_until(lambda: failures("heavy") >= 1, 15)
                time.sleep(0.1)
                iterations = registry.get_sample_value(
                    c.RULE_GROUP_ITERATIONS, {c.RULE_GROUP_LABEL: "faults"}) or 0.0
                m2m = failures("many_to_many")
                after = daemon.store.get(make_labels({"__name__": "after"}))
            finally:
                daemon.stop()
    assert m2m >= iterations - 1 >= 1  # fails on every evaluation (one may be in flight)
    assert failures("before") == failures("after") == 0
    assert after is not None and after.last()[1] == 3.0  # type: ignore[index]
    logged = {r.getMessage().split("rule=")[1].split(" ")[0] for r in caplog.records
              if "event=rule_failed" in r.getMessage()}
    assert logged == {"'many_to_many'", "'heavy'"}
