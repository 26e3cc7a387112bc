"""End to end: the daemon and real Prometheus 3.x scrape the same shop with the same rules."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from exporter.daemon import Daemon
from exporter.demo.shop import ShopServer, start_shop
from exporter.rules.load import load_rule_files
from exporter.rules.model import RecordingRule
from tests.promtool import PrometheusServer
from tests.scrape_fixtures import wait_until
from tests.shared_data import REPO_ROOT

# The demo's files in Prometheus's own rules format (files with value-exporter sections,
# such as slos or journeys, are compared engine to engine through compile by
# tests/test_compile.py and tests/test_journeys.py); both load exactly the same files.
RULES = sorted(str(p) for p in (REPO_ROOT / "rules").glob("*.yaml")
               if set(yaml.safe_load(p.read_text()) or {}) <= {"groups"})
INTERVAL = "2s"
# The demo rules read 5-minute windows. Once a window holds only scraped samples of the
# deterministic (exactly linear) shop, rate() is exact whatever each side's scrape phase, so
# both engines must agree to float precision; before that, extrapolation depends on phase.
WARM_UP_SECONDS = 5 * 60 + 20
RELATIVE_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def shop() -> Iterator[ShopServer]:
    server = start_shop("127.0.0.1:0", deterministic=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def both(shop: ShopServer, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[tuple[Daemon, PrometheusServer]]:
    """The daemon and Prometheus, started together on the same shop and rule files."""
    folder = tmp_path_factory.mktemp("e2e")
    address = shop.url.removeprefix("http://")
    # The text format carries the deterministic shop's exact histogram values.
    protocols = ["PrometheusText0.0.4"]
    prometheus = PrometheusServer({
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": RULES,
        "scrape_configs": [{"job_name": "shop", "scrape_protocols": protocols,
                            "static_configs": [{"targets": [address]}]}],
    }, folder)
    config = folder / "daemon.yaml"
    config.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "scrape_interval": INTERVAL, "evaluation_interval": INTERVAL,
        "rule_files": RULES, "state_dir": str(folder / "state"),
        "scrape_configs": [{"job_name": "shop", "scrape_protocols": protocols,
                            "static_configs": [{"targets": [address]}]}],
    }))
    daemon = Daemon(str(config))
    daemon.start()
    try:
        yield daemon, prometheus
    finally:
        daemon.stop()
        prometheus.stop()


def _ours(daemon: Daemon, expr: str) -> list[dict[str, Any]]:
    response = requests.get(f"http://{daemon.listen_address}/api/v1/query",
                            params={"query": expr}, timeout=10)
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _by_labels(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def _differences(ours: dict[Any, float], theirs: dict[Any, float]) -> list[str]:
    if ours.keys() != theirs.keys():
        return [f"series differ: only ours {sorted(ours.keys() - theirs.keys())}, "
                f"only Prometheus {sorted(theirs.keys() - ours.keys())}"]
    return [f"{k}: ours {ours[k]} Prometheus {theirs[k]}"
            for k in ours if not _close(ours[k], theirs[k])]


def test_recorded_series_up_and_alerts_match_prometheus(
    both: tuple[Daemon, PrometheusServer], shop: ShopServer,
) -> None:
    """Every recorded series, up, scrape_samples_scraped and ALERTS equal Prometheus's."""
    daemon, prometheus = both
    names = sorted({rule.name for group in load_rule_files(RULES).groups for rule in group.rules
                    if isinstance(rule, RecordingRule)})
    assert len(names) >= 20
    assert wait_until(lambda: daemon.ready and prometheus.ready(), 30)
    time.sleep(WARM_UP_SECONDS)
    exported = requests.get(f"http://{daemon.listen_address}/metrics", timeout=10).text
    problems: list[str] = []
    for name in [*names, "up", "scrape_samples_scraped"]:
        ours, theirs = _by_labels(_ours(daemon, name)), _by_labels(prometheus.query(name))
        if not theirs:
            problems.append(f"{name}: Prometheus has no value")
        problems += [f"{name}: {d}" for d in _differences(ours, theirs)]
        if name in names and ours:
            assert f"# TYPE {name} gauge" in exported, name
    assert not problems, "\n".join(problems)

    # An error burst: checkout and payment fail, and both sides page the same way.
    requests.post(f"{shop.url}/-/burst", params={"seconds": 600, "error_ratio": 0.6}, timeout=5)

    def firing(result: list[dict[str, Any]]) -> set[str]:
        return {r["metric"]["alertname"] for r in result}

    query = 'ALERTS{alertstate="firing"}'
    expected = {"ShopCheckoutErrorsHigh", "ShopPaymentGatewayDown"}
    assert wait_until(lambda: firing(_ours(daemon, query)) == expected, 150)
    assert wait_until(lambda: firing(prometheus.query(query)) == expected, 30)
    ours_alerts = _by_labels(_ours(daemon, "ALERTS"))
    theirs_alerts = _by_labels(prometheus.query("ALERTS"))
    assert ours_alerts == theirs_alerts
