"""Loopback targets and job builders shared by the scrape tests."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exporter.config_scrape import ScrapeJob, ScrapeLimits, StaticConfig
from exporter.durations import Duration
from exporter.labels import Labels, make_labels
from exporter.store import SeriesStore

Handler = Callable[[BaseHTTPRequestHandler], None]
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Target:
    """An HTTP(S) server on 127.0.0.1 with a free port whose responses the test chooses."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.seen: list[dict[str, str]] = []  # request headers, one dict per request
        self.stopping = threading.Event()
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.seen.append(dict(self.headers))
                try:
                    outer.handler(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), _H)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def respond(body: bytes | str, content_type: str | None = TEXT, status: int = 200,
            headers: dict[str, str] | None = None) -> Handler:
    """A handler answering every GET with this response."""
    data = body.encode() if isinstance(body, str) else body

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        if content_type is not None:
            h.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_job(address: str, *, timeout_ms: int = 2000, name: str = "test",
             labels: dict[str, str] | None = None, **changes: Any) -> ScrapeJob:
    """A scrape job for one static address; `changes` are ScrapeJob fields (limits as a dict)."""
    if isinstance(changes.get("limits"), dict):
        changes["limits"] = ScrapeLimits(**changes["limits"])
    job = ScrapeJob(name, Duration(max(timeout_ms, 15000)), Duration(timeout_ms),
                    static_configs=(StaticConfig((address,), make_labels(labels or {})),))
    return dataclasses.replace(job, **changes)


def series_labels(name: str, job: ScrapeJob, **labels: str) -> Labels:
    """The stored label set of a series of the job's only target."""
    target = job.static_targets()[0]
    return make_labels({**dict(target.labels), "__name__": name, **labels})


def last_value(store: SeriesStore, labels: Labels) -> tuple[int, float] | None:
    """The newest stored sample of a series (stale markers included)."""
    series = store.get(labels)
    return None if series is None else series.last()


def run_openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA in folder: (certificate, key)."""
    crt, key = folder / f"{name}.crt", folder / f"{name}.key"
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
                "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return crt, key


def make_cert(folder: Path, name: str, ca: tuple[Path, Path], san: str,
              usage: str = "serverAuth") -> tuple[Path, Path]:
    """A certificate for `san` signed by ca: (certificate, key)."""
    crt, key, csr = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                   f"keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n")
    run_openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=folder)
    run_openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext),
                cwd=folder)
    return crt, key


def slow_chunks(h: BaseHTTPRequestHandler, chunks: Iterator[bytes], pause: float,
                stop: threading.Event) -> None:
    """Send a 200 text response whose body arrives chunk by chunk, `pause` seconds apart."""
    h.send_response(200)
    h.send_header("Content-Type", TEXT)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    for chunk in chunks:
        if stop.wait(pause):
            return
        h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        h.wfile.flush()
    h.wfile.write(b"0\r\n\r\n")


def wait_until(predicate: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
