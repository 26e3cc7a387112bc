"""Browser test: the overview page in headless Chromium shows exactly what /metrics exports."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.daemon import Daemon
from exporter.demo.shop import ShopServer, start_shop
from exporter.overview_html import NO_DATA, format_number
from tests.scrape_fixtures import free_port, wait_until
from tests.shared_data import REPO_ROOT, REQUIRE_ENV

CHROMIUM_ENV, CHROMEDRIVER_ENV = "VALUE_EXPORTER_CHROMIUM", "VALUE_EXPORTER_CHROMEDRIVER"
# Flags from issue 7: nothing but loopback is contacted, no profile outlives the test. The
# resolver rule makes any other host name fail to resolve instead of reaching the network.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1280,2400",
)
# One round trip reads every figure as rendered: series, labels, exact value, visible text.
READ_FIGURES = """
return Array.from(document.querySelectorAll('[data-series]')).map(e => [
  e.dataset.series, e.dataset.labels, e.dataset.unit, e.dataset.value || null, e.innerText]);
"""


class WebDriverError(Exception):
    """A W3C WebDriver error response."""


@dataclass
class WebDriver:
    """The few W3C WebDriver commands the test needs, over chromedriver's HTTP API."""

    base: str
    session: str = ""

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.base}/session/{self.session}{path}" if self.session else self.base + path
        response = requests.request(method, url, json=body, timeout=60)
        value = response.json().get("value")
        if response.status_code != 200:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    def start(self, chromium: Path, profile: Path) -> None:
        options = {"binary": str(chromium), "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
                                                 "goog:chromeOptions": options}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def get(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def script(self, source: str) -> Any:
        return self.call("POST", "/execute/sync", {"script": source, "args": []})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("GET", "/screenshot"))

    def quit(self) -> None:
        if self.session:
            self.call("DELETE", "")
            self.session = ""


def _binary(env: str, default: str) -> Path:
    path = Path(os.environ.get(env) or default)
    if path.exists():
        return path
    message = (f"{path} not found; `make test` installs the Debian packages chromium and "
               f"chromium-driver with scripts/install-browser.sh (as root), or set {env}.")
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chromium = _binary(CHROMIUM_ENV, "/usr/bin/chromium")
    chromedriver = _binary(CHROMEDRIVER_ENV, "/usr/bin/chromedriver")
    port = free_port()
    log = (tmp_path / "chromedriver.log").open("wb")
    proc = subprocess.Popen([str(chromedriver), f"--port={port}", "--allowed-ips=127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT)
    driver = WebDriver(f"http://127.0.0.1:{port}")
    try:
        assert wait_until(lambda: _ready(driver), 20), "chromedriver did not start"
        driver.start(chromium, tmp_path / "chromium-profile")
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


def _ready(driver: WebDriver) -> bool:
    try:
        return bool(driver.call("GET", "/status")["ready"])
    except (requests.ConnectionError, WebDriverError):
        return False


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Daemon]:
    shop: ShopServer = start_shop("127.0.0.1:0", deterministic=True)
    config = {
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "evaluation_interval": "2s",
        "rule_files": [str(REPO_ROOT / "rules" / "*.yaml")], "state_dir": str(tmp_path / "state"),
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
    }
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    daemon = Daemon(str(path))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        shop.stop()


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(url: str) -> Samples:
    out: Samples = {}
    text = requests.get(url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def _expected(samples: Samples, series: str, labels: dict[str, str]) -> float | None:
    """What a figure must show: the sum of the series whose labels include the figure's."""
    found = [v for have, v in samples.get(series, []) if labels.items() <= have.items()]
    return sum(found) if found else None


def _shown(samples: Samples, figures: list[list[Any]]) -> set[tuple[str, str, str]]:
    """The page's series in a scrape, comparable across scrapes (repr: NaN equals NaN)."""
    names = {f[0] for f in figures}
    return {(name, json.dumps(labels, sort_keys=True), repr(v))
            for name in names for labels, v in samples.get(name, [])}


def test_overview_in_chromium_matches_metrics(browser: WebDriver, demo: Daemon,
                                              tmp_path: Path) -> None:
    """Every number the browser renders equals /metrics at the same moment; absent is no data."""
    base = f"http://{demo.listen_address}"
    # Two scrapes and an evaluation after them: rates, SLO windows and funnels have values.
    assert wait_until(lambda: "journey:conversion:ratio_window" in _scrape(base + "/metrics"),
                      30), "the demo produced no journey conversion"
    response = requests.get(base + "/", timeout=10)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    # Evaluations change the money figures every 2 s: retry until /metrics did not change
    # while the browser loaded and read the page, so both show the same evaluation.
    for _ in range(20):
        before = _scrape(base + "/metrics")
        browser.get(base + "/")
        figures = browser.script(READ_FIGURES)
        after = _scrape(base + "/metrics")
        if _shown(before, figures) == _shown(after, figures):
            break
        time.sleep(0.3)
    else:
        pytest.fail("/metrics changed during every one of 20 page loads")
    (tmp_path / "overview.png").write_bytes(browser.screenshot())
    shown = 0
    for series, labels_json, unit, value, text in figures:
        labels = json.loads(labels_json)
        want = _expected(before, series, labels)
        where = f"{series}{labels}"
        if want is None:
            assert (value, text) == (None, NO_DATA), where
            continue
        shown += 1
        assert value is not None, where
        assert float(value) == pytest.approx(want, rel=1e-12, nan_ok=True), where
        assert text == format_number(want, unit), where
    # The demo's SLOs, value metrics, funnel and improvements: most figures have data by now.
    assert shown >= 30, figures
    targets = before["value_exporter_target_up"]
    assert [v for _, v in targets] == [1.0]
    health = browser.script("return Array.from(document.querySelectorAll("
                            "'#targets .status')).map(e => e.innerText)")
    assert health == ["up"]
    assert browser.script("return document.getElementById('empty-state')") is None
    # The inline style applied, so the CSP hash admits it: the header's dark background.
    background = browser.script(
        "return getComputedStyle(document.querySelector('header')).backgroundColor")
    assert background == "rgb(15, 23, 42)"
    png = (tmp_path / "overview.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
