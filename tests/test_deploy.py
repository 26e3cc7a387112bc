"""Tests for what ships beside the code: the Dockerfile and the Kubernetes manifests."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import load_config
from tests.shared_data import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    """The image drops root before its entrypoint, exposes the port and has a HEALTHCHECK."""
    instructions = _instructions()
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    words = [word for word, _ in instructions]
    assert words.index("USER") < words.index("ENTRYPOINT")
    assert ("EXPOSE", "9877") in instructions
    assert any(word == "HEALTHCHECK" for word in words)
    assert any("tzdata" in args for word, args in instructions if word == "RUN")
    assert any(word == "VOLUME" for word in words)


def _healthcheck_command() -> list[str]:
    args = next(a for w, a in _instructions() if w == "HEALTHCHECK")
    cmd = args[args.index("CMD ") + 4:]
    parsed: list[str] = json.loads(cmd)
    return parsed


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the project installed as the Dockerfile installs it."""
    root = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    pip_steps = [a for w, a in _instructions() if w == "RUN" and a.startswith("pip install")]
    assert pip_steps, "the Dockerfile installs the project with pip"
    for step in pip_steps:
        argv = shlex.split(step)
        subprocess.run([str(root / "bin" / "python"), "-m", *argv], cwd=REPO_ROOT, check=True,
                       capture_output=True, timeout=600)
    return root


def test_dockerfile_install_steps_and_healthcheck(image_venv: Path, tmp_path: Path) -> None:
    """The install steps give a working CLI and the HEALTHCHECK passes against a live daemon."""
    exe = image_venv / "bin" / "value-exporter"
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "run" in help_text.stdout
    config = tmp_path / "config.yaml"
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    config.write_text(
        f"listen: 127.0.0.1:0\nrule_files: [rules.yaml]\nstate_dir: {tmp_path}\n"
        "targets: [{name: app, url: 'http://127.0.0.1:9/metrics'}]\n"
    )
    from exporter.daemon import Daemon

    daemon = Daemon(str(config))
    daemon.start()
    try:
        command = _healthcheck_command()
        command[0] = str(image_venv / "bin" / command[0])
        env = {**os.environ, "VALUE_EXPORTER_LISTEN": daemon.listen_address}
        ok = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr
    finally:
        daemon.stop()
    env = {**os.environ, "VALUE_EXPORTER_LISTEN": daemon.listen_address}
    down = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0


def _documents(folder: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


@pytest.mark.parametrize("shape", ["sidecar", "per-service"])
def test_kubernetes_manifests(shape: str, tmp_path: Path) -> None:
    """Each shape keeps state on a PVC, probes health, honours labels and has a valid config."""
    docs = _documents(KUBERNETES / shape)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "PersistentVolumeClaim", "ServiceMonitor", "ConfigMap"} <= kinds
    deployment = next(d for d in docs if d["kind"] == "Deployment"
                      and any(c["name"] == "value-exporter"
                              for c in d["spec"]["template"]["spec"]["containers"]))
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "value-exporter")
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    state_volume = next(v for v in pod["volumes"] if v["name"] == "state")
    assert "persistentVolumeClaim" in state_volume, "an emptyDir would lose error budgets"
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert all(e["honorLabels"] is True for e in monitor["spec"]["endpoints"])
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    for name, content in configmap["data"].items():
        (tmp_path / name).write_text(content)
    raw = yaml.safe_load(configmap["data"]["config.yaml"])
    raw["rule_files"] = [Path(p).name for p in raw["rule_files"]]
    raw["state_dir"] = str(tmp_path / "state")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(str(tmp_path / "config.yaml"))
    assert config.scrape_jobs
    if shape == "per-service":
        assert config.scrape_jobs[0].dns_sd_configs


def test_python_version_matches_the_image() -> None:
    """The image's Python satisfies the project's requires-python."""
    base = next(a for w, a in _instructions() if w == "FROM")
    major, minor = map(int, re.search(r"python:(\d+)\.(\d+)", base).groups())  # type: ignore[union-attr]
    assert (major, minor) >= (3, 11)
    assert sys.version_info >= (3, 11)
