"""Tests for the web endpoints' security: web config, basic auth, TLS, hardening, data not code."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter import web
from exporter.cli import main
from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.errors import UserError
from exporter.rules.load import load_rule_files
from exporter.templates import check_template, expand_alert_template
from exporter.templates_funcs import FuncContext, prometheus_functions
from exporter.web import Response, Router, WebServer
from exporter.web_auth import (
    MALFORMED,
    MISSING,
    UNKNOWN_USER,
    WRONG_PASSWORD,
    BasicAuthChecker,
)
from exporter.web_config import hash_password, load_web_config
from tests.scrape_fixtures import free_port, make_ca, make_cert, wait_until

PASSWORD = "correct horse"
# bcrypt's lowest cost keeps the tests fast; the checks are the same at any cost.
HASH = hash_password(PASSWORD, rounds=4)
AUTH_FAILURES = "value_exporter_http_auth_failures_total"
TLS_FAILURES = "value_exporter_http_tls_handshake_failures_total"
# What the overview page, the read API and /metrics answer: every path auth must cover.
PROTECTED_PATHS = ["/", "/metrics", "/api/v1/status/config", "/api/v1/query?query=up",
                   "/api/v1/targets", "/no-such-page"]


# -- fixtures ------------------------------------------------------------------------------


def _write_daemon_config(folder: Path) -> Path:
    # One target nobody listens on: the daemon runs without any other process.
    config = {
        "listen": "127.0.0.1:0",
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
        "rule_files": [],
        "state_dir": str(folder / "state"),
        "targets": [{"name": "gone", "url": f"http://127.0.0.1:{free_port()}/metrics"}],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _write_web_config(folder: Path, **body: Any) -> Path:
    path = folder / "web.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def auth_daemon(tmp_path: Path) -> Iterator[Daemon]:
    web_path = _write_web_config(tmp_path, basic_auth_users={"alice": HASH})
    d = Daemon(str(_write_daemon_config(tmp_path)), web_config_file=str(web_path))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "ca")
    other_ca = make_ca(folder, "other-ca")
    return {
        "ca": ca,
        "server": make_cert(folder, "server", ca, "IP:127.0.0.1,DNS:localhost"),
        "client": make_cert(folder, "client", ca, "DNS:client", "clientAuth"),
        "stranger": make_cert(folder, "stranger", other_ca, "DNS:stranger", "clientAuth"),
    }


def _url(d: Daemon, path: str, scheme: str = "http") -> str:
    return f"{scheme}://{d.listen_address}{path}"


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _metric(d: Daemon, name: str, reason: str) -> float:
    return d.metrics.registry.get_sample_value(name, {"reason": reason}) or 0.0


# -- web config loading --------------------------------------------------------------------


BAD_WEB_CONFIGS = [
    ("unknown-key", "basic_auth_user:\n  alice: x\n",
     'web.yaml:1:1: top level: unknown key "basic_auth_user" (did you mean '
     '"basic_auth_users"?)'),
    ("not-bcrypt", "basic_auth_users:\n  alice: plain-password\n",
     "web.yaml:2:10: basic_auth_users.alice: not a bcrypt hash; expected a bcrypt hash"),
    ("header-not-allowed", "http_server_config:\n  headers:\n    Set-Cookie: a=b\n",
     'web.yaml:3:5: http_server_config.headers: header "Set-Cookie" cannot be set; expected '
     "one of Strict-Transport-Security"),
    ("header-bad-value", "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     'web.yaml:3:5: http_server_config.headers: invalid value "allow" for X-Frame-Options; '
     "expected one of deny, sameorigin"),
    ("http2", "http_server_config:\n  http2: true\n",
     'web.yaml:2:3: http_server_config: unsupported key "http2"; expected leave it out'),
    ("python-tag", "basic_auth_users: !!python/object/apply:os.system ['true']\n",
     "web.yaml:1:19: invalid YAML: unsupported tag !!python/object/apply:os.system; "
     "expected plain YAML without tags"),
    ("no-such-cert", "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n",
     'web.yaml:2:14: tls_server_config.cert_file: file not found: "none.crt"'),
]


@pytest.mark.parametrize(("text", "first_line"), [c[1:] for c in BAD_WEB_CONFIGS],
                         ids=[c[0] for c in BAD_WEB_CONFIGS])
def test_bad_web_config_is_reported_with_its_position(tmp_path: Path, text: str,
                                                      first_line: str) -> None:
    """Every mistake in a web config is an error at file:line:col with what was expected."""
    path = tmp_path / "web.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_web_config(str(path))
    lines = [line.replace(str(tmp_path) + "/", "") for line in info.value.lines()]
    assert lines[0].startswith(first_line), lines


TLS_POLICY_ERRORS = [
    ("ca-without-policy", {"client_ca_file": "ca.crt"},
     "client CA set without a client auth policy"),
    ("policy-without-ca", {"client_auth_type": "RequireAndVerifyClientCert"},
     "RequireAndVerifyClientCert needs client_ca_file"),
    ("unverified-mode", {"client_auth_type": "RequireAnyClientCert"},
     "RequireAnyClientCert is not supported"),
    ("versions-crossed", {"min_version": "TLS13", "max_version": "TLS12"},
     "max_version TLS12 is below min_version TLS13"),
    ("unknown-suite", {"cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]},
     'unknown value "TLS_RSA_WITH_RC4_128_SHA"'),
]


@pytest.mark.parametrize(("extra", "message"), [c[1:] for c in TLS_POLICY_ERRORS],
                         ids=[c[0] for c in TLS_POLICY_ERRORS])
def test_tls_policy_mistakes_are_errors(tmp_path: Path, pki: dict[str, tuple[Path, Path]],
                                        extra: dict[str, Any], message: str) -> None:
    """Client-certificate and version settings that cannot work are refused at load time."""
    (tmp_path / "ca.crt").write_bytes(pki["ca"][0].read_bytes())
    tls = {"cert_file": str(pki["server"][0]), "key_file": str(pki["server"][1]), **extra}
    path = _write_web_config(tmp_path, tls_server_config=tls)
    with pytest.raises(UserError) as info:
        load_web_config(str(path))
    assert any(message in line for line in info.value.lines()), info.value.lines()


def test_mismatched_key_is_a_load_error(tmp_path: Path, pki: dict[str, tuple[Path, Path]]
                                        ) -> None:
    """A key that does not belong to the certificate fails the load, not every handshake."""
    tls = {"cert_file": str(pki["server"][0]), "key_file": str(pki["client"][1])}
    path = _write_web_config(tmp_path, tls_server_config=tls)
    with pytest.raises(UserError) as info:
        load_web_config(str(path))
    assert "cannot load cert_file and key_file" in info.value.lines()[0]


def test_check_web_config_command(tmp_path: Path, pki: dict[str, tuple[Path, Path]],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`check web-config` says OK with a summary for a good file and exits 1 on a bad one."""
    # Relative paths start at the web config's folder, as in exporter-toolkit.
    for name in ("server", "ca"):
        (tmp_path / f"{name}.crt").write_bytes(pki[name][0].read_bytes())
        (tmp_path / f"{name}.key").write_bytes(pki[name][1].read_bytes())
    good = _write_web_config(
        tmp_path, tls_server_config={"cert_file": "server.crt", "key_file": "server.key",
                                     "client_auth_type": "RequireAndVerifyClientCert",
                                     "client_ca_file": "ca.crt"},
        basic_auth_users={"alice": HASH, "bob": HASH}, protect_health_endpoints=True)
    assert main(["check", "web-config", str(good)]) == 0
    assert capsys.readouterr().out == ("OK: TLS on, client certificates: "
                                       "RequireAndVerifyClientCert, 2 basic auth users, "
                                       "health endpoints protected\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("basic_auth_users: {alice: nope}\n")
    assert main(["check", "web-config", str(bad)]) == 1
    assert "not a bcrypt hash" in capsys.readouterr().err


# -- basic auth ----------------------------------------------------------------------------


MALFORMED_HEADERS = [
    ("missing", "", MISSING),
    ("bearer", "Bearer abc", MALFORMED),
    ("not-base64", "Basic !!!", MALFORMED),
    ("no-colon", "Basic " + base64.b64encode(b"alice").decode(), MALFORMED),
    ("unknown-user", _basic("mallory", PASSWORD)["Authorization"], UNKNOWN_USER),
    ("wrong-password", _basic("alice", "wrong")["Authorization"], WRONG_PASSWORD),
    ("right", _basic("alice", PASSWORD)["Authorization"], None),
]


@pytest.mark.parametrize(("header", "reason"), [c[1:] for c in MALFORMED_HEADERS],
                         ids=[c[0] for c in MALFORMED_HEADERS])
def test_basic_auth_reasons(header: str, reason: str | None) -> None:
    """Each kind of bad Authorization header gets its own failure reason; good ones pass."""
    assert BasicAuthChecker({"alice": HASH.encode()}).check(header) == reason


def test_successful_checks_are_cached() -> None:
    """Repeating the same credentials runs bcrypt once; new credentials run it again."""
    checker = BasicAuthChecker({"alice": HASH.encode()})
    good, bad = _basic("alice", PASSWORD)["Authorization"], _basic("alice", "x")["Authorization"]
    for _ in range(5):
        assert checker.check(good) is None
    assert checker.bcrypt_checks == 1
    assert checker.check(bad) == WRONG_PASSWORD
    assert checker.check(bad) == WRONG_PASSWORD
    # one run for the good password, one for the bad: 2
    assert checker.bcrypt_checks == 2


@pytest.mark.parametrize("path", PROTECTED_PATHS)
def test_endpoints_need_credentials(auth_daemon: Daemon, path: str) -> None:
    """Without or with wrong credentials every page is 401 with a challenge; right ones pass."""
    for headers in ({}, _basic("alice", "wrong")):
        response = requests.get(_url(auth_daemon, path), headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="value-exporter"')
    response = requests.get(_url(auth_daemon, path), headers=_basic("alice", PASSWORD),
                            timeout=5)
    assert response.status_code != 401


def test_failed_logins_are_counted(auth_daemon: Daemon) -> None:
    """Wrong passwords, unknown users and missing credentials count under their reasons."""
    url = _url(auth_daemon, "/metrics")
    for _ in range(3):
        requests.get(url, headers=_basic("alice", "wrong"), timeout=5)
    requests.get(url, headers=_basic("mallory", "x"), timeout=5)
    requests.get(url, timeout=5)
    body = requests.get(url, headers=_basic("alice", PASSWORD), timeout=5).text
    assert f'{AUTH_FAILURES}{{reason="wrong_password"}} 3.0' in body
    assert f'{AUTH_FAILURES}{{reason="unknown_user"}} 1.0' in body
    assert f'{AUTH_FAILURES}{{reason="missing"}} 1.0' in body


def test_health_endpoints_stay_open_by_default(auth_daemon: Daemon) -> None:
    """Probes reach /-/healthy and /-/ready without credentials; /-/reload needs them."""
    assert requests.get(_url(auth_daemon, "/-/healthy"), timeout=5).status_code == 200
    assert requests.get(_url(auth_daemon, "/-/ready"), timeout=5).status_code in (200, 503)
    assert requests.post(_url(auth_daemon, "/-/reload"), timeout=5).status_code == 401
    assert requests.post(_url(auth_daemon, "/-/reload"), headers=_basic("alice", PASSWORD),
                         timeout=5).status_code == 200


def test_protect_health_endpoints_closes_them(tmp_path: Path) -> None:
    """With protect_health_endpoints: true the probes need credentials too."""
    web_path = _write_web_config(tmp_path, basic_auth_users={"alice": HASH},
                                 protect_health_endpoints=True)
    d = Daemon(str(_write_daemon_config(tmp_path)), web_config_file=str(web_path))
    d.start()
    try:
        for path in ("/-/healthy", "/-/ready"):
            assert requests.get(_url(d, path), timeout=5).status_code == 401
        assert requests.get(_url(d, "/-/healthy"), headers=_basic("alice", PASSWORD),
                            timeout=5).status_code == 200
    finally:
        d.stop()


def test_reload_rereads_the_web_config(auth_daemon: Daemon) -> None:
    """A new password applies after POST /-/reload; a broken web config keeps the old one."""
    assert auth_daemon.web_config_file is not None
    web_path = Path(auth_daemon.web_config_file)
    web_path.write_text(yaml.safe_dump({"basic_auth_users": {"alice": hash_password("new", 4)}}))
    old, new = _basic("alice", PASSWORD), _basic("alice", "new")
    assert requests.post(_url(auth_daemon, "/-/reload"), headers=old, timeout=5).status_code == 200
    assert requests.get(_url(auth_daemon, "/metrics"), headers=old, timeout=5).status_code == 401
    assert requests.get(_url(auth_daemon, "/metrics"), headers=new, timeout=5).status_code == 200
    web_path.write_text("basic_auth_users: {alice: broken}\n")
    response = requests.post(_url(auth_daemon, "/-/reload"), headers=new, timeout=5)
    assert response.status_code == 500
    assert "not a bcrypt hash" in response.text
    assert requests.get(_url(auth_daemon, "/metrics"), headers=new, timeout=5).status_code == 200


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_daemon(tmp_path: Path, pki: dict[str, tuple[Path, Path]]) -> Iterator[Daemon]:
    web_path = _write_web_config(tmp_path, tls_server_config={
        "cert_file": str(pki["server"][0]), "key_file": str(pki["server"][1]),
        "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(pki["ca"][0]),
    }, http_server_config={"headers": {"Strict-Transport-Security": "max-age=31536000"}})
    d = Daemon(str(_write_daemon_config(tmp_path)), web_config_file=str(web_path))
    d.start()
    yield d
    d.stop()


def test_tls_with_a_trusted_client_certificate(tls_daemon: Daemon,
                                               pki: dict[str, tuple[Path, Path]]) -> None:
    """A client with a certificate from the client CA is served, with the configured header."""
    response = requests.get(_url(tls_daemon, "/-/healthy", "https"), verify=str(pki["ca"][0]),
                            cert=tuple(map(str, pki["client"])), timeout=5)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(("client", "reason"), [
    (None, "client_certificate_missing"),
    ("stranger", "client_certificate_untrusted"),
], ids=["no-certificate", "untrusted-certificate"])
def test_tls_handshake_fails_and_is_counted(tls_daemon: Daemon, pki: dict[str, tuple[Path, Path]],
                                            client: str | None, reason: str) -> None:
    """A missing or untrusted client certificate fails the handshake and counts its reason."""
    cert = tuple(map(str, pki[client])) if client else None
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(_url(tls_daemon, "/-/healthy", "https"), verify=str(pki["ca"][0]),
                     cert=cert, timeout=5)
    assert wait_until(lambda: _metric(tls_daemon, TLS_FAILURES, reason) == 1.0, 5)


def test_plain_http_to_the_tls_port_is_refused(tls_daemon: Daemon) -> None:
    """Plain HTTP on the TLS port gets no page and counts as a failed handshake."""
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(_url(tls_daemon, "/-/healthy"), timeout=5)
    assert wait_until(lambda: _metric(tls_daemon, TLS_FAILURES, "plain_http") == 1.0, 5)


def test_tls_minimum_version_is_enforced(tmp_path: Path, pki: dict[str, tuple[Path, Path]]
                                         ) -> None:
    """With min_version TLS13 a TLS 1.2 client fails the handshake."""
    web_path = _write_web_config(tmp_path, tls_server_config={
        "cert_file": str(pki["server"][0]), "key_file": str(pki["server"][1]),
        "min_version": "TLS13"})
    d = Daemon(str(_write_daemon_config(tmp_path)), web_config_file=str(web_path))
    d.start()
    try:
        context = ssl.create_default_context(cafile=str(pki["ca"][0]))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        host, _, port = d.listen_address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock, \
                pytest.raises(ssl.SSLError):
            context.wrap_socket(sock, server_hostname="127.0.0.1")
        assert wait_until(lambda: _metric(d, TLS_FAILURES, "protocol_version") == 1.0, 5)
    finally:
        d.stop()


# -- HTTP hardening (a bare server, no daemon) -----------------------------------------------


@pytest.fixture
def server() -> Iterator[WebServer]:
    router = Router()
    router.add("/", lambda r: Response.text("home\n"))
    router.add("/metrics", lambda r: Response.text("up 1\n"))
    router.add("/-/reload", lambda r: Response.text(""), ("POST",))
    router.add("/api/v1/label/<name>/values", lambda r: Response.json({"name": r.path_args[0]}))
    s = WebServer("127.0.0.1:0", router)
    s.start()
    yield s
    s.stop()


def _raw(s: WebServer, method: str, path: str, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


TRAVERSALS = ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
              "/metrics/../../etc/passwd", "//etc/passwd", "/%252e%252e/etc/passwd",
              "/api/", "/api/v1/", "/static/"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_traversal_or_directory_listing(server: WebServer, path: str) -> None:
    """Dot segments, encoded or not, and folder paths find nothing: 404, no file content."""
    status, _, body = _raw(server, "GET", path)
    assert status == 404
    assert b"root:" not in body


def test_encoded_traversal_in_a_path_argument_stays_a_string(server: WebServer) -> None:
    """A label name made of ../ reaches the handler as text and never as a file path."""
    status, _, body = _raw(server, "GET", "/api/v1/label/..%2F..%2Fetc%2Fpasswd/values")
    assert status == 200
    assert body == b'{"name":"../../etc/passwd"}'


METHODS = [
    ("post-metrics", "POST", "/metrics", 405, "GET, HEAD"),
    ("get-reload", "GET", "/-/reload", 405, "POST"),
    ("put-reload", "PUT", "/-/reload", 405, "POST"),
    ("delete-page", "DELETE", "/", 405, "GET, HEAD"),
    ("missing", "GET", "/nothing", 404, None),
]


@pytest.mark.parametrize(("method", "path", "status", "allow"), [m[1:] for m in METHODS],
                         ids=[m[0] for m in METHODS])
def test_status_codes_and_allow_header(server: WebServer, method: str, path: str, status: int,
                                       allow: str | None) -> None:
    """Wrong methods get 405 with the allowed ones listed; unknown paths get 404."""
    got, headers, _ = _raw(server, method, path)
    assert got == status
    assert headers.get("Allow") == allow


def test_head_has_headers_and_no_body(server: WebServer) -> None:
    """HEAD answers like GET without the body (Content-Length still says its size)."""
    status, headers, body = _raw(server, "HEAD", "/metrics")
    # "up 1\n" is 5 bytes
    assert (status, headers["Content-Length"], body) == (200, "5", b"")


def test_security_headers_on_every_response(server: WebServer) -> None:
    """Pages and errors carry nosniff, frame denial, no referrer and a restrictive CSP."""
    for path in ("/", "/nothing"):
        _, headers, _ = _raw(server, "GET", path)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_request_limits(server: WebServer) -> None:
    """Oversized bodies, too many headers and too large headers are refused."""
    status, _, _ = _raw(server, "POST", "/-/reload", {"Content-Length": str(2 << 20)})
    assert status == 413
    many = {f"X-H{i}": "v" for i in range(101)}  # the standard library's cap is 100
    assert _raw(server, "GET", "/", many)[0] == 431
    big = {f"X-Big{i}": "v" * 30_000 for i in range(3)}  # 90 kB > 64 KiB, each line fits
    assert _raw(server, "GET", "/", big)[0] == 431


def test_slow_loris_is_cut_off(server: WebServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client sending headers one byte at a time is disconnected; others are served meanwhile."""
    monkeypatch.setattr(web, "REQUEST_DEADLINE_SECONDS", 1.0)
    closed = threading.Event()
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            try:
                sock.sendall(b"GET / HTTP/1.1\r\n")
                for byte in b"X-Slow: " + b"a" * 1000:
                    if stop.wait(0.3):
                        return
                    sock.sendall(bytes([byte]))
            except OSError:
                closed.set()
                return
            closed.set()  # sent everything without being cut off: the check below fails

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    assert _raw(server, "GET", "/")[0] == 200  # the server keeps answering others
    assert wait_until(lambda: server.deadlines.expired >= 1, 20)
    assert closed.wait(20)
    stop.set()
    thread.join(5)


# -- data, never code ----------------------------------------------------------------------


CODE_TAGS = ["!!python/object/apply:os.system ['touch {marker}']",
             "!!python/object/new:os.system ['touch {marker}']",
             "!!python/name:os.system", "!!python/object:builtins.dict {{}}",
             "!!binary aGVsbG8=", "!Ref something"]


@pytest.mark.parametrize("tag", CODE_TAGS, ids=lambda t: t.split()[0])
def test_yaml_tags_never_construct_objects(tmp_path: Path, tag: str) -> None:
    """Config, rule and web config files with object-building tags are errors; nothing runs."""
    marker = tmp_path / "ran"
    value = tag.format(marker=marker)
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - record: a\n"
                     f"        expr: {value}\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"targets:\n  - name: t\n    url: {value}\n")
    web_config = tmp_path / "web.yaml"
    web_config.write_text(f"basic_auth_users: {value}\n")
    loaders = [lambda: load_rule_files([str(rules)], []), lambda: load_config(str(config)),
               lambda: load_web_config(str(web_config))]
    for load in loaders:
        with pytest.raises(UserError) as info:
            load()
        assert any("unsupported tag" in line for line in info.value.lines()), info.value.lines()
    assert not marker.exists()


# The whole list of template functions (README, Security): none reads files or runs commands.
TEMPLATE_FUNCTIONS = {
    "query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml", "match",
    "title", "toUpper", "toLower", "sortByLabel", "stripPort", "humanize", "humanize1024",
    "humanizeDuration", "humanizePercentage", "pathPrefix", "externalURL", "parseDuration",
}


def test_template_functions_are_the_documented_list() -> None:
    """The template functions are exactly the documented Prometheus ones."""
    assert set(prometheus_functions(FuncContext())) == TEMPLATE_FUNCTIONS


@pytest.mark.parametrize("text", ['{{ readFile "/etc/passwd" }}', '{{ exec "id" }}',
                                  '{{ env "HOME" }}', '{{ include "/etc/passwd" }}'])
def test_templates_cannot_read_files_or_run_commands(text: str) -> None:
    """File, command and environment functions do not exist: the template does not parse."""
    problem = check_template(text)
    assert problem is not None and "not defined" in problem


def test_templates_cannot_reach_python_internals() -> None:
    """Field access walks maps and values only; Python attributes are not reachable."""
    def expand(text: str) -> str:
        return expand_alert_template(text, alert_name="A", labels={"job": "x"}, value=1.0)

    # A label nobody set: Prometheus expands with missingkey=zero, so "".
    assert expand("{{ $labels.__class__ }}") == ""
    assert expand("{{ .Value.__class__ }}").endswith(
        "can't evaluate field __class__ in type float64>")
    assert "<class" not in expand("{{ $labels.job.__class__.__mro__ }}")


def test_reload_accepts_post_only(auth_daemon: Daemon) -> None:
    """/-/reload, the only endpoint that changes state, answers GET and PUT with 405."""
    headers = _basic("alice", PASSWORD)
    for method in ("GET", "PUT", "DELETE"):
        response = requests.request(method, _url(auth_daemon, "/-/reload"), headers=headers,
                                    timeout=5)
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"



@pytest.mark.parametrize("shape", ["sidecar", "per-service"])
def test_kubernetes_manifests_use_a_web_config_from_a_secret(shape: str) -> None:
    """The container reads its web config from a mounted Secret; probes need no credentials."""
    folder = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes" / shape
    docs = [d for d in yaml.safe_load_all((folder / "deployment.yaml").read_text()) if d]
    pod = next(d for d in docs if d["kind"] == "Deployment"
               and any(c["name"] == "value-exporter"
                       for c in d["spec"]["template"]["spec"]["containers"]))["spec"]["template"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "value-exporter")
    args = container["args"]
    web_file = Path(args[args.index("--web.config.file") + 1])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(web_file.parent))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "shop-value-exporter-web"
    # Health endpoints are open unless protect_health_endpoints is set: probes carry no auth.
    assert "httpHeaders" not in container["livenessProbe"]["httpGet"]
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert all("basicAuth" in e for e in monitor["spec"]["endpoints"])


def test_dockerfile_healthcheck_speaks_tls_when_told(tmp_path: Path,
                                                     pki: dict[str, tuple[Path, Path]]) -> None:
    """The image's HEALTHCHECK passes over TLS with VALUE_EXPORTER_HEALTH_SCHEME=https."""
    dockerfile = Path(__file__).resolve().parent.parent / "Dockerfile"
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    line = next(x for x in text.splitlines() if x.strip().startswith("HEALTHCHECK"))
    command = json.loads(line[line.index("CMD ") + 4:])
    command[0] = sys.executable
    web_path = _write_web_config(tmp_path, tls_server_config={
        "cert_file": str(pki["server"][0]), "key_file": str(pki["server"][1])},
        basic_auth_users={"alice": HASH})
    d = Daemon(str(_write_daemon_config(tmp_path)), web_config_file=str(web_path))
    d.start()
    try:
        env = {**os.environ, "VALUE_EXPORTER_LISTEN": d.listen_address}
        plain = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
        assert plain.returncode != 0  # plain HTTP cannot reach a TLS port
        env["VALUE_EXPORTER_HEALTH_SCHEME"] = "https"
        tls = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
        assert tls.returncode == 0, tls.stderr
    finally:
        d.stop()


def test_overview_page_keeps_its_security_headers_behind_auth(auth_daemon: Daemon) -> None:
    """The overview page, once authenticated, still forbids framing, sniffing and caching."""
    response = requests.get(_url(auth_daemon, "/"), headers=_basic("alice", PASSWORD), timeout=5)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
