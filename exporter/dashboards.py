"""dashboards (rule model -> Grafana dashboards JSON): business value, service levels, health.

`value-exporter dashboards RULEFILE... -o DIR` writes one JSON file per dashboard. The output
is deterministic (sorted keys, panel ids numbered in layout order, explicit refIds, uids
hashed from kind and service) so the files can be committed and CI can regenerate and diff
them. Building is pure; only `dashboards_command` touches the disk.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from exporter.dashboards_health import health_dashboard
from exporter.dashboards_panels import ALL_SERVICES, BUSINESS, HEALTH, SERVICE_LEVELS
from exporter.dashboards_slo import service_levels_dashboard
from exporter.dashboards_value import business_dashboard
from exporter.errors import UserError
from exporter.rules.load import load_rule_files
from exporter.rules.model import RuleSet


def build_dashboards(ruleset: RuleSet,
                     service: str = ALL_SERVICES) -> dict[str, dict[str, Any]]:
    """Each dashboard as a JSON-ready dict, by file name; never changes the rule set.

    `service` presets the service variable and goes into titles, file names and uids, so
    one service's set links within itself and lives beside the all-services set.
    """
    suffix = "" if service == ALL_SERVICES else f"-{service}"
    built = {
        f"{BUSINESS}{suffix}.json": business_dashboard(ruleset, service).build(),
        f"{SERVICE_LEVELS}{suffix}.json": service_levels_dashboard(ruleset, service).build(),
        f"{HEALTH}{suffix}.json": health_dashboard(service).build(),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, dashboard in built.items():
        # The encoder turns the SDK's model objects into plain JSON values.
        plain: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
        _number_panels(plain)
        out[name] = plain
    return out


def _number_panels(dashboard: dict[str, Any]) -> None:
    """Panel ids 1, 2, ... in layout order (rows included), so ids never depend on build order."""
    next_id = 1
    for panel in dashboard.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1


def render_dashboard(dashboard: dict[str, Any]) -> str:
    """The committed text of one dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(dashboard, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def dashboards_command(files: Sequence[str], output: str,
                       service: str | None = None) -> int:
    """`value-exporter dashboards`: write every dashboard into `output`; exit 1 on bad rules."""
    try:
        ruleset = load_rule_files(files)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    services = sorted({slo.service for slo in ruleset.slos})
    if service is not None and service not in services:
        print(f"value-exporter dashboards: --service: unknown service {service!r}; expected "
              f"one of the rule files' SLO services: {', '.join(services) or '(none)'}",
              file=sys.stderr)
        return 1
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    for name, dashboard in build_dashboards(ruleset, service or ALL_SERVICES).items():
        _write_atomically(folder / name, render_dashboard(dashboard))
    return 0


def _write_atomically(path: Path, text: str) -> None:
    # A half-written dashboard would be picked up by Grafana's file watcher: rename instead.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp creates 0600; Grafana often runs as another user and must read the file.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
