"""Bad targets, one case each against a loopback fake: up 0, the reason counted, one log line."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from exporter import conventions as c
from exporter.scrape_target import TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.scrape_fixtures import (
    Target,
    free_port,
    last_value,
    make_ca,
    make_cert,
    make_job,
    respond,
    series_labels,
    slow_chunks,
)

Handler = Callable[[BaseHTTPRequestHandler], None]


def _hang(stop: threading.Event) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        stop.wait(10)  # never answers within the 500 ms timeout

    return handle


def _drip(stop: threading.Event) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        # Each chunk arrives well inside any socket timeout, the whole body after 10 s.
        slow_chunks(h, iter([b"a 1\n"] * 200), 0.05, stop)

    return handle


def _redirect_loop(stop: threading.Event) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", "/metrics")  # back to itself, forever
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def _fixed(body: bytes | str, **kw: Any) -> Callable[[threading.Event], Handler]:
    return lambda stop: respond(body, **kw)


# 500 series where 100 are allowed; one series with 40 labels where 30 are allowed.
_MANY_SERIES = "".join(f'explode{{i="{i}"}} 1\n' for i in range(500))
_MANY_LABELS = "wide{" + ",".join(f'l{i}="v"' for i in range(40)) + "} 1\nnarrow 1\n"


@dataclass(frozen=True)
class Case:
    id: str
    handler: Callable[[threading.Event], Handler] | None  # None: nothing listens
    reason: str
    error: str  # a part of the reported error
    job: dict[str, Any] = field(default_factory=dict)
    tls: bool = False


CASES = [
    Case("refused", None, "refused", "Connection refused"),
    Case("timeout", _hang, "timeout", "timed out", {"timeout_ms": 500}),
    Case("slow-drip", _drip, "timeout", "timed out", {"timeout_ms": 500}),
    Case("tls-untrusted-certificate", _fixed("a 1\n"), "tls", "CERTIFICATE_VERIFY_FAILED",
         {"scheme": "https"}, tls=True),
    Case("redirect-loop", _redirect_loop, "http_status", "redirects"),
    Case("5xx", _fixed("overloaded\n", status=503), "http_status", "HTTP status 503"),
    Case("invalid-utf8", _fixed(b'a{x="\xc3\x28"} 1\n'), "parse_error", "invalid UTF-8"),
    Case("wrong-content-type", _fixed("a 1\n", content_type="application/json"),
         "content_type", "unsupported Content-Type"),
    Case("series-past-sample_limit", _fixed(_MANY_SERIES), "sample_limit",
         "sample limit exceeded", {"limits": {"sample_limit": 100}}),
    Case("labels-past-label_limit", _fixed(_MANY_LABELS), "label_limit",
         "label_limit exceeded", {"limits": {"label_limit": 30}}),
]


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server TLS context whose certificate no scraper trusts (its own CA)."""
    folder: Path = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "private-ca")
    crt, key = make_cert(folder, "server", ca, "IP:127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


@pytest.mark.parametrize("case", CASES, ids=lambda k: k.id)
def test_bad_target_is_up_zero_counted_and_logged(
    case: Case, server_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture,
) -> None:
    """Each target fault becomes up 0, one count under its reason, and one scrape_failed log
    line naming the target and reason; no sample of the rejected body is stored."""
    stop = threading.Event()
    server = None
    if case.handler is not None:
        server = Target(case.handler(stop), tls=server_tls if case.tls else None)
    address = server.address if server else f"127.0.0.1:{free_port()}"
    try:
        job = make_job(address, **case.job)
        store = SeriesStore()
        scraper = TargetScraper(job.static_targets()[0], job, store, SelfMetrics(),
                                keep_names=None)
        with caplog.at_level(logging.WARNING, logger="value_exporter.scrape"):
            report = scraper.scrape(1000)
        up = last_value(store, series_labels(c.UP, job))
        names = set(store.metric_names())
        scraper.close()
    finally:
        stop.set()
        if server:
            server.stop()
    assert (report.up, report.reason) == (False, case.reason), report.error
    assert case.error in report.error
    assert up == (1000, 0.0)
    # Only the five synthetic series: a rejected scrape stores nothing it read.
    assert names == {c.UP, c.SCRAPE_DURATION, c.SCRAPE_SAMPLES_SCRAPED,
                                         c.SCRAPE_SAMPLES_POST_RELABELING,
                                         c.SCRAPE_SERIES_ADDED}
    counted = {reason: scraper.metrics.scrape_failures.labels(scraper.name, reason)._value.get()
               for reason in c.SCRAPE_FAILURE_REASONS}
    assert {r: n for r, n in counted.items() if n} == {case.reason: 1.0}
    lines = [r.getMessage() for r in caplog.records if "event=scrape_failed" in r.getMessage()]
    assert len(lines) == 1
    assert f"target={scraper.name} " in lines[0] and f"reason={case.reason} " in lines[0]
