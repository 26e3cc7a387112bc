"""Basic auth for the web endpoints (bcrypt, cached as exporter-toolkit does); web config apply.

bcrypt costs tens of milliseconds per check by design, and Prometheus scrapes with the same
credentials every few seconds, so results are cached as exporter-toolkit caches them: keyed by
user, stored hash and a SHA-256 of the password given (never the password itself), bounded in
size, with one bcrypt check at a time so a flood of bad passwords cannot take every core.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import random
import threading
from collections.abc import Callable, Mapping

import bcrypt
from prometheus_client import Counter

from exporter.web import Guard, Response, WebServer
from exporter.web_config import WebConfig

log = logging.getLogger("value_exporter.web")

HEALTH_PATHS = frozenset({"/-/healthy", "/-/ready"})
CACHE_SIZE = 100  # exporter-toolkit's size; entries are evicted at random when full
REALM = "value-exporter"
# Checked for unknown users too, so a wrong user name takes as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(10))

# Label values of value_exporter_http_auth_failures_total{reason}.
MISSING, MALFORMED, UNKNOWN_USER, WRONG_PASSWORD = (
    "missing", "malformed", "unknown_user", "wrong_password")
AUTH_FAILURE_REASONS = (MISSING, MALFORMED, UNKNOWN_USER, WRONG_PASSWORD)


class BasicAuthChecker:
    """Checks `Authorization: Basic ...` headers against bcrypt hashes."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._cache: dict[bytes, bool] = {}
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self.bcrypt_checks = 0  # how many times bcrypt ran (tests check the cache with it)

    def check(self, header: str) -> str | None:
        """None when the header carries valid credentials, else the failure reason."""
        if not header:
            return MISSING
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return MALFORMED
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return MALFORMED
        if not sep:
            return MALFORMED
        stored = self._users.get(user)
        hashed = stored if stored is not None else _DUMMY_HASH
        key = hashlib.sha256(b"\0".join((user.encode(), hashed, password.encode()))).digest()
        with self._cache_lock:
            ok = self._cache.get(key)
        if ok is None:
            with self._bcrypt_lock:
                self.bcrypt_checks += 1
                ok = bcrypt.checkpw(password.encode("utf-8"), hashed)
            self._remember(key, ok)
        # bcrypt compares in constant time; an unknown user ran it too (on the dummy hash).
        if stored is None:
            return UNKNOWN_USER
        return None if ok else WRONG_PASSWORD

    def _remember(self, key: bytes, ok: bool) -> None:
        with self._cache_lock:
            if len(self._cache) >= CACHE_SIZE:
                del self._cache[random.choice(list(self._cache))]
            self._cache[key] = ok


def make_guard(config: WebConfig, failures: Counter) -> Guard | None:
    """The request guard for a web config (None: nothing to check)."""
    if not config.users:
        return None
    checker = BasicAuthChecker(config.users)
    open_paths = frozenset() if config.protect_health_endpoints else HEALTH_PATHS

    def guard(method: str, path: str, headers: Mapping[str, str]) -> Response | None:
        if path in open_paths:
            return None
        reason = checker.check(headers.get("authorization", ""))
        if reason is None:
            return None
        failures.labels(reason).inc()
        if reason != MISSING:  # a browser's first request carries no credentials: not news
            log.info("event=http_auth_failed path=%s reason=%s", path, reason)
        return Response(401, b"Unauthorized\n",
                        headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})

    return guard


def apply_web_config(web: WebServer, config: WebConfig, auth_failures: Counter,
                     tls_failures: Callable[[str], None]) -> None:
    """Put a (re)loaded web config into effect; connections already open keep the old one."""
    web.secure(guard=make_guard(config, auth_failures), ssl_context=config.ssl_context,
               headers=config.headers, on_tls_failure=tls_failures)
