"""Daemon config (config.yaml -> load + validate -> frozen `Config`) for scrape, rules and alerts.

Every problem in the file is reported at once as `file:line:col: context: problem; expected ...`.
Relative paths (rule_files globs, state_dir, password and TLS files) resolve against the config
file's folder, so the daemon behaves the same whatever its working directory; `state_dir`
defaults to `state` next to the config file. Mount read-only configs (a Kubernetes ConfigMap)
with an absolute `state_dir` on a local, writable disk (SQLite's WAL needs one).

Environment variables (read by `apply_environment` and `config_path_from_env`):
  VALUE_EXPORTER_CONFIG  the config file when `--config` is not given
  VALUE_EXPORTER_LISTEN  overrides `listen` (host:port)
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from exporter.config_http import (
    URL_EXPECTED,
    HTTPClientConfig,
    check_address,
    check_http_url,
    public_http,
    read_http_client,
)
from exporter.config_scrape import (
    LABELS,
    ScrapeJob,
    ScrapeTarget,
    public_job,
    read_scrape_config,
    read_simple_target,
)
from exporter.durations import Duration
from exporter.errors import Problem, UserError
from exporter.labels import Labels, make_labels
from exporter.promql.engine import DEFAULT_MAX_SAMPLES
from exporter.yamlkinds import BOOL, DURATION, INT, STR, checked, list_of, one_of
from exporter.yamlnodes import MapReader, Problems, compose_file, position

ENV_CONFIG = "VALUE_EXPORTER_CONFIG"
ENV_LISTEN = "VALUE_EXPORTER_LISTEN"
DEFAULT_LISTEN = "127.0.0.1:9877"
LISTEN_EXPECTED = "host:port, like 127.0.0.1:9877 or :9877"
DEFAULT_SCRAPE_INTERVAL = Duration(15_000)
DEFAULT_SCRAPE_TIMEOUT = Duration(10_000)
DEFAULT_EVALUATION_INTERVAL = Duration(15_000)
DEFAULT_ALERTMANAGER_TIMEOUT = Duration(10_000)
# Prometheus's --rules.alert.resend-delay and --alertmanager.notification-queue-capacity.
DEFAULT_RESEND_DELAY = Duration(60_000)
DEFAULT_NOTIFICATION_QUEUE_CAPACITY = 10_000
DEFAULT_BACKFILL_TIMEOUT = Duration(60_000)
DEFAULT_ROLLUP_RETENTION = Duration(395 * 86_400_000)  # 13 months of hourly rollups
DEFAULT_QUERY_MAX_SAMPLES = DEFAULT_MAX_SAMPLES  # as Prometheus's --query.max-samples


@dataclass(frozen=True)
class AlertmanagerConfig:
    """One `alertmanagers[]` entry: where to POST alerts (Alertmanager API v2)."""

    targets: tuple[str, ...]
    scheme: str = "http"
    path_prefix: str = "/"
    timeout: Duration = DEFAULT_ALERTMANAGER_TIMEOUT
    api_version: str = "v2"
    http: HTTPClientConfig = field(default_factory=HTTPClientConfig)

    def urls(self) -> tuple[str, ...]:
        """The alerts endpoint of every target."""
        prefix = self.path_prefix.rstrip("/")
        return tuple(f"{self.scheme}://{t}{prefix}/api/v2/alerts" for t in self.targets)


@dataclass(frozen=True)
class BackfillConfig:
    """The Prometheus to read history from when a rule or SLO starts without data."""

    prometheus_url: str
    timeout: Duration = DEFAULT_BACKFILL_TIMEOUT
    http: HTTPClientConfig = field(default_factory=HTTPClientConfig)


@dataclass(frozen=True)
class Config:
    """The whole daemon configuration, validated; `targets` are the static ones, expanded."""

    path: str
    listen: str = DEFAULT_LISTEN
    external_labels: Labels = ()
    scrape_interval: Duration = DEFAULT_SCRAPE_INTERVAL
    scrape_timeout: Duration = DEFAULT_SCRAPE_TIMEOUT
    evaluation_interval: Duration = DEFAULT_EVALUATION_INTERVAL
    rule_files: tuple[str, ...] = ()
    state_dir: str = "state"
    keep_all_series: bool = False
    scrape_jobs: tuple[ScrapeJob, ...] = ()
    targets: tuple[ScrapeTarget, ...] = ()
    alertmanagers: tuple[AlertmanagerConfig, ...] = ()
    resend_delay: Duration = DEFAULT_RESEND_DELAY
    notification_queue_capacity: int = DEFAULT_NOTIFICATION_QUEUE_CAPACITY
    backfill: BackfillConfig | None = None
    rollup_retention: Duration = DEFAULT_ROLLUP_RETENTION  # hourly rollups kept for the report
    # Prometheus's --query.max-samples: a rule query loading more fails alone (counted).
    query_max_samples: int = DEFAULT_QUERY_MAX_SAMPLES
    warnings: tuple[Problem, ...] = field(default=(), compare=False)


def check_listen(text: str) -> str | None:
    """Problem with a listen address (`host:port`, host optional), or None."""
    if not text or ":" not in text:
        return f'"{text}" has no port'
    if text.endswith(":0"):  # port 0: the system picks a free port (tests, several instances)
        return check_address(text[:-1] + "1")
    return check_address(text)


TOP_HINTS = {
    "global": "scrape_interval, scrape_timeout, evaluation_interval and external_labels "
              "at the top level (there is no global: section)",
    "remote_write": "nothing: value-exporter is scraped; it does not push",
}


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises UserError with every problem found."""
    file = str(path)
    problems = Problems(file)
    root = compose_file(file, problems)
    problems.raise_if_errors()
    base = Path(os.path.abspath(file)).parent
    with MapReader(root, "", problems) as top:
        listen = top.optional("listen", checked(STR, check_listen, LISTEN_EXPECTED),
                              DEFAULT_LISTEN)
        external = make_labels(top.optional("external_labels", LABELS, {}))
        interval = top.optional("scrape_interval", DURATION, DEFAULT_SCRAPE_INTERVAL)
        # As in Prometheus, an unset timeout is 10s, or the interval when that is shorter.
        timeout = top.optional("scrape_timeout", DURATION,
                               min(DEFAULT_SCRAPE_TIMEOUT, interval) if interval > 0
                               else DEFAULT_SCRAPE_TIMEOUT)
        evaluation = top.optional("evaluation_interval", DURATION, DEFAULT_EVALUATION_INTERVAL)
        for key, value in (("scrape_interval", interval), ("scrape_timeout", timeout),
                           ("evaluation_interval", evaluation)):
            if value <= 0 and top.has(key):
                top.error(key, "must be above 0")
        if 0 < interval < timeout:
            top.error("scrape_timeout", f"scrape_timeout {timeout} is longer than "
                      f"scrape_interval {interval}", f"at most {interval}")
            timeout = interval
        rule_files = _read_rule_files(top, base)
        state_dir = os.path.normpath(base / top.optional("state_dir", STR, "state"))
        if os.path.exists(state_dir) and not os.path.isdir(state_dir):
            top.error("state_dir", f"{state_dir} exists and is not a folder")
        keep_all = top.optional("keep_all_series", BOOL, False)
        jobs = _read_jobs(top, base, interval, timeout)
        alertmanagers, resend_delay, queue_capacity = _read_alerting(top, base)
        backfill = _read_backfill(top, base)
        rollup_retention = top.optional("rollup_retention", DURATION, DEFAULT_ROLLUP_RETENTION)
        if rollup_retention <= 0 and top.has("rollup_retention"):
            top.error("rollup_retention", "must be above 0")
        max_samples = top.optional("query_max_samples",
                                   checked(INT, _positive, "an integer above 0"),
                                   DEFAULT_QUERY_MAX_SAMPLES)
        top.finish(TOP_HINTS)
    problems.raise_if_errors()
    targets = tuple(t for job in jobs for t in job.static_targets())
    return Config(
        path=os.path.abspath(file), listen=listen, external_labels=external,
        scrape_interval=interval, scrape_timeout=timeout, evaluation_interval=evaluation,
        rule_files=rule_files, state_dir=state_dir, keep_all_series=keep_all,
        scrape_jobs=jobs, targets=targets, alertmanagers=alertmanagers, backfill=backfill,
        resend_delay=resend_delay, notification_queue_capacity=queue_capacity,
        rollup_retention=rollup_retention, query_max_samples=max_samples,
        warnings=tuple(p for p in problems.in_file_order() if p.warning),
    )


def _read_rule_files(top: MapReader, base: Path) -> tuple[str, ...]:
    """Each glob resolved against the config folder; a glob that matches nothing is an error."""
    found: list[str] = []
    node = top.value_node("rule_files")
    patterns: list[str] = top.optional("rule_files", list_of(STR), [])
    for i, pattern in enumerate(patterns):
        matches = sorted(glob.glob(os.path.normpath(base / pattern)))
        files = [m for m in matches if os.path.isfile(m)]
        if not files:
            item = node.value[i] if node is not None else None
            top.problems.error(item, f"rule_files[{i}]", f'no file matches "{pattern}"',
                               "a glob matching rule files, relative to the config file")
        found.extend(f for f in files if f not in found)
    return tuple(found)


def _read_jobs(top: MapReader, base: Path, interval: Duration,
               timeout: Duration) -> tuple[ScrapeJob, ...]:
    """Both target forms as one job list; job names (= target names) must be unique."""
    jobs: list[ScrapeJob] = []
    first_seen: dict[str, tuple[int, int]] = {}
    for key, name_key, reader in (("targets", "name", read_simple_target),
                                  ("scrape_configs", "job_name", read_scrape_config)):
        for ctx, node in top.items(key):
            m = MapReader(node, ctx, top.problems)
            m.name_by(name_key)
            job = reader(m, base, interval, timeout)
            if not job.job_name:
                continue
            if job.job_name in first_seen:
                line, col = first_seen[job.job_name]
                m.error(name_key, f'duplicate job name "{job.job_name}" '
                        f"(first at line {line}:{col})",
                        "target names and job_names unique across targets and scrape_configs")
            else:
                first_seen[job.job_name] = position(m.value_node(name_key))
            jobs.append(job)
    if not jobs and top.ok:
        where = "targets" if top.has("targets") else None
        top.error(where, "no targets to scrape", "a targets: or scrape_configs: list")
    return tuple(jobs)


def _read_alerting(top: MapReader, base: Path,
                   ) -> tuple[tuple[AlertmanagerConfig, ...], Duration, int]:
    """`alerting: {alertmanagers: [...]}` in Prometheus's shape, API v2 only.

    Plus `resend_delay` and `notification_queue_capacity`, which Prometheus takes as flags.
    """
    alerting = top.mapping("alerting")
    if alerting is None:
        return (), DEFAULT_RESEND_DELAY, DEFAULT_NOTIFICATION_QUEUE_CAPACITY
    out: list[AlertmanagerConfig] = []
    with alerting:
        resend_delay = alerting.optional(
            "resend_delay", checked(DURATION, _positive, "a duration above 0 such as 1m"),
            DEFAULT_RESEND_DELAY)
        capacity = alerting.optional(
            "notification_queue_capacity", checked(INT, _positive, "an integer above 0"),
            DEFAULT_NOTIFICATION_QUEUE_CAPACITY)
        for ctx, node in alerting.items("alertmanagers"):
            m = MapReader(node, ctx, top.problems)
            targets: list[str] = []
            for sctx, snode in m.items("static_configs"):
                with MapReader(snode, sctx, top.problems) as s:
                    found: list[str] = s.required(
                        "targets", list_of(checked(STR, check_address, "host:port")))
                    targets.extend(found)
            path_prefix = m.optional("path_prefix", STR, "/")
            if not path_prefix.startswith("/"):
                m.error("path_prefix", f'"{path_prefix}" does not start with /', "a path")
            out.append(AlertmanagerConfig(
                targets=tuple(targets),
                scheme=m.optional("scheme", one_of("http", "https"), "http"),
                path_prefix=path_prefix,
                timeout=m.optional("timeout", DURATION, DEFAULT_ALERTMANAGER_TIMEOUT),
                api_version=m.optional("api_version", one_of("v2"), "v2"),
                http=read_http_client(m, base),
            ))
            if not targets and m.ok:
                m.error(None, "no Alertmanager addresses", "static_configs with targets")
            m.finish({k: "static_configs (the only discovery for Alertmanagers here)"
                      for k in m.present_keys() if k.endswith("_sd_configs")})
        alerting.finish({"alert_relabel_configs": "labels set in the rule files instead"})
    return tuple(out), resend_delay, capacity


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be above 0"


def _read_backfill(top: MapReader, base: Path) -> BackfillConfig | None:
    m = top.mapping("backfill")
    if m is None:
        return None
    with m:
        return BackfillConfig(
            prometheus_url=m.required("prometheus_url", checked(STR, check_http_url,
                                                                URL_EXPECTED)),
            timeout=m.optional("timeout", DURATION, DEFAULT_BACKFILL_TIMEOUT),
            http=read_http_client(m, base),
        )


def config_path_from_env(cli_path: str | None, environ: Mapping[str, str] | None = None,
                         ) -> str | None:
    """`--config` when given, else $VALUE_EXPORTER_CONFIG, else None."""
    env = os.environ if environ is None else environ
    return cli_path or env.get(ENV_CONFIG) or None


def apply_environment(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """The config with $VALUE_EXPORTER_LISTEN applied; a bad value raises UserError."""
    env = os.environ if environ is None else environ
    listen = env.get(ENV_LISTEN)
    if not listen:
        return config
    message = check_listen(listen)
    if message is not None:
        raise UserError([Problem(ENV_LISTEN, 0, 0, "environment", message, LISTEN_EXPECTED)])
    return replace(config, listen=listen)


def config_to_public_dict(config: Config) -> dict[str, Any]:
    """The loaded config in its file's shape, every secret shown as `<secret>`.

    Both target forms appear as `scrape_configs`, since that is what they normalise to.
    """
    out: dict[str, Any] = {
        "listen": config.listen,
        "external_labels": dict(config.external_labels),
        "scrape_interval": str(config.scrape_interval),
        "scrape_timeout": str(config.scrape_timeout),
        "evaluation_interval": str(config.evaluation_interval),
        "rule_files": list(config.rule_files),
        "state_dir": config.state_dir,
        "keep_all_series": config.keep_all_series,
        "rollup_retention": str(config.rollup_retention),
        "query_max_samples": config.query_max_samples,
        "scrape_configs": [public_job(j) for j in config.scrape_jobs],
    }
    if config.alertmanagers:
        out["alerting"] = {"alertmanagers": [{
            "static_configs": [{"targets": list(a.targets)}],
            "scheme": a.scheme, "path_prefix": a.path_prefix, "timeout": str(a.timeout),
            "api_version": a.api_version, **public_http(a.http),
        } for a in config.alertmanagers], "resend_delay": str(config.resend_delay),
            "notification_queue_capacity": config.notification_queue_capacity}
    if config.backfill is not None:
        b = config.backfill
        out["backfill"] = {"prometheus_url": b.prometheus_url, "timeout": str(b.timeout),
                           **public_http(b.http)}
    return out


def check_config_command(path: str) -> int:
    """`value-exporter check config FILE`: summary on stdout, problems on stderr, exit 1 on any."""
    try:
        config = load_config(path)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    dns = sum(len(j.dns_sd_configs) for j in config.scrape_jobs)
    summary = f"OK: {len(config.targets)} targets, {len(config.rule_files)} rule files"
    print(summary + (f", {dns} DNS-SD configs" if dns else ""))
    return 0
