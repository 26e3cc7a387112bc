"""compile (rule model -> Prometheus rules file or PrometheusRule): the scale-out path.

`value-exporter compile RULEFILE... [-o DIR] [--format rules|prometheusrule]` writes, per
input file, its plain `groups:` unchanged and, per SLO, a recording group computing every
SLO series (exporter/compile_slo.py) followed by the SLO's alert group
(exporter/slo_rules.py, the same alerts the sidecar evaluates).

Tolerance against the sidecar. Both engines count the same events per evaluation interval
(interval = the rule group's `interval`, 1m by default) and sum those per-interval counts over
every window, so window boundaries and bucket assignment agree. The per-interval count is
identical (`x - x offset 1m`, the difference of the last samples at the two evaluations)
except in an interval where a counter resets or a series first appears: there Prometheus
uses `increase(x[1m])`, which extrapolates, and may differ from the sidecar's exact count by
up to one scrape interval's worth of that series' events (by design unbiased for steady
traffic). The events SLI extrapolates in both engines alike. Prometheus also loses the
intervals it did not evaluate (restarts, missed evaluations) and its `slo:events:total` is a
self-accumulating recording rule that restarts from zero after a gap of two intervals.

Several sidecars, one service (`--from-sidecars`): each sidecar exports its SLOs' monotonic
`slo:events:total` and `slo:good_events:total`; compiled this way, every SLO reads those
counters (scraped, so with a `job` label) summed over all sidecars instead of the raw SLI,
and Prometheus computes the service-wide SLO. Maintenance is already left out by the
sidecars' counters, so it is not applied a second time.

Not compiled, with an error naming the SLO: calendar windows and maintenance windows in a
zone with daylight saving time (PromQL's date functions are UTC only; fixed offsets such as
Etc/GMT-1 compile), timeslices budgeting and no_data good/bad (their slice and interval
bookkeeping lives in the sidecar's buckets).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from exporter import conventions as c
from exporter.compile_slo import slo_series_group
from exporter.compile_time import NotFixedOffset, fixed_offset_seconds
from exporter.durations import format_duration
from exporter.errors import Problem, UserError
from exporter.rules.generate import generated_groups
from exporter.rules.load import load_rule_files
from exporter.rules.model import AlertingRule, RuleGroup, RuleSet
from exporter.rules.slo_model import SLO, CalendarWindow, RatioSLI
from exporter.slo_rules import slo_alert_group

DEFAULT_INTERVAL_MS = 60_000
FORMATS = ("rules", "prometheusrule")
_FIXED_EXPECTED = "UTC or a fixed offset like Etc/GMT-1"


def compile_command(files: Sequence[str], output: str, fmt: str, *,
                    interval_ms: int = DEFAULT_INTERVAL_MS, from_sidecars: bool = False) -> int:
    """`value-exporter compile`: one output per input file; exit 1 with every error at once."""
    try:
        ruleset = load_rule_files(files)
        if from_sidecars:
            ruleset = replace(ruleset, slos=tuple(sidecar_slo(s) for s in ruleset.slos))
        texts = compile_files(ruleset, fmt, interval_ms=interval_ms)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    if output == "-":
        sys.stdout.write("---\n".join(texts[f] for f in ruleset.files))
        return 0
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in texts.items():
        _write_atomically(folder / Path(file).name, text)
    return 0


def sidecar_slo(slo: SLO) -> SLO:
    """The SLO computed from the event counters its sidecars export, summed over them all."""
    def scraped(name: str) -> str:
        # Scraped copies carry the sidecar's job label; the rules' own outputs of the same
        # names do not, and must not be counted again.
        return f'{name}{{{c.SLO_LABEL}="{slo.name}", job!=""}}'

    return replace(slo, sli=RatioSLI(total=scraped(c.SLO_EVENTS), good=scraped(c.SLO_GOOD_EVENTS)),
                   maintenance=())


def compile_files(ruleset: RuleSet, fmt: str, *,
                  interval_ms: int = DEFAULT_INTERVAL_MS) -> dict[str, str]:
    """The output text for each input file of the rule set; UserError naming each SLO that
    cannot compile. Never changes the rule set."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    problems = [p for i, slo in _indexed(ruleset.slos) for p in slo_problems(slo, i)]
    if problems:
        raise UserError(problems)
    out: dict[str, str] = {}
    for file in ruleset.files:
        groups = compile_groups(ruleset, file, interval_ms=interval_ms)
        document = _groups_document(groups)
        if fmt == "prometheusrule":
            document = _prometheus_rule(file, document)
        out[file] = header(file) + dump_yaml(document)
    return out


def compile_groups(ruleset: RuleSet, file: str, *,
                   interval_ms: int = DEFAULT_INTERVAL_MS) -> list[RuleGroup]:
    """The file's own groups, then per SLO its recording group and its alert group."""
    groups = [g for g in ruleset.groups if g.file == file]
    for slo in ruleset.slos:
        if slo.source.file == file:
            groups.append(slo_series_group(slo, interval_ms=interval_ms))
            groups.append(slo_alert_group(slo, interval_ms=interval_ms, values=ruleset.values))
    groups.extend(generated_groups(ruleset, interval_ms, file))
    return groups


def header(file: str) -> str:
    """The generated-file header naming the input."""
    return f"# Generated by value-exporter compile from {Path(file).name}. Do not edit.\n"


def _indexed(slos: Sequence[SLO]) -> list[tuple[int, SLO]]:
    # An SLO's index within its own file, as the loader's messages number it.
    counts: dict[str, int] = {}
    out = []
    for slo in slos:
        i = counts.get(slo.source.file, 0)
        counts[slo.source.file] = i + 1
        out.append((i, slo))
    return out


def slo_problems(slo: SLO, index: int) -> list[Problem]:
    """Why an SLO cannot compile to PromQL (empty when it can)."""
    src = slo.source
    where = f'slos[{index}] "{slo.name}"'
    problems: list[Problem] = []

    def problem(ctx: str, message: str, expected: str) -> None:
        problems.append(Problem(src.file, src.line, src.col, f"{where}, {ctx}", message, expected))

    window = slo.window
    if isinstance(window, CalendarWindow) and not _is_fixed(window.timezone):
        problem("window", f"calendar windows in {window.timezone} cannot compile to PromQL "
                "(daylight saving time)", _FIXED_EXPECTED)
    for i, m in enumerate(slo.maintenance):
        if not _is_fixed(m.timezone):
            problem(f"maintenance[{i}]", f"maintenance windows in {m.timezone} cannot compile "
                    "to PromQL (daylight saving time)", _FIXED_EXPECTED)
    if slo.budgeting is not None:
        problem("budgeting", "timeslices budgeting cannot compile to PromQL (slices are judged "
                "from the sidecar's buckets)", "budgeting: occurrences, or this SLO in the sidecar")
    if slo.no_data != "ignore":
        problem("no_data", f"no_data: {slo.no_data} cannot compile to PromQL (an empty interval "
                "is counted from the sidecar's buckets)", "no_data: ignore, or this SLO in the "
                "sidecar")
    return problems


def _is_fixed(timezone: str) -> bool:
    try:
        fixed_offset_seconds(timezone)
    except NotFixedOffset:
        return False
    return True


# -- rendering ---------------------------------------------------------------------------------


def _groups_document(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    return {"groups": [_group_dict(g) for g in groups]}


def _group_dict(group: RuleGroup) -> dict[str, Any]:
    # Prometheus's own key order (name, interval, ..., rules) reads best; labels sorted.
    out: dict[str, Any] = {"name": group.name}
    if group.interval_ms is not None:
        out["interval"] = format_duration(group.interval_ms)
    if group.query_offset_ms is not None:
        out["query_offset"] = format_duration(group.query_offset_ms)
    if group.limit:
        out["limit"] = group.limit
    if group.labels:
        out["labels"] = dict(sorted(group.labels))
    rules: list[dict[str, Any]] = []
    for rule in group.rules:
        if isinstance(rule, AlertingRule):
            r: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
            if rule.for_ms:
                r["for"] = format_duration(rule.for_ms)
            if rule.keep_firing_for_ms:
                r["keep_firing_for"] = format_duration(rule.keep_firing_for_ms)
            if rule.labels:
                r["labels"] = dict(sorted(rule.labels))
            if rule.annotations:
                r["annotations"] = dict(sorted(rule.annotations))
        else:
            r = {"record": rule.name, "expr": rule.expr}
            if rule.labels:
                r["labels"] = dict(sorted(rule.labels))
        rules.append(r)
    out["rules"] = rules
    return out


def _prometheus_rule(file: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": resource_name(file)},
        "spec": document,
    }


def resource_name(file: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain) from a file name: `SLOs_shop.yaml` ->
    `slos-shop`."""
    stem = Path(file).name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")
    return name[:253] or "rules"


class _Dumper(yaml.SafeDumper):
    """Block style, literal blocks for multi-line PromQL, insertion order kept."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(document: dict[str, Any]) -> str:
    """Deterministic YAML: dict order as built, wide lines, literal multi-line strings."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
