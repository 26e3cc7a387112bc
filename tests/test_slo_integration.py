"""SLOs in the rule unit-test runner and in the running daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from exporter.daemon import Daemon
from exporter.demo.shop import start_shop
from exporter.ruletest import run_test_file
from tests.scrape_fixtures import wait_until

SLO_TESTDATA = Path(__file__).parent / "testdata" / "slo"
UNIT_TEST_FILES = sorted(SLO_TESTDATA.glob("*.test.yml"))


@pytest.mark.parametrize("path", UNIT_TEST_FILES, ids=[p.stem for p in UNIT_TEST_FILES])
def test_slo_unit_test_files_pass(path: Path) -> None:
    """Each promtool-format SLO unit-test file passes through `value-exporter test`."""
    assert run_test_file(str(path)) == []


def test_unit_test_runner_reports_slo_errors(tmp_path: Path) -> None:
    """An SLI that cannot be counted fails the unit test with the SLO's name and time."""
    (tmp_path / "r.yml").write_text("""
slos:
  - name: lat
    service: s
    objective: 99
    window: 7d
    sli: {latency: {histogram: 'h_bucket', threshold: 0.25}}
""")
    (tmp_path / "t.yml").write_text("""
rule_files: [r.yml]
tests:
  - interval: 1m
    input_series:
      - {series: 'h_bucket{le="0.3"}', values: '0+1x3'}
      - {series: 'h_bucket{le="+Inf"}', values: '0+1x3'}
    promql_expr_test:
      - {expr: slo:objective:ratio, eval_time: 2m, exp_samples: []}
""")
    errors = run_test_file(str(tmp_path / "t.yml"))
    assert errors == ["    slo: lat, time: 0s, err: no bucket le=0.25 in 'h_bucket'"]


DAEMON_RULES = """
slos:
  - name: shop-requests
    service: shop
    owner: Shop team
    objective: 99
    window: {calendar: month, timezone: Europe/Berlin}
    sli:
      ratio:
        errors: shop_http_requests_total{code=~"5.."}
        total: shop_http_requests_total
    group_by: [route]
"""


def test_daemon_evaluates_and_exports_slos(tmp_path: Path) -> None:
    """The daemon runs each SLO before its alert group and exports the SLO series."""
    shop = start_shop("127.0.0.1:0", deterministic=True)
    (tmp_path / "rules.yaml").write_text(DAEMON_RULES)
    config = {
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "scrape_timeout": "500ms",
        "evaluation_interval": "1s", "rule_files": ["rules.yaml"],
        "state_dir": str(tmp_path / "state"),
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    daemon = Daemon(str(tmp_path / "config.yaml"))
    daemon.start()
    try:
        url = f"http://{daemon.listen_address}/metrics"

        def events_exported() -> bool:
            return 'slo:events:total{route="/checkout"' in requests.get(url, timeout=5).text

        assert wait_until(events_exported, 15)
        text = requests.get(url, timeout=5).text
        assert 'slo:info{budgeting="occurrences"' in text
        assert "slo:error_budget_remaining:ratio{" in text
        assert "value_exporter_slo_data_gap_seconds_total{" in text
        groups = requests.get(f"http://{daemon.listen_address}/api/v1/rules",
                              timeout=5).json()["data"]["groups"]
        assert "slo:shop-requests" in [g["name"] for g in groups]
        assert "shop-requests" in daemon._loaded.slo_evaluators
    finally:
        daemon.stop()
        shop.stop()
