"""HTTP client settings in config.yaml (basic_auth, authorization, tls_config) -> dataclasses.

Shapes follow Prometheus's common/config HTTPClientConfig. Secrets are wrapped in `Secret`,
whose str and repr are `<secret>`, so no log line or repr ever shows one. Relative file paths
resolve against the config file's folder, as Prometheus does, and must exist at load time.
Secret files are read at every request, so a rotated secret applies without a reload. Our
extension `password_env` / `credentials_env` names an environment variable instead, read at
load time (start and every reload); an unset variable is a load error.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from exporter.yamlkinds import BOOL, STR
from exporter.yamlnodes import Invalid, Kind, MapReader, Problems

SECRET_TEXT = "<secret>"


@dataclass(frozen=True)
class Secret:
    """A password or token; prints as `<secret>`, `reveal()` gives the value to the HTTP client."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself; call only where it is sent, never where it is logged."""
        return self._value

    def __repr__(self) -> str:
        return SECRET_TEXT

    __str__ = __repr__


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic auth; the password inline or (better) in a file read at request time."""

    username: str
    password: Secret | None = None
    password_file: str | None = None
    password_env: str | None = None  # where `password` came from, when it came from there


@dataclass(frozen=True)
class Authorization:
    """An `Authorization: <type> <credentials>` header (Bearer unless told otherwise)."""

    type: str = "Bearer"
    credentials: Secret | None = None
    credentials_file: str | None = None
    credentials_env: str | None = None  # where `credentials` came from, when from there


@dataclass(frozen=True)
class TLSConfig:
    """Client TLS: CA to trust, client certificate, expected server name."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class HTTPClientConfig:
    """How to authenticate and secure requests to one kind of endpoint."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = field(default_factory=TLSConfig)


def file_path(base_dir: Path) -> Kind[str]:
    """A path to an existing file, relative paths taken from `base_dir`; gives the full path."""
    expected = "an existing file (relative paths start at the config file's folder)"

    def read(node: yaml.Node, ctx: str, problems: Problems) -> str:
        written = STR.read(node, ctx, problems)
        path = Path(os.path.normpath(base_dir / written))
        if not path.is_file():
            problems.error(node, ctx, f"file not found: {json.dumps(written)}", expected)
            raise Invalid()
        return str(path)

    return Kind(expected, read, str)


def check_address(text: str) -> str | None:
    """Problem with a `host:port` scrape address, as Prometheus checks `__address__`, or None."""
    if not text:
        return "empty address"
    if "://" in text:
        return f'"{text}" includes a scheme'
    if "/" in text:
        return f'"{text}" includes a path'
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f'"{text}" has an invalid IPv6 address'
    elif ":" in host:
        return f'"{text}" needs brackets around an IPv6 address'
    if sep and not (port.isdigit() and 0 < int(port) < 65536):
        return f'"{text}" has an invalid port'
    return None


ADDRESS_EXPECTED = "host:port, like localhost:9090 (scheme and path are set separately)"


def check_http_url(text: str) -> str | None:
    """Problem with an http(s) URL, or None; credentials in the URL are refused (use basic_auth)."""
    try:
        parts = urlsplit(text)
        _ = parts.port
    except ValueError as exc:
        return f"invalid URL {json.dumps(text)}: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"invalid URL {json.dumps(text)}: scheme must be http or https"
    if not parts.hostname:
        return f"invalid URL {json.dumps(text)}: no host"
    if parts.username is not None or parts.password is not None:
        return "URL contains credentials (put them in basic_auth)"
    if parts.fragment:
        return f"invalid URL {json.dumps(text)}: fragments are not allowed"
    return None


URL_EXPECTED = "an http:// or https:// URL"


def read_basic_auth(r: MapReader, base_dir: Path) -> BasicAuth | None:
    """`basic_auth:` under reader `r`, or None when absent."""
    m = r.mapping("basic_auth")
    if m is None:
        return None
    with m:
        username = m.required("username", STR)
        password = m.optional("password", STR, None)
        password_file = m.optional("password_file", file_path(base_dir), None)
        env = m.optional("password_env", STR, None)
    if _clash(m, password=password, password_file=password_file, password_env=env):
        pass
    elif password is not None:
        m.warn("password", "password written in the config file",
               "password_file, so the secret lives outside the config")
    elif env is not None:
        password = _from_env(m, "password_env", env)
    return BasicAuth(username, Secret(password) if password is not None else None, password_file,
                     env)


def _clash(m: MapReader, **sources: str | None) -> bool:
    """Report two ways of giving one secret (the first two set); true when there was a clash."""
    given = [key for key, value in sources.items() if value is not None]
    if len(given) > 1:
        m.error(given[0], f"set only one of {given[0]} and {given[1]}")
    return len(given) > 1


def _from_env(m: MapReader, key: str, name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        m.error(key, f"environment variable {json.dumps(name)} is not set",
                "the name of a set environment variable")
    return value


def read_authorization(r: MapReader, base_dir: Path) -> Authorization | None:
    """`authorization:` under reader `r`, or None when absent."""
    m = r.mapping("authorization")
    if m is None:
        return None
    with m:
        type_ = m.optional("type", STR, "Bearer")
        credentials = m.optional("credentials", STR, None)
        credentials_file = m.optional("credentials_file", file_path(base_dir), None)
        env = m.optional("credentials_env", STR, None)
    if type_.lower() == "basic":
        m.error("type", 'authorization type cannot be "Basic"', "basic_auth for basic auth")
    if _clash(m, credentials=credentials, credentials_file=credentials_file,
              credentials_env=env):
        pass
    elif credentials is not None:
        m.warn("credentials", "credentials written in the config file",
               "credentials_file, so the secret lives outside the config")
    elif env is not None:
        credentials = _from_env(m, "credentials_env", env)
    secret = Secret(credentials) if credentials is not None else None
    return Authorization(type_, secret, credentials_file, env)


def read_tls_fields(m: MapReader, base_dir: Path) -> TLSConfig:
    """The TLS keys of reader `m` (a `tls_config:` mapping, or a simple target itself)."""
    cfg = TLSConfig(
        ca_file=m.optional("ca_file", file_path(base_dir), None),
        cert_file=m.optional("cert_file", file_path(base_dir), None),
        key_file=m.optional("key_file", file_path(base_dir), None),
        server_name=m.optional("server_name", STR, None),
        insecure_skip_verify=m.optional("insecure_skip_verify", BOOL, False),
    )
    for have, missing in (("cert_file", "key_file"), ("key_file", "cert_file")):
        if m.has(have) and not m.has(missing):
            m.error(have, f"{have} is set but {missing} is not", "both or neither")
    return cfg


def read_http_client(r: MapReader, base_dir: Path) -> HTTPClientConfig:
    """`basic_auth`, `authorization` and `tls_config` under reader `r`."""
    basic = read_basic_auth(r, base_dir)
    auth = read_authorization(r, base_dir)
    if basic is not None and auth is not None:
        r.error("authorization", "set only one of basic_auth and authorization")
    tls = TLSConfig()
    m = r.mapping("tls_config")
    if m is not None:
        with m:
            tls = read_tls_fields(m, base_dir)
    return HTTPClientConfig(basic, auth, tls)


def public_http(cfg: HTTPClientConfig) -> dict[str, Any]:
    """The settings as config-shaped data with every secret shown as `<secret>`."""
    out: dict[str, Any] = {}
    if cfg.basic_auth is not None:
        b = cfg.basic_auth
        out["basic_auth"] = _drop_none({
            "username": b.username,
            "password": SECRET_TEXT if b.password is not None and not b.password_env else None,
            "password_file": b.password_file,
            "password_env": b.password_env,
        })
    if cfg.authorization is not None:
        a = cfg.authorization
        out["authorization"] = _drop_none({
            "type": a.type,
            "credentials": (SECRET_TEXT if a.credentials is not None and not a.credentials_env
                            else None),
            "credentials_file": a.credentials_file,
            "credentials_env": a.credentials_env,
        })
    tls = _drop_none({
        "ca_file": cfg.tls_config.ca_file,
        "cert_file": cfg.tls_config.cert_file,
        "key_file": cfg.tls_config.key_file,
        "server_name": cfg.tls_config.server_name,
        "insecure_skip_verify": cfg.tls_config.insecure_skip_verify or None,
    })
    if tls:
        out["tls_config"] = tls
    return out


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
