"""HTTP server: routes requests to handlers with size limits, timeouts and safe headers."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("value_exporter.web")

MAX_BODY_BYTES = 1 << 20  # a query form is small; anything larger is refused
CLIENT_TIMEOUT_SECONDS = 10.0  # a client that trickles its request is cut off (slow-loris)
# The socket timeout bounds each read; a client sending one byte every few seconds passes it,
# so the request line, headers, body (and TLS handshake) must also arrive within this time.
REQUEST_DEADLINE_SECONDS = 30.0
MAX_HEADER_BYTES = 64 * 1024  # all headers together (the standard library caps count and lines)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


@dataclass(frozen=True)
class Request:
    """What a handler sees of one request."""

    method: str
    path: str
    params: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""
    path_args: tuple[str, ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query or form parameter."""
        values = self.params.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str:
        """A request header ("" when absent), case-insensitive."""
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    """What a handler returns."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def text(text: str, status: int = 200) -> Response:
        return Response(status, text.encode("utf-8"))

    @staticmethod
    def json(payload: Any, status: int = 200) -> Response:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return Response(status, body, "application/json")


Handler = Callable[[Request], Response]
# Runs before routing on (method, path, lower-cased headers): a Response refuses the request.
Guard = Callable[[str, str, Mapping[str, str]], "Response | None"]


class Router:
    """Exact paths, plus `/prefix/<arg>/suffix` patterns, each with the methods it accepts."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[list[str], dict[str, Handler]]] = []

    def add(self, path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> None:
        """Route `path` (with `<name>` placeholders) to a handler for the given methods."""
        table = dict.fromkeys(methods, handler)
        if "GET" in table:
            table.setdefault("HEAD", handler)
        if "<" in path:
            self._patterns.append((path.strip("/").split("/"), table))
        else:
            self._exact[path] = table

    def resolve(self, path: str) -> tuple[dict[str, Handler], tuple[str, ...]] | None:
        """The method table and placeholder values for a path, or None (404)."""
        if path in self._exact:
            return self._exact[path], ()
        parts = path.strip("/").split("/")
        for pattern, table in self._patterns:
            if len(pattern) != len(parts):
                continue
            args: list[str] = []
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("<"):
                    args.append(urllib.parse.unquote(got))
                elif want != got:
                    break
            else:
                return table, tuple(args)
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = CLIENT_TIMEOUT_SECONDS
    server_version = "value-exporter"
    sys_version = ""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def handle_one_request(self) -> None:
        self.server.deadlines.arm(self.connection, REQUEST_DEADLINE_SECONDS)
        try:
            super().handle_one_request()
        finally:
            self.server.deadlines.disarm(self.connection)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if sum(len(k) + len(v) + 4 for k, v in self.headers.items()) > MAX_HEADER_BYTES:
            self.send_error(431, "Request Header Fields Too Large")
            return False
        return True

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        guard = self.server.guard
        refused = guard(self.command, url.path, {k.lower(): v for k, v in self.headers.items()}
                        ) if guard is not None else None
        if refused is not None:
            self.close_connection = True  # its body (if any) stays unread
            self._send(refused)
            return
        resolved = self.server.router.resolve(url.path)
        if resolved is None:
            self._send(Response.text("404 page not found\n", 404))
            return
        table, args = resolved
        handler = table.get(self.command)
        if handler is None:
            allowed = ", ".join(sorted(table))
            self._send(Response(405, b"method not allowed\n", headers={"Allow": allowed}))
            return
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            self._send(Response.text("bad Content-Length\n", 400))
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self._send(Response.text("request body too large\n", 413))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        self.server.deadlines.disarm(self.connection)  # the handler may take its time
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if self.command == "POST" and self.headers.get_content_type() == (
            "application/x-www-form-urlencoded"
        ):
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, []).extend(values)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, url.path, params, headers, body, args)
        try:
            response = handler(request)
        except Exception:
            log.exception("event=handler_failed path=%s", url.path)
            response = Response.text("internal server error\n", 500)
        self._send(response, gzip_ok="gzip" in headers.get("accept-encoding", ""))

    def _send(self, response: Response, gzip_ok: bool = False) -> None:
        body = response.body
        headers = dict(SECURITY_HEADERS)
        headers.update(self.server.extra_headers)
        headers.update(response.headers)
        if gzip_ok and len(body) > 1024:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("event=http_request client=%s %s", self.client_address[0], format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, oversized headers) end here; answer plainly.
        text = (message or HTTPStatus(code).phrase) + "\n"
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(Response.text(text, code))


class Deadlines:
    """One watchdog thread that shuts down connections still reading a request past a deadline."""

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.expired = 0  # connections cut off so far (tests read it)

    def arm(self, conn: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due[conn] = time.monotonic() + seconds

    def disarm(self, conn: socket.socket) -> None:
        with self._lock:
            self._due.pop(conn, None)

    def run(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [c for c, due in self._due.items() if due <= now]
                for conn in late:
                    del self._due[conn]
            for conn in late:
                self.expired += 1
                log.debug("event=http_request_deadline_exceeded")
                # The plain socket's shutdown: it wakes the reading thread, also under TLS.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stop.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    router: Router
    guard: Guard | None = None
    ssl_context: ssl.SSLContext | None = None
    extra_headers: Mapping[str, str] = {}
    deadlines: Deadlines
    # Called with a reason when a TLS handshake fails (the daemon counts it).
    on_tls_failure: Callable[[str], None] = staticmethod(lambda reason: None)

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, in the connection's own thread, so a slow or failing
        # client never holds up the accept loop.
        request.settimeout(CLIENT_TIMEOUT_SECONDS)
        self.deadlines.arm(request, REQUEST_DEADLINE_SECONDS)
        try:
            conn = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except OSError:
            self.deadlines.disarm(request)
            return
        self.deadlines.disarm(request)
        self.deadlines.arm(conn, REQUEST_DEADLINE_SECONDS)
        try:
            conn.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            reason = tls_failure_reason(exc)
            log.info("event=tls_handshake_failed client=%s reason=%s", client_address[0], reason)
            self.on_tls_failure(reason)
            conn.close()
            return
        finally:
            self.deadlines.disarm(conn)
        try:
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.close()


def tls_failure_reason(exc: BaseException) -> str:
    """A small fixed set of reasons for a failed handshake (a label value)."""
    text = str(getattr(exc, "reason", "") or exc).upper()
    if "PEER_DID_NOT_RETURN_A_CERTIFICATE" in text or "CERTIFICATE_REQUIRED" in text:
        return "client_certificate_missing"
    if "CERTIFICATE_VERIFY_FAILED" in text or "UNKNOWN_CA" in text or "BAD_CERTIFICATE" in text:
        return "client_certificate_untrusted"
    if "VERSION" in text or "PROTOCOL" in text:
        return "protocol_version"
    if "HTTP_REQUEST" in text:
        return "plain_http"
    if isinstance(exc, TimeoutError | socket.timeout) or "TIMED OUT" in text:
        return "timeout"
    return "other"


class WebServer:
    """Serves a router on one address in background threads."""

    def __init__(self, listen: str, router: Router) -> None:
        host, _, port = listen.rpartition(":")
        self._server = _Server((host.strip("[]") or "0.0.0.0", int(port)), _RequestHandler)
        self._server.router = router
        self._server.deadlines = Deadlines()
        self._thread: threading.Thread | None = None

    def secure(self, *, guard: Guard | None, ssl_context: ssl.SSLContext | None,
               headers: Mapping[str, str], on_tls_failure: Callable[[str], None]) -> None:
        """Set auth, TLS and extra response headers; new connections use them at once."""
        self._server.guard = guard
        self._server.ssl_context = ssl_context
        self._server.extra_headers = dict(headers)
        self._server.on_tls_failure = on_tls_failure

    @property
    def deadlines(self) -> Deadlines:
        return self._server.deadlines

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    @property
    def router(self) -> Router:
        return self._server.router

    @router.setter
    def router(self, router: Router) -> None:
        self._server.router = router

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="value-exporter-web", daemon=True
        )
        self._thread.start()
        threading.Thread(target=self._server.deadlines.run, name="value-exporter-web-deadlines",
                         daemon=True).start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.deadlines.stop()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
