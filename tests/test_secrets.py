"""Tests that secrets come from files or the environment, are reread, and are never shown."""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.cli import main
from exporter.config import load_config
from exporter.daemon import Daemon
from exporter.errors import UserError
from tests.scrape_fixtures import wait_until

RULES = """
groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: ticket}
"""
# Every endpoint a reader of the daemon can reach (GET), with the parameters they need.
ENDPOINTS = ["/", "/metrics", "/-/healthy", "/-/ready", "/api/v1/status/config",
             "/api/v1/status/buildinfo", "/api/v1/targets", "/api/v1/rules", "/api/v1/alerts",
             "/api/v1/query?query=up", "/api/v1/query?query=sum(", "/api/v1/labels",
             "/api/v1/series?match[]=up", "/api/v1/label/job/values",
             "/api/v1/query_range?query=up&start=0&end=60&step=15"]


class _Echo(BaseHTTPRequestHandler):
    """Refuses every request with 401 and echoes the Authorization header in the body."""

    protocol_version = "HTTP/1.1"
    seen: list[str]

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        body = f"denied: {auth}\n".encode()
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Echo", (_Echo,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _secrets() -> dict[str, str]:
    """One unique secret per secret field, so a leak names the field it came from."""
    tag = uuid.uuid4().hex
    names = ["basic_inline", "basic_file", "basic_env", "bearer_inline", "bearer_file",
             "bearer_env", "am_basic_file", "am_bearer_inline", "backfill_bearer_file",
             "basic_file_rotated", "simple_bearer_file"]
    return {name: f"planted-{name}-{tag}" for name in names}


def _write(folder: Path, address: str, secrets: dict[str, str]) -> Path:
    for name in ("basic_file", "bearer_file", "am_basic_file", "backfill_bearer_file",
                 "simple_bearer_file"):
        (folder / f"{name}.txt").write_text(secrets[name] + "\n")
    (folder / "rules.yaml").write_text(RULES)

    def job(name: str, auth: dict[str, Any]) -> dict[str, Any]:
        return {"job_name": name, "static_configs": [{"targets": [address]}], **auth}

    config = {
        "listen": "127.0.0.1:0",
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
        "rule_files": ["rules.yaml"],
        "state_dir": str(folder / "state"),
        "targets": [{"name": "simple", "url": f"http://{address}/metrics",
                     "bearer_token_file": "simple_bearer_file.txt"}],
        "scrape_configs": [
            job("basic-inline", {"basic_auth": {"username": "u1",
                                                "password": secrets["basic_inline"]}}),
            job("basic-file", {"basic_auth": {"username": "u2",
                                              "password_file": "basic_file.txt"}}),
            job("basic-env", {"basic_auth": {"username": "u3", "password_env": "VE_TEST_PW"}}),
            job("bearer-inline", {"authorization": {"credentials": secrets["bearer_inline"]}}),
            job("bearer-file", {"authorization": {"credentials_file": "bearer_file.txt"}}),
            job("bearer-env", {"authorization": {"credentials_env": "VE_TEST_TOKEN"}}),
        ],
        "alerting": {"alertmanagers": [
            {"static_configs": [{"targets": [address]}],
             "basic_auth": {"username": "am", "password_file": "am_basic_file.txt"}},
            {"static_configs": [{"targets": [address]}],
             "authorization": {"credentials": secrets["am_bearer_inline"]}},
        ]},
        "backfill": {"prometheus_url": f"http://{address}",
                     "authorization": {"credentials_file": "backfill_bearer_file.txt"}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _forbidden(secrets: dict[str, str]) -> list[str]:
    """The secrets, and the basic auth headers that carry them (base64 of user:password)."""
    users = {"basic_inline": "u1", "basic_file": "u2", "basic_env": "u3", "am_basic_file": "am",
             "basic_file_rotated": "u2"}
    encoded = [base64.b64encode(f"{users[n]}:{secrets[n]}".encode()).decode() for n in users]
    return [*secrets.values(), *encoded]


def _sent(seen: list[str], secret: str) -> bool:
    """Whether some request carried the secret (as bearer token or inside basic auth)."""
    for header in list(seen):
        scheme, _, token = header.partition(" ")
        text = base64.b64decode(token).decode() if scheme == "Basic" else token
        if text.endswith(secret):
            return True
    return False


def test_secrets_never_appear_in_logs_pages_or_api(
        tmp_path: Path, echo: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """Planted secrets reach the targets and Alertmanagers, and no log line or page shows them."""
    address, seen = echo
    secrets = _secrets()
    monkeypatch.setenv("VE_TEST_PW", secrets["basic_env"])
    monkeypatch.setenv("VE_TEST_TOKEN", secrets["bearer_env"])
    caplog.set_level(logging.DEBUG)
    path = _write(tmp_path, address, secrets)
    assert main(["check", "config", str(path)]) == 0
    d = Daemon(str(path))
    d.start()
    bodies: list[str] = []
    try:
        # Every secret was sent (so the scan below looks at a daemon that used them all).
        sent = [n for n in secrets if n not in ("backfill_bearer_file", "basic_file_rotated")]
        assert wait_until(lambda: all(_sent(seen, secrets[n]) for n in sent), 20), seen
        errors = "value_exporter_notifications_errors_total"
        assert wait_until(lambda: sum(
            d.metrics.registry.get_sample_value(errors, {"alertmanager": a}) or 0
            for a in (f"http://{address}/api/v2/alerts",)) >= 1, 20)
        # A rotated password file is read again for the next scrape, without a reload.
        (tmp_path / "basic_file.txt").write_text(secrets["basic_file_rotated"])
        assert wait_until(lambda: _sent(seen, secrets["basic_file_rotated"]), 20)
        assert d.reload() == []
        bodies.append(requests.post(f"http://{d.listen_address}/-/reload", timeout=5).text)
        for endpoint in ENDPOINTS:
            for method in ("GET", "POST"):
                response = requests.request(method, f"http://{d.listen_address}{endpoint}",
                                            timeout=5)
                bodies.append(response.text)
                bodies.extend(f"{k}: {v}" for k, v in response.headers.items())
        config_page = requests.get(f"http://{d.listen_address}/api/v1/status/config",
                                   timeout=5).json()["data"]["yaml"]
    finally:
        d.stop()
    # The config page shows that secrets are set, and where from, but not what they are.
    assert config_page.count("<secret>") == 3  # the three inline ones
    assert "password_env: VE_TEST_PW" in config_page
    logs = caplog.text  # every record, with its exception text
    assert "event=scrape_failed" in logs and "event=notification_failed" in logs
    captured = capsys.readouterr()
    everything = "\n".join([logs, *bodies, captured.out, captured.err])
    for secret in _forbidden(secrets):
        assert secret not in everything


def test_secrets_stay_out_of_error_messages(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A config with secrets in wrong places reports the problems without the values."""
    secret = f"planted-{uuid.uuid4().hex}"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"scrape_configs": [
        {"job_name": "a", "static_configs": [{"targets": ["127.0.0.1:9"]}],
         "basic_auth": {"username": "u", "password": [secret], "passwd": secret}},
        {"job_name": "b", "static_configs": [{"targets": ["127.0.0.1:9"]}],
         "authorization": {"credentials": {secret: 1}, "credentials_env": "VE_UNSET_FOR_TEST"}},
        {"job_name": "c", "static_configs": [{"targets": ["127.0.0.1:9"]}],
         "basic_auth": {"username": "u", "password": secret, "password_env": "X"}},
    ]}))
    assert main(["check", "config", str(tmp_path / "config.yaml")]) == 1
    err = capsys.readouterr().err
    # Problems were found in each job, all reported at once.
    assert "scrape_configs[0]" in err and "scrape_configs[1]" in err and \
        "scrape_configs[2]" in err
    assert secret not in err


def test_environment_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """password_env and credentials_env read the variable at load; an unset one is an error."""
    monkeypatch.setenv("VE_TEST_PW", "from-env")
    path = tmp_path / "config.yaml"
    path.write_text(
        "scrape_configs:\n"
        "  - job_name: a\n"
        "    static_configs: [{targets: ['127.0.0.1:9']}]\n"
        "    basic_auth: {username: u, password_env: VE_TEST_PW}\n"
        "  - job_name: b\n"
        "    static_configs: [{targets: ['127.0.0.1:9']}]\n"
        "    authorization: {credentials_env: VE_TEST_UNSET}\n")
    monkeypatch.delenv("VE_TEST_UNSET", raising=False)
    with pytest.raises(UserError) as info:
        load_config(str(path))
    # line 7: 37 characters precede VE_TEST_UNSET, so it starts in column 38
    assert info.value.lines() == [
        f'{path}:7:38: scrape_configs[1] "b", authorization.credentials_env: environment '
        'variable "VE_TEST_UNSET" is not set; expected the name of a set environment variable']
    monkeypatch.setenv("VE_TEST_UNSET", "token")
    job = load_config(str(path)).scrape_jobs[0]
    assert job.http.basic_auth is not None and job.http.basic_auth.password is not None
    assert job.http.basic_auth.password.reveal() == "from-env"
    assert repr(job.http.basic_auth) == ("BasicAuth(username='u', password=<secret>, "
                                         "password_file=None, password_env='VE_TEST_PW')")


def test_reload_rereads_environment_secrets(tmp_path: Path, echo: tuple[str, list[str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment secret read again on reload is what the next scrape sends."""
    address, seen = echo
    monkeypatch.setenv("VE_TEST_TOKEN", "first-token")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "state_dir": str(tmp_path / "s"),
        "scrape_configs": [{"job_name": "t", "static_configs": [{"targets": [address]}],
                            "authorization": {"credentials_env": "VE_TEST_TOKEN"}}]}))
    d = Daemon(str(path))
    d.start()
    try:
        assert wait_until(lambda: "Bearer first-token" in seen, 10)
        monkeypatch.setenv("VE_TEST_TOKEN", "second-token")
        assert d.reload() == []
        assert wait_until(lambda: "Bearer second-token" in seen, 10)
    finally:
        d.stop()
