"""`value-exporter report`: load the config and rules, read a source, write the report file."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from exporter.config import load_config
from exporter.errors import UserError
from exporter.report import ReportError, build_report, parse_at, period_of
from exporter.report_render import html, markdown
from exporter.report_sources import PrometheusSource, StateSource
from exporter.rules.load import load_rule_files

CONFIG_ENV = "VALUE_EXPORTER_CONFIG"


def report_command(config_path: str | None, period: str, at: str | None, fmt: str,
                   output: str, prometheus: str | None,
                   clock: Callable[[], float] = time.time) -> int:
    """Write the report; every problem is one line on stderr and exit status 1."""
    path = config_path or os.environ.get(CONFIG_ENV)
    if not path:
        print(f"value-exporter report: no config file; expected --config FILE or ${CONFIG_ENV}",
              file=sys.stderr)
        return 1
    try:
        config = load_config(path)
        rules = load_rule_files(list(config.rule_files))
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    now_ms = int(clock() * 1000)
    try:
        when = parse_at(at) if at else datetime.fromtimestamp(now_ms / 1000, UTC)
        chosen = period_of(period, when, now_ms)
        source = PrometheusSource(prometheus) if prometheus else StateSource(config.state_dir)
        try:
            report = build_report(rules, source, chosen, now_ms)
        finally:
            source.close()
        text = html(report) if fmt == "html" else markdown(report)
        _write_atomically(Path(output), text)
    except ReportError as exc:
        print(f"value-exporter report: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"value-exporter report: {output}: cannot write: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(f"wrote {output}: {chosen.label}" + (" (to date)" if chosen.to_date else ""))
    return 0


def _write_atomically(path: Path, text: str) -> None:
    # A temporary file in the same folder, then a rename: a reader never sees half a report.
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
