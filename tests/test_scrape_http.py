"""Scrape stage over HTTP: failures, limits on the wire, auth, TLS (loopback servers only)."""

from __future__ import annotations

import base64
import gzip
import itertools
import ssl
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from exporter import conventions as c
from exporter.config_http import Authorization, BasicAuth, HTTPClientConfig, Secret, TLSConfig
from exporter.scrape_http import ACCEPT_HEADER, go_seconds
from exporter.scrape_target import ScrapeReport, TargetScraper
from exporter.selfmetrics import SelfMetrics
from exporter.store import SeriesStore
from tests.scrape_fixtures import (
    TEXT,
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

HANG_GUARD_S = 60.0  # far above every timeout here (0.5 s), so a slow machine never trips it
BODY = "# TYPE a gauge\na 1\nb{x=\"1\"} 2\n"


def _scraper(job: Any, store: SeriesStore | None = None) -> TargetScraper:
    store = store if store is not None else SeriesStore()
    return TargetScraper(job.static_targets()[0], job, store, SelfMetrics(), keep_names=None)


# The slow servers below never finish on their own (only the test's `stop` ends them), so a
# scrape that returns with reason "timeout" was cut by the scraper's own deadline.
def _hang(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        stop.wait()

    return handle


def _drip(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        slow_chunks(h, itertools.repeat(b"a 1\n"), 0.05, stop)

    return handle


def _header_drip(stop: threading.Event) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for i in itertools.count():
            if stop.wait(0.05):
                return
            h.wfile.write(f"X-Drip-{i}: 1\r\n".encode())
            h.wfile.flush()

    return handle


def _huge(size: int) -> Callable[[BaseHTTPRequestHandler], None]:
    line = b"metric_with_a_long_name_for_padding{label=\"value\"} 1\n" * 1200
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", TEXT)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        sent = 0
        while sent < size:
            part = line[: size - sent]
            h.wfile.write(part)
            sent += len(part)

    return handle


def _redirect_loop(h: BaseHTTPRequestHandler) -> None:
    h.send_response(302)
    h.send_header("Location", "/metrics?again=1")
    h.send_header("Content-Length", "0")
    h.end_headers()


_GZIP_BOMB = gzip.compress(b"a 1\n" * (25 * 1024 * 1024), compresslevel=9)


@dataclass(frozen=True)
class FailCase:
    id: str
    handler: Callable[[threading.Event], Callable[[BaseHTTPRequestHandler], None]] | None
    reason: str
    error: str
    job: dict[str, Any] = field(default_factory=dict)


FAIL_CASES = [
    FailCase("refused", None, "refused", "Connection refused"),
    FailCase("hang", _hang, "timeout", "timed out", {"timeout_ms": 500}),
    FailCase("slow-drip", _drip, "timeout", "timed out", {"timeout_ms": 500}),
    FailCase("header-drip", _header_drip, "timeout", "timed out", {"timeout_ms": 500}),
    FailCase("garbage", lambda s: respond("<html>oops</html>\n"), "parse_error", "line 1"),
    FailCase("too-large-100MB", lambda s: _huge(100 * 1024 * 1024), "too_large",
             "body size limit exceeded", {"limits": {"body_size_limit": 1024 * 1024}}),
    FailCase("gzip-bomb", lambda s: respond(_GZIP_BOMB, headers={"Content-Encoding": "gzip"}),
             "too_large", "body size limit exceeded",
             {"limits": {"body_size_limit": 1024 * 1024}}),
    FailCase("body-exactly-at-limit", lambda s: respond("a 1\n"), "too_large",
             "body size limit exceeded", {"limits": {"body_size_limit": 4}}),
    FailCase("redirect-loop", lambda s: _redirect_loop, "http_status", "10 redirects"),
    FailCase("5xx", lambda s: respond("down\n", status=503), "http_status",
             "HTTP status 503"),
    FailCase("404", lambda s: respond("no\n", status=404), "http_status", "HTTP status 404"),
    FailCase("invalid-utf8", lambda s: respond(b'a{x="\xff\xfe"} 1\n'), "parse_error",
             "UTF-8"),
    FailCase("no-content-type", lambda s: respond(BODY, content_type=None), "content_type",
             "blank Content-Type"),
    FailCase("html-content-type", lambda s: respond(BODY, content_type="text/html"),
             "content_type", "unsupported Content-Type"),
    FailCase("bad-gzip", lambda s: respond(b"not gzip", headers={"Content-Encoding": "gzip"}),
             "other", "gzip"),
]


def _scrape_or_fail(scraper: TargetScraper, t_ms: int) -> ScrapeReport:
    """Scrape in a thread; a scrape still running after HANG_GUARD_S fails the test instead of
    hanging the suite (the bound only catches a deadline that never fires; it times nothing)."""
    reports: list[ScrapeReport] = []
    worker = threading.Thread(target=lambda: reports.append(scraper.scrape(t_ms)), daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    if worker.is_alive():
        pytest.fail(f"scrape still running after {HANG_GUARD_S}s: its deadline never cut it")
    assert reports, "the scrape raised instead of reporting a failure"
    return reports[0]


@pytest.mark.parametrize("case", FAIL_CASES, ids=lambda k: k.id)
def test_failed_scrape_is_up_zero_with_reason(case: FailCase) -> None:
    """Every kind of failure gives up 0, its reason, a counter increment, and no exception."""
    stop = threading.Event()
    server = Target(case.handler(stop)) if case.handler else None
    address = server.address if server else f"127.0.0.1:{free_port()}"
    try:
        job = make_job(address, **case.job)
        store = SeriesStore()
        scraper = _scraper(job, store)
        tracemalloc.start()
        report = _scrape_or_fail(scraper, 1000)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        up = last_value(store, series_labels(c.UP, job))
        scraper.close()
    finally:
        stop.set()
        if server:
            server.stop()
    assert (report.up, report.reason) == (False, case.reason), report.error
    assert case.error in report.error
    assert peak < 32 * 1024 * 1024  # streamed and cut off, never the whole body in memory
    assert up == (1000, 0.0)
    failures = scraper.metrics.scrape_failures.labels(scraper.name, case.reason)
    assert failures._value.get() == 1
    assert scraper.health.state == "down" and scraper.health.last_error == report.error


@pytest.mark.parametrize(("fallback", "up"), [(None, False), ("PrometheusText0.0.4", True),
                                               ("OpenMetricsText1.0.0", False)],
                         ids=["no-fallback", "text-fallback", "openmetrics-fallback-no-eof"])
def test_wrong_content_type_uses_fallback_protocol(fallback: str | None, up: bool) -> None:
    """A wrong Content-Type fails the scrape unless fallback_scrape_protocol names a format."""
    with Target(respond(BODY, content_type="application/json")) as server:
        job = make_job(server.address, fallback_scrape_protocol=fallback)
        report = _scraper(job).scrape(1000)
    assert report.up is up, report.error
    assert report.reason == ("" if up else "content_type" if fallback is None else "parse_error")


def test_request_headers_match_prometheus() -> None:
    """Accept, Accept-Encoding and the timeout header are sent as Prometheus 3.5 sends them."""
    with Target(respond(BODY)) as server:
        job = make_job(server.address, timeout_ms=2500,
                       params=(("module", ("http_2xx",)), ("target", ("a", "b"))))
        assert _scraper(job).scrape(1000).up
        headers = server.seen[0]
    assert headers["Accept"] == ACCEPT_HEADER
    assert headers["Accept-Encoding"] == "gzip"
    assert headers["X-Prometheus-Scrape-Timeout-Seconds"] == "2.5"
    assert headers["User-Agent"].startswith("value-exporter/")
    assert ACCEPT_HEADER.startswith("application/openmetrics-text;version=1.0.0;")
    assert go_seconds(10.0) == "10" and go_seconds(0.25) == "0.25"


def test_params_reach_the_query_string() -> None:
    """`params` become the query string of the scrape URL."""
    paths: list[str] = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        paths.append(h.path)
        respond(BODY)(h)

    with Target(handle) as server:
        job = make_job(server.address, params=(("target", ("a", "b")),))
        assert _scraper(job).scrape(1000).up
    assert paths == ["/metrics?target=a&target=b"]


def test_gzip_body_is_decoded() -> None:
    """A gzip-encoded body is decompressed before parsing."""
    with Target(respond(gzip.compress(BODY.encode()), headers={"Content-Encoding": "gzip"})) as s:
        report = _scraper(make_job(s.address)).scrape(1000)
    assert report.up and report.samples_scraped == 2


def _auth_check(expected: list[str]) -> Callable[[BaseHTTPRequestHandler], None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == expected[0]:
            respond(BODY)(h)
        else:
            respond("unauthorized\n", status=401)(h)

    return handle


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("kind", ["basic-password-file", "bearer-credentials-file",
                                  "basic-inline", "custom-type-inline"])
def test_credentials_are_sent_and_files_reread(kind: str, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """Credentials reach the target; a rotated secret file applies at the next scrape and no
    secret ever appears in a log line."""
    secret_file = tmp_path / "token-file"
    secret_file.write_text("first-secret\n")
    http = {
        "basic-password-file": HTTPClientConfig(BasicAuth("me", None, str(secret_file))),
        "bearer-credentials-file": HTTPClientConfig(None, Authorization("Bearer", None,
                                                                        str(secret_file))),
        "basic-inline": HTTPClientConfig(BasicAuth("me", Secret("first-secret"))),
        "custom-type-inline": HTTPClientConfig(None, Authorization("Token",
                                                                   Secret("first-secret"))),
    }[kind]
    header: Callable[[str], str] = {
        "basic-password-file": lambda p: _basic("me", p),
        "basic-inline": lambda p: _basic("me", p),
        "bearer-credentials-file": lambda p: f"Bearer {p}",
        "custom-type-inline": lambda p: f"Token {p}",
    }[kind]
    expected = [header("first-secret")]
    with Target(_auth_check(expected)) as server:
        scraper = _scraper(make_job(server.address, http=http))
        assert scraper.scrape(1000).up
        expected[0] = header("second-secret")
        report = scraper.scrape(2000)
        assert report.reason == "http_status"  # the server rotated, the file did not yet
        if "file" in kind:
            secret_file.write_text("second-secret")
            assert scraper.scrape(3000).up
        secret_file.unlink()
        if "file" in kind:
            assert scraper.scrape(4000).reason == "other"
        scraper.close()
    assert "first-secret" not in caplog.text and "second-secret" not in caplog.text


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA with a server and a client certificate, and a second CA nobody trusts."""
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "ca")
    other = make_ca(folder, "other-ca")
    server = make_cert(folder, "server", ca, "DNS:scrape.test,IP:127.0.0.1")
    named = make_cert(folder, "named", ca, "DNS:only-name.test")
    client = make_cert(folder, "client", ca, "DNS:client.test", "clientAuth")
    return {"ca": ca[0], "other_ca": other[0], "server_crt": server[0], "server_key": server[1],
            "named_crt": named[0], "named_key": named[1], "client_crt": client[0],
            "client_key": client[1]}


@pytest.mark.parametrize(
    ("id_", "cert", "tls", "want_client_cert", "reason"),
    [
        ("trusted-ca", "server", {"ca_file": "ca"}, False, ""),
        ("server-name", "named", {"ca_file": "ca", "server_name": "only-name.test"}, False, ""),
        ("wrong-host", "named", {"ca_file": "ca"}, False, "tls"),
        ("untrusted-ca", "server", {"ca_file": "other_ca"}, False, "tls"),
        ("system-roots", "server", {}, False, "tls"),
        ("insecure-skip-verify", "server", {"insecure_skip_verify": True}, False, ""),
        ("client-cert", "server", {"ca_file": "ca", "cert_file": "client_crt",
                                   "key_file": "client_key"}, True, ""),
    ],
    ids=lambda v: v if isinstance(v, str) and "-" in v else None,
)
def test_tls(pki: dict[str, Path], id_: str, cert: str, tls: dict[str, Any],
             want_client_cert: bool, reason: str) -> None:
    """TLS trusts the configured CA, checks the name (or server_name), sends a client
    certificate, and fails with reason tls on an untrusted certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki[f"{cert}_crt"], pki[f"{cert}_key"])
    if want_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["ca"])
    fields = {k: (str(pki[v]) if k.endswith("_file") else v) for k, v in tls.items()}
    with Target(respond(BODY), tls=ctx) as server:
        job = make_job(server.address, scheme="https",
                       http=HTTPClientConfig(tls_config=TLSConfig(**fields)))
        report = _scraper(job).scrape(1000)
    assert report.reason == reason, report.error
    assert report.up is (reason == "")


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        pytest.param(
            ("OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0",
             "PrometheusText0.0.4"),
            "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,"
            "application/openmetrics-text;version=0.0.1;q=0.5,"
            "text/plain;version=1.0.0;escaping=underscores;q=0.4,"
            "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            id="default",
        ),
        pytest.param(("PrometheusText0.0.4",), "text/plain;version=0.0.4;q=0.6,*/*;q=0.5",
                     id="text-only"),
    ],
)
def test_accept_header_follows_scrape_protocols(protocols: tuple[str, ...], expected: str) -> None:
    """The Accept header lists scrape_protocols in order with Prometheus's weights."""
    from exporter.scrape_http import accept_header

    assert accept_header(protocols) == expected
