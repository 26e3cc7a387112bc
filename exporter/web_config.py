"""`--web.config.file`: TLS, basic auth and headers in exporter-toolkit's web-config.yml shape.

The keys follow Prometheus's exporter-toolkit (`tls_server_config`, `http_server_config`,
`basic_auth_users`). One key is our own: `protect_health_endpoints` (default false) puts
`/-/healthy` and `/-/ready` behind the same auth as everything else. Relative file paths
resolve against the web config file's folder, as exporter-toolkit does. The file is read at
start and on every reload; certificates are loaded into a new TLS context then, so a rotated
certificate applies from the next reload (exporter-toolkit re-reads it on every handshake).
"""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from exporter.config_http import file_path
from exporter.errors import UserError
from exporter.yamlkinds import BOOL, STR, checked, list_of, map_of, one_of
from exporter.yamlnodes import MapReader, Problems, compose_file

# exporter-toolkit's client_auth_type values. Python's ssl module can only request a client
# certificate together with verifying it, so the two "accept any certificate" modes are refused.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_MODES = ("RequestClientCert", "RequireAnyClientCert")
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names for the TLS 1.2 suites exporter-toolkit accepts, in OpenSSL's spelling
# (TLS 1.3 suites are not configurable, in Go or here).
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
# exporter-toolkit lets these response headers be set, with these checks on their values.
ALLOWED_HEADERS = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_UNSUPPORTED = {
    "cert": "cert_file (the certificate in a file)",
    "key": "key_file (the key in a file)",
    "client_ca": "client_ca_file (the CA in a file)",
    "curve_preferences": "leave it out: Python's ssl module picks the curves",
    "prefer_server_cipher_suites": "leave it out: the server's order is always used",
    "client_allowed_sans": "leave it out: not supported yet",
    "http2": "leave it out: the server speaks HTTP/1.1 only",
}


@dataclass(frozen=True)
class TLSServerConfig:
    """Server TLS: our certificate and key, and how client certificates are checked."""

    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"
    max_version: str | None = None
    cipher_suites: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebConfig:
    """Everything `--web.config.file` sets; the default is plain HTTP without auth."""

    tls: TLSServerConfig | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # user -> bcrypt hash (bytes, as bcrypt.checkpw takes it)
    users: Mapping[str, bytes] = field(default_factory=dict)
    protect_health_endpoints: bool = False
    # Built at load time, so a bad certificate is a load error and not a failed handshake.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


def _check_bcrypt(text: str) -> str | None:
    ok = text.startswith(_BCRYPT_PREFIXES) and len(text) == 60
    # Never echo the hash: a hash is not the password, but it is still not for logs.
    return None if ok else "not a bcrypt hash"


BCRYPT_EXPECTED = 'a bcrypt hash ("$2y$10$..." or "$2b$..."; see the README for making one)'


def _check_header(name: str) -> str | None:
    if name in ALLOWED_HEADERS:
        return None
    return f"header {json.dumps(name)} cannot be set"


def load_web_config(path: str | None) -> WebConfig:
    """Read and check a web config file (None: no file, plain HTTP); raises UserError."""
    if path is None:
        return WebConfig()
    problems = Problems(path)
    root = compose_file(path, problems)
    problems.raise_if_errors()
    base = Path(path).resolve().parent
    tls = None
    headers: dict[str, str] = {}
    with MapReader(root, "", problems) as top:
        m = top.mapping("tls_server_config")
        if m is not None:
            tls = _read_tls(m, base)
            m.finish(_UNSUPPORTED)
        h = top.mapping("http_server_config")
        if h is not None:
            headers = h.optional("headers", map_of(STR, _check_header, "one of " + ", ".join(
                ALLOWED_HEADERS)), {})
            _check_header_values(h, headers)
            h.finish(_UNSUPPORTED)
        users = top.optional("basic_auth_users", map_of(checked(STR, _check_bcrypt,
                                                                BCRYPT_EXPECTED)), {})
        protect = top.optional("protect_health_endpoints", BOOL, False)
    context = None
    if tls is not None and not problems.errors:
        context = _ssl_context(tls, top, problems)
    problems.raise_if_errors()
    return WebConfig(tls, headers, {u: h.encode("ascii") for u, h in users.items()}, protect,
                     context)


def _read_tls(m: MapReader, base: Path) -> TLSServerConfig:
    cert = m.required("cert_file", file_path(base))
    key = m.required("key_file", file_path(base))
    auth = m.optional("client_auth_type", STR, "NoClientCert")
    if auth in _UNVERIFIED_MODES:
        m.error("client_auth_type", f"{auth} is not supported (it accepts certificates "
                "nobody verified)", "VerifyClientCertIfGiven or RequireAndVerifyClientCert "
                "with client_ca_file")
    elif auth not in CLIENT_AUTH:
        m.error("client_auth_type", f"unknown value {json.dumps(auth)}",
                "one of " + ", ".join(CLIENT_AUTH))
    ca = m.optional("client_ca_file", file_path(base), None)
    if ca is not None and auth == "NoClientCert":
        m.error("client_ca_file", "client CA set without a client auth policy",
                "client_auth_type: RequireAndVerifyClientCert (or VerifyClientCertIfGiven)")
    if ca is None and auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        m.error("client_auth_type", f"{auth} needs client_ca_file", "client_ca_file: FILE")
    versions = one_of(*TLS_VERSIONS)
    low = m.optional("min_version", versions, "TLS12")
    high = m.optional("max_version", versions, None)
    if high is not None and TLS_VERSIONS[high] < TLS_VERSIONS[low]:
        m.error("max_version", f"max_version {high} is below min_version {low}")
    suites = m.optional("cipher_suites", list_of(one_of(*CIPHER_SUITES)), [])
    return TLSServerConfig(cert, key, auth, ca, low, high, tuple(suites))


def _check_header_values(h: MapReader, headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        allowed = ALLOWED_HEADERS.get(name)
        if allowed is not None and value.lower() not in allowed:
            h.error("headers", f"invalid value {json.dumps(value)} for {name}",
                    "one of " + ", ".join(allowed))
        if "\r" in value or "\n" in value:
            h.error("headers", f"{name}: line breaks are not allowed in a header value")


def _ssl_context(tls: TLSServerConfig, top: MapReader, problems: Problems) -> ssl.SSLContext:
    """The server TLS context; unreadable or mismatched files are reported at the TLS key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version is not None:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.cipher_suites:
        context.set_ciphers(":".join(CIPHER_SUITES[s] for s in tls.cipher_suites))
    node = top.value_node("tls_server_config")
    ctx = "tls_server_config"
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        problems.error(node, ctx, f"cannot load cert_file and key_file: {_ssl_reason(exc)}",
                       "a PEM certificate and its matching PEM private key")
    context.verify_mode = CLIENT_AUTH.get(tls.client_auth_type, ssl.CERT_NONE)
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            problems.error(node, ctx, f"cannot load client_ca_file: {_ssl_reason(exc)}",
                           "PEM CA certificates")
    return context


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return type(exc).__name__ if not isinstance(exc, OSError) else (exc.strerror or str(exc))


def hash_password(password: str, rounds: int = 10) -> str:
    """A bcrypt hash for `basic_auth_users` (tests use it; the README shows the same in Python)."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def check_web_config_command(path: str) -> int:
    """`value-exporter check web-config FILE`: summary on stdout, problems on stderr."""
    try:
        cfg = load_web_config(path)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    tls = "off" if cfg.tls is None else f"on, client certificates: {cfg.tls.client_auth_type}"
    print(f"OK: TLS {tls}, {len(cfg.users)} basic auth users, health endpoints "
          + ("protected" if cfg.protect_health_endpoints else "open"))
    return 0
