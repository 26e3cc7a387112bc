"""Scrape settings in config.yaml (`targets:` and `scrape_configs:`) -> one list of scrape jobs.

Both forms become `ScrapeJob`s: a simple target is a job named after the target with one static
address taken from its URL; a Prometheus scrape_config keeps its shape. Static addresses expand
to `ScrapeTarget`s now (labels `job` and `instance` set as Prometheus sets them); DNS-SD configs
stay on the job for a resolver to expand at run time with `ScrapeJob.target(address)`.
With `dns_sd_configs` on a simple target, its URL gives scheme, path and query; each resolved
address replaces the URL's host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from exporter.config_http import (
    ADDRESS_EXPECTED,
    URL_EXPECTED,
    Authorization,
    HTTPClientConfig,
    check_address,
    check_http_url,
    file_path,
    public_http,
    read_basic_auth,
    read_http_client,
    read_tls_fields,
)
from exporter.durations import Duration
from exporter.labels import Labels, make_labels
from exporter.relabel import (
    ACTIONS,
    DEFAULT_REGEX,
    DEFAULT_REPLACEMENT,
    DEFAULT_SEPARATOR,
    LABEL_NAME_RE,
    RelabelConfig,
    check_relabel_config,
)
from exporter.yamlkinds import BOOL, DURATION, INT, STR, checked, list_of, map_of, one_of
from exporter.yamlnodes import Invalid, Kind, MapReader, Problems

PROTOCOLS = ("PrometheusText0.0.4", "PrometheusText1.0.0", "OpenMetricsText0.0.1",
             "OpenMetricsText1.0.0")
# Prometheus 3.5's default scrape_protocols for float-only scrapes, most preferred first.
DEFAULT_SCRAPE_PROTOCOLS = ("OpenMetricsText1.0.0", "OpenMetricsText0.0.1",
                            "PrometheusText1.0.0", "PrometheusText0.0.4")
DNS_REFRESH_DEFAULT = Duration(30_000)


@dataclass(frozen=True)
class ScrapeLimits:
    """Per-scrape limits; 0 means unlimited, as in Prometheus."""

    sample_limit: int = 0
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    body_size_limit: int = 0  # bytes


@dataclass(frozen=True)
class StaticConfig:
    """One `static_configs` group: addresses sharing extra labels."""

    targets: tuple[str, ...]
    labels: Labels = ()


@dataclass(frozen=True)
class DNSSDConfig:
    """DNS service discovery: names resolved every refresh_interval into addresses."""

    names: tuple[str, ...]
    type: str = "SRV"
    port: int = 0  # required for A and AAAA; SRV records carry their own
    refresh_interval: Duration = DNS_REFRESH_DEFAULT


@dataclass(frozen=True)
class ScrapeJob:
    """Everything needed to scrape the targets of one job (one simple target, or one
    scrape_config)."""

    job_name: str
    scrape_interval: Duration
    scrape_timeout: Duration
    scheme: str = "http"
    metrics_path: str = "/metrics"
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()
    honor_labels: bool = False
    honor_timestamps: bool = True
    http: HTTPClientConfig = field(default_factory=HTTPClientConfig)
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()
    limits: ScrapeLimits = field(default_factory=ScrapeLimits)
    fallback_scrape_protocol: str | None = None
    scrape_protocols: tuple[str, ...] = DEFAULT_SCRAPE_PROTOCOLS
    static_configs: tuple[StaticConfig, ...] = ()
    dns_sd_configs: tuple[DNSSDConfig, ...] = ()
    discovered_labels: Labels = ()  # extra labels for DNS-discovered targets (simple form)
    # Prometheus 3's default accepts UTF-8 metric and label names; "legacy" refuses them.
    metric_name_validation_scheme: str = "utf8"

    def target(self, address: str, labels: Labels = ()) -> ScrapeTarget:
        """A target of this job at `address`; `job`/`instance` only fill in what labels lack."""
        merged = dict(labels)
        merged.setdefault("job", self.job_name)
        merged.setdefault("instance", address)
        return ScrapeTarget(self, address, make_labels(merged))

    def static_targets(self) -> tuple[ScrapeTarget, ...]:
        """The targets of every static group."""
        return tuple(self.target(a, g.labels) for g in self.static_configs for a in g.targets)


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape; `labels` are attached to every sample (with honor_labels rules)."""

    job: ScrapeJob
    address: str
    labels: Labels

    @property
    def url(self) -> str:
        """The full URL: scheme, address, metrics_path and params."""
        query = urlencode([(k, v) for k, vs in self.job.params for v in vs])
        return f"{self.job.scheme}://{self.address}{self.job.metrics_path}" + (
            f"?{query}" if query else "")


def check_label_name(name: str) -> str | None:
    """Problem with a user-set label name (reserved `__` names included), or None."""
    if not LABEL_NAME_RE.fullmatch(name):
        return f'invalid label name "{name}"'
    if name.startswith("__"):
        return f'label name "{name}" is reserved (starts with __)'
    return None


LABELS: Kind[dict[str, str]] = map_of(STR, check_label_name,
                                      "label names like [a-zA-Z_][a-zA-Z0-9_]*")
COUNT: Kind[int] = checked(INT, lambda v: "must not be negative" if v < 0 else None,
                           "0 (no limit) or more")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|PB|EB|KiB|MiB|GiB|TiB|PiB|EiB)?")
_SIZE_MULT = {u: 1024 ** i for i, u in enumerate(("B", "K", "M", "G", "T", "P", "E"))}


def parse_size(text: str) -> int:
    """`10MB` -> bytes, base 2 as in Prometheus (KB and KiB are both 1024); raises ValueError."""
    m = _SIZE_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"invalid size {text!r}")
    unit = m.group(2) or "B"
    return int(float(m.group(1)) * _SIZE_MULT[unit[0]])


def _read_size(node: Any, ctx: str, problems: Problems) -> int:
    text = STR.read(node, ctx, problems)
    try:
        return parse_size(text)
    except ValueError:
        problems.error(node, ctx, f'invalid size "{text}"', SIZE.expected)
        raise Invalid() from None


SIZE: Kind[int] = Kind("a size like 10MB, 512KiB, 0 (no limit)", _read_size, int)


def read_limits(m: MapReader) -> ScrapeLimits:
    """The limit keys of a target or scrape_config."""
    return ScrapeLimits(
        sample_limit=m.optional("sample_limit", COUNT, 0),
        label_limit=m.optional("label_limit", COUNT, 0),
        label_name_length_limit=m.optional("label_name_length_limit", COUNT, 0),
        label_value_length_limit=m.optional("label_value_length_limit", COUNT, 0),
        body_size_limit=m.optional("body_size_limit", SIZE, 0),
    )


def read_relabel_configs(r: MapReader, key: str) -> tuple[RelabelConfig, ...]:
    """A list of Prometheus relabel_configs; every rule validated as Prometheus does."""
    out: list[RelabelConfig] = []
    for ctx, node in r.items(key):
        with MapReader(node, ctx, r.problems) as m:
            before = m.problems.error_count()
            read_action = m.optional("action", one_of(*ACTIONS, ignore_case=True), None)
            action = read_action or "replace"
            sources: list[str] = m.optional("source_labels", list_of(STR), [])
            source_labels = tuple(sources)
            separator = m.optional("separator", STR, DEFAULT_SEPARATOR)
            regex = m.optional("regex", STR, DEFAULT_REGEX)
            modulus = m.optional("modulus", COUNT, 0)
            target_label = m.optional("target_label", STR, "")
            replacement = m.optional("replacement", STR, DEFAULT_REPLACEMENT)
            args = (action, source_labels, separator, regex, modulus, target_label, replacement)
            # After an unknown action, rule checks for "replace" would only add noise.
            bad_action = read_action is None and m.has("action")
            for field_key, message in () if bad_action else check_relabel_config(*args):
                m.error(field_key if m.has(field_key) else None, message)
            if m.problems.error_count() == before:
                out.append(RelabelConfig(*args))
    return tuple(out)


def read_dns_sd_configs(r: MapReader) -> tuple[DNSSDConfig, ...]:
    """`dns_sd_configs:` in Prometheus's shape."""
    out: list[DNSSDConfig] = []
    for ctx, node in r.items("dns_sd_configs"):
        with MapReader(node, ctx, r.problems) as m:
            names = m.required("names", list_of(STR))
            type_ = m.optional("type", one_of("SRV", "A", "AAAA", ignore_case=True), "SRV")
            port = m.optional("port", checked(INT, _check_port, "a port 1-65535"), 0)
            refresh = m.optional("refresh_interval", DURATION, DNS_REFRESH_DEFAULT)
        if m.has("names") and not names:
            m.error("names", "no names to resolve", "at least one DNS name")
        if type_ != "SRV" and port == 0 and not m.has("port"):
            m.error(None, f"a port is required for {type_} records", "port: <number>")
        if refresh <= 0 and m.has("refresh_interval"):
            m.error("refresh_interval", "must be above 0")
        out.append(DNSSDConfig(tuple(names), type_, port, refresh))
    return tuple(out)


def _check_port(port: int) -> str | None:
    return None if 0 < port < 65536 else f"invalid port {port}"


def _timing(m: MapReader, interval_key: str, timeout_key: str, default_interval: Duration,
            default_timeout: Duration) -> tuple[Duration, Duration]:
    """Interval and timeout; an unset timeout is the global one capped at the interval."""
    interval = m.optional(interval_key, DURATION, default_interval)
    timeout = m.optional(timeout_key, DURATION, None)
    if interval <= 0 and m.has(interval_key):
        m.error(interval_key, "must be above 0")
    if timeout is None:
        return interval, Duration(min(default_timeout, interval))
    if timeout <= 0:
        m.error(timeout_key, "must be above 0")
    elif timeout > interval:
        m.error(timeout_key, f"{timeout_key} {timeout} is longer than {interval_key} {interval}",
                f"a timeout at most the interval ({interval})")
    return interval, timeout


SCRAPE_HINTS = {
    "relabel_configs": "metric_relabel_configs (target relabelling is not supported; "
                       "set target labels in static_configs)",
    "bearer_token": "authorization: {credentials_file: ...}",
    "bearer_token_file": "authorization: {credentials_file: ...}",
}
SD_SUPPORTED = "static_configs or dns_sd_configs (the service discovery supported here)"


def read_scrape_config(m: MapReader, base_dir: Path, interval: Duration,
                       timeout: Duration) -> ScrapeJob:
    """One `scrape_configs[]` entry in Prometheus's shape."""
    job_name = m.required("job_name", STR)
    scrape_interval, scrape_timeout = _timing(m, "scrape_interval", "scrape_timeout", interval,
                                              timeout)
    statics: list[StaticConfig] = []
    for ctx, node in m.items("static_configs"):
        with MapReader(node, ctx, m.problems) as s:
            addresses = s.optional("targets", list_of(checked(STR, check_address,
                                                              ADDRESS_EXPECTED)), [])
            labels = s.optional("labels", LABELS, {})
        statics.append(StaticConfig(tuple(addresses), make_labels(labels)))
    path = m.optional("metrics_path", STR, "/metrics")
    if not path.startswith("/"):
        m.error("metrics_path", f'"{path}" does not start with /', "a path like /metrics")
    params = m.optional("params", map_of(list_of(STR)), {})
    job = ScrapeJob(
        job_name=job_name,
        scrape_interval=scrape_interval,
        scrape_timeout=scrape_timeout,
        scheme=m.optional("scheme", one_of("http", "https"), "http"),
        metrics_path=path,
        params=tuple((k, tuple(v)) for k, v in params.items()),
        honor_labels=m.optional("honor_labels", BOOL, False),
        honor_timestamps=m.optional("honor_timestamps", BOOL, True),
        http=read_http_client(m, base_dir),
        metric_relabel_configs=read_relabel_configs(m, "metric_relabel_configs"),
        limits=read_limits(m),
        fallback_scrape_protocol=m.optional("fallback_scrape_protocol", one_of(*PROTOCOLS), None),
        scrape_protocols=read_scrape_protocols(m),
        metric_name_validation_scheme=read_validation_scheme(m),
        static_configs=tuple(statics),
        dns_sd_configs=read_dns_sd_configs(m),
    )
    if not statics and not job.dns_sd_configs:
        m.warn("job_name", "this job has no targets", "static_configs or dns_sd_configs")
    hints = dict(SCRAPE_HINTS)
    hints.update({k: SD_SUPPORTED for k in m.present_keys() if k.endswith("_sd_configs")})
    m.finish(hints)
    return job



def read_validation_scheme(m: MapReader) -> str:
    """`metric_name_validation_scheme`: utf8 (Prometheus 3's default) or legacy."""
    scheme: str = m.optional("metric_name_validation_scheme", one_of("utf8", "legacy"), "utf8")
    return scheme

SIMPLE_HINTS = {
    "tls_config": "the TLS keys on the target itself: ca_file, cert_file, key_file, "
                  "server_name, insecure_skip_verify",
    "authorization": "bearer_token_file on the target (or use scrape_configs)",
    "static_configs": "url on the target (or use scrape_configs for several addresses)",
    "job_name": "name (the job label of a simple target)",
}


def read_simple_target(m: MapReader, base_dir: Path, interval: Duration,
                       timeout: Duration) -> ScrapeJob:
    """One `targets[]` entry: a named URL with optional auth, TLS, limits and relabelling."""
    name = m.required("name", STR)
    url = m.required("url", checked(STR, check_http_url, URL_EXPECTED))
    scrape_interval, scrape_timeout = _timing(m, "interval", "timeout", interval, timeout)
    labels = make_labels(m.optional("labels", LABELS, {}))
    basic = read_basic_auth(m, base_dir)
    token_file = m.optional("bearer_token_file", file_path(base_dir), None)
    if basic is not None and token_file is not None:
        m.error("bearer_token_file", "set only one of basic_auth and bearer_token_file")
    auth = Authorization("Bearer", None, token_file) if token_file is not None else None
    tls = read_tls_fields(m, base_dir)
    dns = read_dns_sd_configs(m)
    parts = urlsplit(url) if url else urlsplit("http://invalid/metrics")
    job = ScrapeJob(
        job_name=name,
        scrape_interval=scrape_interval,
        scrape_timeout=scrape_timeout,
        scheme=parts.scheme,
        metrics_path=parts.path or "/",
        params=_query_params(parts.query),
        honor_labels=m.optional("honor_labels", BOOL, False),
        honor_timestamps=m.optional("honor_timestamps", BOOL, True),
        http=HTTPClientConfig(basic, auth, tls),
        metric_relabel_configs=read_relabel_configs(m, "metric_relabel_configs"),
        limits=read_limits(m),
        fallback_scrape_protocol=m.optional("fallback_scrape_protocol", one_of(*PROTOCOLS), None),
        scrape_protocols=read_scrape_protocols(m),
        metric_name_validation_scheme=read_validation_scheme(m),
        static_configs=() if dns else (StaticConfig((parts.netloc,), labels),),
        dns_sd_configs=dns,
        discovered_labels=labels if dns else (),
    )
    m.finish(SIMPLE_HINTS)
    return job


def read_scrape_protocols(m: MapReader) -> tuple[str, ...]:
    """`scrape_protocols`: the formats to ask for, in order of preference (no duplicates)."""
    protocols = m.optional("scrape_protocols", list_of(one_of(*PROTOCOLS)), None)
    if protocols is None:
        return DEFAULT_SCRAPE_PROTOCOLS
    if not protocols:
        m.error("scrape_protocols", "empty list", "at least one of " + ", ".join(PROTOCOLS))
    elif len(set(protocols)) != len(protocols):
        m.error("scrape_protocols", "a protocol is listed twice", "each protocol once")
    return tuple(protocols) or DEFAULT_SCRAPE_PROTOCOLS


def _query_params(query: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        grouped.setdefault(k, []).append(v)
    return tuple((k, tuple(v)) for k, v in grouped.items())


def public_job(job: ScrapeJob) -> dict[str, Any]:
    """A job in Prometheus's scrape_config shape, secrets shown as `<secret>`."""
    out: dict[str, Any] = {
        "job_name": job.job_name,
        "scrape_interval": str(job.scrape_interval),
        "scrape_timeout": str(job.scrape_timeout),
        "scheme": job.scheme,
        "metrics_path": job.metrics_path,
        "honor_labels": job.honor_labels,
        "honor_timestamps": job.honor_timestamps,
        "metric_name_validation_scheme": job.metric_name_validation_scheme,
    }
    if job.params:
        out["params"] = {k: list(v) for k, v in job.params}
    out.update(public_http(job.http))
    limits = {k: v for k, v in vars(job.limits).items() if v}
    out.update(limits)
    if job.fallback_scrape_protocol:
        out["fallback_scrape_protocol"] = job.fallback_scrape_protocol
    if job.scrape_protocols != DEFAULT_SCRAPE_PROTOCOLS:
        out["scrape_protocols"] = list(job.scrape_protocols)
    if job.static_configs:
        out["static_configs"] = [_public_static(g) for g in job.static_configs]
    if job.dns_sd_configs:
        out["dns_sd_configs"] = [
            {"names": list(d.names), "type": d.type, "refresh_interval": str(d.refresh_interval),
             **({"port": d.port} if d.port else {})} for d in job.dns_sd_configs]
    if job.metric_relabel_configs:
        out["metric_relabel_configs"] = [_public_relabel(r) for r in job.metric_relabel_configs]
    return out


_DEFAULT_RELABEL = RelabelConfig()


def _public_relabel(rule: RelabelConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"action": rule.action}
    for name in ("source_labels", "separator", "regex", "modulus", "target_label", "replacement"):
        value = getattr(rule, name)
        if value != getattr(_DEFAULT_RELABEL, name):
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _public_static(group: StaticConfig) -> Mapping[str, Any]:
    out: dict[str, Any] = {"targets": list(group.targets)}
    if group.labels:
        out["labels"] = dict(group.labels)
    return out
