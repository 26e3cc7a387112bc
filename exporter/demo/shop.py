"""Demo shop server: serves the simulated shop's metrics and a small control API over HTTP."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder

from exporter.demo.collector import ShopCollector
from exporter.demo.simulation import DEFAULT_SEED, Burst, Clock, Simulation

DEFAULT_LISTEN = "127.0.0.1:9878"
MAX_BURST_SECONDS = 86400.0


def parse_listen(listen: str) -> tuple[str, int]:
    """Split HOST:PORT (IPv6 as [::1]:PORT); the host is required so nothing binds by accident."""
    host, sep, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address {listen!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port_text)


class _ShopHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck scrape must not keep the process alive at shutdown

    def __init__(self, host: str, port: int, simulation: Simulation) -> None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        self.address_family = infos[0][0]
        self.simulation = simulation
        self.collector = ShopCollector(simulation)
        self.text_collector = ShopCollector(simulation, whole_buckets=False)
        address = infos[0][4]
        super().__init__((str(address[0]), int(address[1])), _ShopHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a reverse DNS lookup that can hang.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)


def _burst_json(burst: Burst | None) -> dict[str, Any]:
    if burst is None:
        return {"burst": None}
    return {"burst": {"started": burst.started, "until": burst.until,
                      "error_ratio": burst.error_ratio, "requested": burst.requested}}


class _ShopHandler(BaseHTTPRequestHandler):
    server: _ShopHTTPServer
    # HTTP/1.0 closes every connection after its response, so stop() leaves no kept-alive
    # connection served by a handler thread; a stalled client is dropped after the timeout.
    timeout = 30

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._metrics()
        elif path in ("/-/healthy", "/-/ready"):
            self._send(200, b"Demo shop is Healthy.\n" if path == "/-/healthy"
                       else b"Demo shop is Ready.\n")
        elif path == "/-/burst":
            self._send_json(200, _burst_json(self.server.simulation.current_burst()))
        elif path == "/":
            self._send(200, b'<html><head><title>Demo shop</title></head><body><h1>Demo shop'
                       b'</h1><p><a href="/metrics">Metrics</a></p></body></html>\n', "text/html")
        elif path.startswith("/-/burst"):
            self._send(405, b"Method Not Allowed: use POST.\n")
        else:
            self._send(404, b"Not Found.\n")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        self._drain_body()
        simulation = self.server.simulation
        if url.path == "/-/burst/stop":
            simulation.stop_burst()
            self._send_json(200, _burst_json(None))
        elif url.path == "/-/burst":
            query = parse_qs(url.query)
            try:
                seconds = float(query.get("seconds", ["60"])[-1])
                ratio = float(query.get("error_ratio", ["0.5"])[-1])
                if seconds > MAX_BURST_SECONDS:
                    raise ValueError(f"seconds must be at most {MAX_BURST_SECONDS:g}")
                burst = simulation.start_burst(seconds, ratio)
            except ValueError as err:
                self._send(400, f"Bad Request: {err}\n".encode())
                return
            self._send_json(200, _burst_json(burst))
        elif url.path in ("/metrics", "/-/healthy", "/-/ready", "/"):
            self._send(405, b"Method Not Allowed: use GET.\n")
        else:
            self._send(404, b"Not Found.\n")

    def _metrics(self) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        body = encoder(self.server.collector if openmetrics else self.server.text_collector)
        headers = {}
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(200, body, content_type, headers)

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(min(length, 65536))

    def _send_json(self, code: int, payload: dict[str, Any]) -> None:
        self._send(code, (json.dumps(payload) + "\n").encode(), "application/json")

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every few seconds would drown the one-line-per-event log


class ShopServer:
    """A running demo shop; stop() shuts the server down and frees the port."""

    def __init__(self, server: _ShopHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False
        self.host = server.server_name
        self.port = server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def simulation(self) -> Simulation:
        return self._server.simulation

    def burst(self, seconds: float, error_ratio: float) -> Burst:
        """Start an error burst, as POST /-/burst does."""
        return self.simulation.start_burst(seconds, error_ratio)

    def stop_burst(self) -> None:
        self.simulation.stop_burst()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> ShopServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_shop(
    listen: str = "127.0.0.1:0",
    *,
    deterministic: bool = False,
    clock: Clock | None = None,
    seed: int = DEFAULT_SEED,
) -> ShopServer:
    """Start the demo shop on listen (port 0 picks a free port) in a background thread."""
    host, port = parse_listen(listen)
    simulation = Simulation(deterministic=deterministic, clock=clock or time.time, seed=seed)
    server = _ShopHTTPServer(host, port, simulation)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="demo-shop", daemon=True
    )
    thread.start()
    return ShopServer(server, thread)


def run_shop_command(listen: str, *, deterministic: bool) -> int:
    """`value-exporter demo --shop-only`: serve until SIGTERM or SIGINT; exit code."""
    try:
        shop = start_shop(listen, deterministic=deterministic)
    except ValueError as err:
        print(f"value-exporter demo: --shop-listen: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"value-exporter demo: --shop-listen: cannot listen on {listen!r}: "
              f"{(err.strerror or str(err)).lower()}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    mode = "deterministic" if deterministic else "random"
    print(f'level=info msg="demo shop listening" url={shop.url}/metrics mode={mode}',
          file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        shop.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print('level=info msg="demo shop stopped"', file=sys.stderr, flush=True)
    return 0
