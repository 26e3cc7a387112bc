"""Tests for the daemon config: golden bad inputs, both target forms, defaults, env, secrets.

Refresh a golden `.err` after an intended message change with:
    cd tests/testdata/config && for f in *.bad.yaml; do
      ../../../.venv/bin/python -m exporter.cli check config $f 2> $f.err; done
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from exporter.config import (
    ENV_CONFIG,
    ENV_LISTEN,
    apply_environment,
    check_config_command,
    config_path_from_env,
    config_to_public_dict,
    load_config,
)
from exporter.errors import UserError
from exporter.labels import make_labels

DATA = Path(__file__).parent / "testdata" / "config"
BAD = sorted(p.name for p in DATA.glob("*.bad.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", BAD, ids=[n.removesuffix(".bad.yaml") for n in BAD])
def test_bad_configs_report_exact_errors(name: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each bad file prints exactly its golden error lines and exits 1."""
    monkeypatch.chdir(DATA)
    assert check_config_command(name) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (DATA / f"{name}.err").read_text(encoding="utf-8")
    assert "Traceback" not in captured.err


GOOD = sorted(p.name for p in (DATA / "good").glob("*.yaml"))


@pytest.mark.parametrize("name", GOOD, ids=[n.removesuffix(".yaml") for n in GOOD])
def test_good_configs_load(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every example under good/ passes `check config` with an OK line."""
    assert check_config_command(str(DATA / "good" / name)) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_merge_keys_share_job_settings() -> None:
    """A job merged from another (`<<: *common`) inherits its settings and relabel rules."""
    config = load_config(DATA / "good" / "prometheus_shape.yaml")
    api, worker = config.scrape_jobs
    assert (worker.scrape_interval, worker.honor_labels) == (30_000, True)
    assert worker.metric_relabel_configs == api.metric_relabel_configs
    assert [t.address for t in config.targets] == ["api-1:8080", "api-2:8080", "worker:8080"]


def test_full_config_loads_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    """The good example loads; both forms become jobs; static targets expand with job/instance."""
    path = DATA / "good" / "full.yaml"
    assert check_config_command(str(path)) == 0
    assert capsys.readouterr().out == "OK: 4 targets, 2 rule files, 2 DNS-SD configs\n"
    config = load_config(path)
    assert [j.job_name for j in config.scrape_jobs] == ["checkout", "payments", "node"]
    assert [(t.url, dict(t.labels)) for t in config.targets] == [
        ("https://checkout.internal:8443/metrics?format=prometheus",
         {"instance": "checkout.internal:8443", "job": "checkout", "team": "shop"}),
        ("https://10.0.0.1:9100/probe?module=http_2xx",
         {"instance": "10.0.0.1:9100", "job": "node", "rack": "r1"}),
        ("https://node-2:9100/probe?module=http_2xx",
         {"instance": "node-2:9100", "job": "node", "rack": "r1"}),
        ("https://[::1]:9100/probe?module=http_2xx", {"instance": "[::1]:9100", "job": "node"}),
    ]
    assert [os.path.basename(f) for f in config.rule_files] == ["shop.yaml", "value.yaml"]
    checkout = config.scrape_jobs[0]
    assert (checkout.scrape_interval, checkout.scrape_timeout) == (15_000, 15_000)
    assert checkout.limits.body_size_limit == 10 * 1024 * 1024
    assert len(checkout.metric_relabel_configs) == 2
    assert config.alertmanagers[0].urls() == ("http://alertmanager:9093/am/api/v2/alerts",)
    assert config.backfill is not None and config.backfill.timeout == 120_000


def test_dns_jobs_expand_at_run_time() -> None:
    """A DNS-SD job carries no static target; the resolver asks the job for one per address."""
    config = load_config(DATA / "good" / "full.yaml")
    payments = config.scrape_jobs[1]
    assert payments.static_configs == ()
    assert payments.dns_sd_configs[0].type == "A" and payments.dns_sd_configs[0].port == 9100
    target = payments.target("10.1.2.3:9100", payments.discovered_labels)
    assert target.url == "http://10.1.2.3:9100/metrics"
    assert target.labels == make_labels({"job": "payments", "instance": "10.1.2.3:9100"})


def test_defaults(tmp_path: Path) -> None:
    """A minimal config gets Prometheus-like defaults and a state dir next to the config."""
    config = load_config(_write(tmp_path, "targets: [{name: a, url: 'http://h:1/m'}]\n"))
    assert config.listen == "127.0.0.1:9877"
    assert (config.scrape_interval, config.scrape_timeout, config.evaluation_interval) == (
        15_000, 10_000, 15_000)
    assert config.state_dir == str(tmp_path / "state")
    assert config.keep_all_series is False
    job = config.scrape_jobs[0]
    assert (job.honor_labels, job.honor_timestamps, job.metrics_path) == (False, True, "/m")
    assert config.warnings == ()


def test_timeout_defaults_to_interval_when_shorter(tmp_path: Path) -> None:
    """An unset timeout is the global one capped at the job's interval, as in Prometheus."""
    config = load_config(_write(tmp_path, (
        "scrape_configs:\n"
        "  - job_name: fast\n"
        "    scrape_interval: 5s\n"
        "    static_configs: [{targets: ['h:1']}]\n")))
    assert config.scrape_jobs[0].scrape_timeout == 5_000


def test_static_labels_override_job_and_instance(tmp_path: Path) -> None:
    """Labels set in static_configs win over the job/instance defaults, as in Prometheus."""
    config = load_config(_write(tmp_path, (
        "scrape_configs:\n"
        "  - job_name: j\n"
        "    static_configs: [{targets: ['h:1'], labels: {instance: pretty, job: other}}]\n")))
    assert config.targets[0].labels == make_labels({"instance": "pretty", "job": "other"})


def test_secrets_never_print(tmp_path: Path) -> None:
    """Inline passwords show as <secret> in repr and in the public dict, and give a warning."""
    config = load_config(_write(tmp_path, (
        "targets:\n"
        "  - name: a\n"
        "    url: http://h:1/metrics\n"
        "    basic_auth: {username: u, password: hunter2}\n")))
    assert "hunter2" not in repr(config)
    assert "hunter2" not in json.dumps(config_to_public_dict(config))
    auth = config.scrape_jobs[0].http.basic_auth
    assert auth is not None and auth.password is not None
    assert auth.password.reveal() == "hunter2"
    assert str(auth.password) == "<secret>"
    assert config_to_public_dict(config)["scrape_configs"][0]["basic_auth"]["password"] == (
        "<secret>")
    assert [str(w).split(": warning: ")[1] for w in config.warnings] == [
        "password written in the config file; expected password_file, so the secret lives "
        "outside the config"]


def test_every_error_at_once(tmp_path: Path) -> None:
    """A file with several mistakes raises one UserError listing all of them in file order."""
    path = _write(tmp_path, "scrape_interval: x\nlisten: nope\ntargets: [{name: a}]\n")
    with pytest.raises(UserError) as caught:
        load_config(path)
    assert [line.split(": ", 1)[1] for line in caught.value.lines()] == [
        "scrape_interval: got \"x\"; expected a duration like 15s, 1m30s, 1h, 30d "
        "(units y w d h m s ms, largest first)",
        'listen: "nope" has no port; expected host:port, like 127.0.0.1:9877 or :9877',
        'targets[0] "a": missing required key "url"; expected an http:// or https:// URL',
    ]


def test_environment_overrides() -> None:
    """VALUE_EXPORTER_LISTEN replaces listen; VALUE_EXPORTER_CONFIG is used without --config."""
    config = load_config(DATA / "good" / "full.yaml")
    assert apply_environment(config, {ENV_LISTEN: ":9999"}).listen == ":9999"
    assert apply_environment(config, {}).listen == "0.0.0.0:9877"
    with pytest.raises(UserError) as caught:
        apply_environment(config, {ENV_LISTEN: "nope"})
    assert caught.value.lines() == [
        'VALUE_EXPORTER_LISTEN: environment: "nope" has no port; expected host:port, '
        "like 127.0.0.1:9877 or :9877"]
    assert config_path_from_env("cli.yaml", {ENV_CONFIG: "env.yaml"}) == "cli.yaml"
    assert config_path_from_env(None, {ENV_CONFIG: "env.yaml"}) == "env.yaml"
    assert config_path_from_env(None, {}) is None


def test_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist prints one line and exits 1."""
    assert check_config_command(str(tmp_path / "nope.yaml")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{tmp_path / 'nope.yaml'}: cannot read file:")
    assert err.count("\n") == 1


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, "utf8", id="default-utf8"),
    pytest.param("legacy", "legacy", id="legacy"),
])
def test_metric_name_validation_scheme(tmp_path: Path, value: str | None, expected: str) -> None:
    """Jobs accept UTF-8 names by default, as Prometheus 3 does; `legacy` asks for classic."""
    extra = "" if value is None else f"\n    metric_name_validation_scheme: {value}"
    path = tmp_path / "c.yaml"
    path.write_text("targets:\n  - name: shop\n    url: http://127.0.0.1:1/metrics" + extra + "\n")
    (job,) = load_config(path).scrape_jobs
    assert job.metric_name_validation_scheme == expected
