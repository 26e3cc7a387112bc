"""HTTP fetch for the scrape stage (scrape -> parse -> store): one body within the deadline.

Follows Prometheus 3.5's targetScraper: one GET with its Accept, Accept-Encoding and timeout
headers, redirects followed (at most 10, as Go's client), status 200 required, the body streamed
and cut off at `body_size_limit` (decompressed size for gzip) and at the scrape deadline.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.response import HTTPResponse

from exporter import __version__
from exporter.config_http import HTTPClientConfig, TLSConfig
from exporter.config_scrape import DEFAULT_SCRAPE_PROTOCOLS, ScrapeJob

# The media type each scrape protocol asks for. Prometheus 3.5 asks for `escaping=allow-utf-8`;
# we still ask for `underscores` (as Prometheus does with `metric_name_validation_scheme:
# legacy`), so targets that can escape send classic names; UTF-8 names that arrive anyway are
# accepted unless the job asks for legacy validation.
_PROTOCOL_HEADERS = {
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0;escaping=underscores",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "PrometheusText1.0.0": "text/plain;version=1.0.0;escaping=underscores",
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
}
# Prometheus weighs protocols from 0.(known protocols + 1) down; it knows five (with protobuf).
_FIRST_WEIGHT = 6


def accept_header(protocols: Sequence[str]) -> str:
    """Prometheus 3.5's acceptHeader(): the protocols in order, then anything, by weight."""
    parts = []
    weight = _FIRST_WEIGHT
    for protocol in protocols:
        parts.append(f"{_PROTOCOL_HEADERS[protocol]};q=0.{weight}")
        weight -= 1
    parts.append(f"*/*;q=0.{weight}")
    return ",".join(parts)


ACCEPT_HEADER = accept_header(DEFAULT_SCRAPE_PROTOCOLS)
_OPENMETRICS = "application/openmetrics-text"
_TEXT = "text/plain"
_PROTOCOL_MEDIA = {
    "PrometheusText0.0.4": _TEXT, "PrometheusText1.0.0": _TEXT,
    "OpenMetricsText0.0.1": _OPENMETRICS, "OpenMetricsText1.0.0": _OPENMETRICS,
}
_MEDIA_TYPE_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")
USER_AGENT = f"value-exporter/{__version__}"
MAX_REDIRECTS = 10  # Go's http.Client default, which Prometheus keeps
_CHUNK = 64 * 1024


class FetchError(Exception):
    """A fetch that failed; `reason` is one of conventions.SCRAPE_FAILURE_REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class FetchResult:
    """A 200 response: the (decompressed) body and its Content-Type header ("" when absent)."""

    body: bytes
    content_type: str


def media_type(content_type: str, fallback_protocol: str | None) -> str:
    """The media type to parse with, as Prometheus 3.5's textparse picks it; raises
    FetchError("content_type") when Content-Type is missing, malformed or unknown and no
    fallback_scrape_protocol is set."""
    fallback = _PROTOCOL_MEDIA.get(fallback_protocol or "", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not content_type.strip():
        problem = "non-compliant scrape target sending blank Content-Type"
    elif not _MEDIA_TYPE_RE.fullmatch(media):
        problem = f"cannot parse Content-Type {content_type!r}"
    elif media in (_OPENMETRICS, _TEXT):
        return media
    else:
        # Protobuf is never asked for here, so it is as unknown as text/html.
        problem = f"received unsupported Content-Type {content_type!r}"
    if fallback:
        return fallback
    raise FetchError("content_type", f"{problem} and no fallback_scrape_protocol specified "
                                        "for target")


class _Watchdog:
    """Cuts the socket of the request in flight at the scrape deadline: socket timeouts bound
    each wait, not the sum, so a target dripping its headers could otherwise hold a scrape."""

    _current = threading.local()  # the watchdog of the fetch running on this thread

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._active = True
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        _Watchdog._current.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active = False  # a late timer must not cut a connection back in the pool
        self._timer.cancel()
        _Watchdog._current.watchdog = None

    @staticmethod
    def watch(sock: socket.socket | None) -> None:
        dog: _Watchdog | None = getattr(_Watchdog._current, "watchdog", None)
        if dog is not None and sock is not None:
            with dog._lock:
                dog._sock = sock

    def _fire(self) -> None:
        with self._lock:
            if not self._active or self._sock is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                self._sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _Watchdog.watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        _Watchdog.watch(self.sock)
        return super().getresponse()


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class TLSServerNameAdapter(HTTPAdapter):
    """A requests adapter for scrapes and Alertmanager posts: no retries, and TLS (SNI and the
    certificate's host name) checked against `server_name` when set, as Prometheus's
    `tls_config.server_name`.

    Its connections report their socket to a running scrape deadline (`_Watchdog`), which can
    cut a body that trickles past the timeout; outside a scrape that report is a no-op.
    """

    def __init__(self, server_name: str | None = None) -> None:
        self._server_name = server_name
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._server_name:
            # SNI and hostname check both use server_name, as Go's tls.Config.ServerName does.
            kwargs["server_hostname"] = self._server_name
            kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def go_seconds(seconds: float) -> str:
    """Seconds as Go's strconv.FormatFloat(s, 'f', -1, 64) writes them ("10", "0.5")."""
    text = repr(float(seconds))
    if "e" in text or "E" in text:
        text = f"{seconds:.9f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class HTTPFetcher:
    """One target's HTTP client: a session with its TLS settings; credentials read per fetch."""

    def __init__(self, job: ScrapeJob) -> None:
        self._http = job.http
        self._limit = job.limits.body_size_limit
        self._timeout_s = job.scrape_timeout / 1000
        session = requests.Session()
        # Prometheus ignores proxy variables and .netrc unless told otherwise; so do we.
        session.trust_env = False
        session.max_redirects = MAX_REDIRECTS
        session.mount("https://", TLSServerNameAdapter(job.http.tls_config.server_name))
        session.mount("http://", TLSServerNameAdapter())
        configure_tls(session, job.http.tls_config)
        session.headers.clear()
        session.headers.update({
            "Accept": accept_header(job.scrape_protocols),
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            "X-Prometheus-Scrape-Timeout-Seconds": go_seconds(self._timeout_s),
        })
        self._session = session

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()

    def fetch(self, url: str, deadline: float) -> FetchResult:
        """GET url and read its body by `deadline` (time.monotonic()); raises FetchError."""
        headers = {"Authorization": auth} if (auth := auth_header(self._http)) else {}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("timeout", "scrape timed out before the request was sent")
        with _Watchdog(remaining) as dog:
            try:
                result = self._fetch(url, headers, deadline, remaining)
            except FetchError as exc:
                if dog.fired and exc.reason != "timeout":
                    raise FetchError("timeout", _timeout_text(self._timeout_s)) from None
                raise
            if dog.fired:  # a cut close-delimited body looks complete; it is not
                raise FetchError("timeout", _timeout_text(self._timeout_s))
            return result

    def _fetch(self, url: str, headers: dict[str, str], deadline: float,
               remaining: float) -> FetchResult:
        try:
            resp = self._session.get(url, headers=headers, stream=True,
                                     timeout=(remaining, remaining))
        except requests.exceptions.SSLError as exc:
            raise FetchError("tls", f"TLS error: {_cause(exc)}") from None
        except requests.exceptions.Timeout:
            raise FetchError("timeout", _timeout_text(self._timeout_s)) from None
        except requests.exceptions.TooManyRedirects:
            raise FetchError("http_status", f"stopped after {MAX_REDIRECTS} redirects") from None
        except requests.exceptions.ConnectionError as exc:
            raise FetchError("refused", f"connection failed: {_cause(exc)}") from None
        except (requests.RequestException, ValueError, OSError) as exc:
            raise FetchError("other", f"request failed: {_cause(exc)}") from None
        try:
            if resp.status_code != 200:
                # The standard phrase, not the target's: a hostile target could echo the
                # credentials it was sent into our logs through its own reason text.
                raise FetchError("http_status", "server returned HTTP status "
                                 f"{resp.status_code} {_status_phrase(resp.status_code)}")
            body = self._read_body(resp, deadline)
            return FetchResult(body, resp.headers.get("Content-Type", ""))
        finally:
            resp.close()

    def _read_body(self, resp: requests.Response, deadline: float) -> bytes:
        """The body, read chunk by chunk so neither a slow drip nor a huge body can hold us."""
        raw: urllib3.HTTPResponse = resp.raw
        sock = _socket_of(raw)
        limit = self._limit
        # Only exactly "gzip" is decoded, as Prometheus checks the header.
        inflater = _Inflater() if resp.headers.get("Content-Encoding") == "gzip" else None
        buf = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchError("timeout", _timeout_text(self._timeout_s))
            if sock is not None:
                # Each read may wait only for what is left of the scrape, not a fresh timeout.
                sock.settimeout(remaining)
            try:
                chunk = raw.read1(_CHUNK, decode_content=False)
            except (ReadTimeoutError, TimeoutError):
                raise FetchError("timeout", _timeout_text(self._timeout_s)) from None
            except (ProtocolError, OSError) as exc:
                raise FetchError("refused", f"reading the body failed: {_cause(exc)}") from None
            if not chunk:
                break
            if inflater is not None:
                try:
                    chunk = inflater.feed(chunk, limit - len(buf) if limit else 0)
                except zlib.error as exc:
                    raise FetchError("other", f"gzip: {exc}") from None
            buf += chunk
            # Prometheus refuses a body that reaches the limit (n >= limit), not only one past it.
            if limit and len(buf) >= limit:
                raise FetchError("too_large", "body size limit exceeded")
        if inflater is not None and not inflater.done():
            raise FetchError("other", "gzip: unexpected EOF")
        return bytes(buf)


class _Inflater:
    """Streaming gzip decoding (multi-member, as Go's reader) with bounded output per feed."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self._started = False

    def feed(self, data: bytes, cap: int) -> bytes:
        """Decoded bytes of `data`, at most `cap` of them (0: no cap)."""
        out = bytearray()
        while data:
            self._started = True
            out += self._d.decompress(data, cap - len(out) if cap else 0)
            if cap and len(out) >= cap:
                break  # the caller refuses the body; the rest need not be decoded
            if self._d.eof:
                data = self._d.unused_data
                if data:
                    self._d = zlib.decompressobj(wbits=31)
            else:
                data = self._d.unconsumed_tail
        return bytes(out)

    def done(self) -> bool:
        return self._started and self._d.eof


def configure_tls(session: requests.Session, tls: TLSConfig) -> None:
    if tls.insecure_skip_verify:
        session.verify = False
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    elif tls.ca_file:
        session.verify = tls.ca_file
    if tls.cert_file and tls.key_file:
        session.cert = (tls.cert_file, tls.key_file)


def _read_secret_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            # Prometheus trims the file content, so a trailing newline is not part of the secret.
            return f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError("other", f"unable to read {what} file {path}: "
                                  f"{type(exc).__name__}") from None


def auth_header(cfg: HTTPClientConfig) -> str | None:
    """The Authorization header value; files are read now so rotated secrets apply."""
    if cfg.basic_auth is not None:
        b = cfg.basic_auth
        if b.password_file:
            password = _read_secret_file(b.password_file, "basic auth password")
        else:
            password = b.password.reveal() if b.password is not None else ""
        token = base64.b64encode(f"{b.username}:{password}".encode()).decode("ascii")
        return f"Basic {token}"
    if cfg.authorization is not None:
        a = cfg.authorization
        if a.credentials_file:
            credentials = _read_secret_file(a.credentials_file, "authorization credentials")
        else:
            credentials = a.credentials.reveal() if a.credentials is not None else ""
        return f"{a.type} {credentials}"
    return None


def _socket_of(raw: urllib3.HTTPResponse) -> socket.socket | None:
    conn = getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _timeout_text(timeout_s: float) -> str:
    return f"scrape timed out after {go_seconds(timeout_s)}s"


def _cause(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 exception chain, kept short."""
    seen: list[BaseException] = [exc]
    inner: BaseException | None = exc
    while inner is not None and len(seen) < 8:
        nxt = inner.__cause__ or inner.__context__
        if nxt is None and inner.args and isinstance(inner.args[0], BaseException):
            nxt = inner.args[0]
        if nxt is None and hasattr(inner, "reason") and isinstance(inner.reason, BaseException):
            nxt = inner.reason
        if nxt is None or nxt in seen:
            break
        seen.append(nxt)
        inner = nxt
    last = seen[-1]
    text = str(last) or type(last).__name__
    if isinstance(last, OSError) and last.strerror:
        text = last.strerror
    return text[:200]


def _status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""
