"""Other SLO specs (OpenSLO v1, Sloth prometheus/v1) -> a value-exporter rule file with `slos:`.

Each importer maps the foreign spec onto the on-disk `slos:` shape, one SLO at a time; every
generated SLO is then read back with the real loader, so the output always loads. Whatever has
no exact counterpart is named on stderr, one line each:
`file: slo "x": cannot convert what: reason`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from exporter.rules.slo_load import label_name_problem, read_slos
from exporter.yamlnodes import MapReader, Problems, compose_text

Doc = dict[str, Any]
_NAME_CHARS = re.compile(r"[^a-z0-9_-]+")
# Sloth's page and ticket alerts are exactly the four default tiers, two each.
_SLOTH_TIERS = {"page_alert": ("page-fast", "page-slow"),
                "ticket_alert": ("ticket-fast", "ticket-slow")}
_KEY_ORDER = ("name", "service", "description", "owner", "labels", "objective", "window", "sli",
              "budgeting", "group_by", "no_data", "series_limit", "maintenance", "alerting")


class InvalidInput(Exception):
    """The input is not a spec of the requested kind at all; nothing can be converted."""


class CannotConvert(Exception):
    """One SLO (or one part of it) has no counterpart; `what` names the part."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class Notes:
    """The lines telling the user what did not convert, or converted only approximately."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []

    def cannot(self, slo: str, what: str, reason: str) -> None:
        """Something of SLO `slo` was dropped."""
        self.lines.append(f'{self.file}: slo "{slo}": cannot convert {what}: {reason}')

    def approximately(self, slo: str, what: str, reason: str) -> None:
        """Something of SLO `slo` converted, but with a different meaning at the edges."""
        self.lines.append(f'{self.file}: slo "{slo}": converted {what} approximately: {reason}')

    def document(self, index: int, kind: str, reason: str) -> None:
        """A whole document of the input was dropped."""
        self.lines.append(f"{self.file}: document {index} (kind {kind}): cannot convert: {reason}")


def import_command(kind: str, path: str, output: str) -> int:
    """`value-exporter import openslo|sloth FILE [-o OUT]`: 1 on bad input or nothing converted."""
    from exporter.importers_openslo import convert_openslo

    notes = Notes(path)
    try:
        docs = _read_documents(path)
        converted = convert_openslo(docs, notes) if kind == "openslo" else convert_sloth(
            docs, notes)
    except InvalidInput as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    slos = checked_slos(converted, notes)
    for line in notes.lines:
        print(line, file=sys.stderr)
    if not slos:
        print(f"{path}: no SLO could be converted", file=sys.stderr)
        return 1
    text = render_rule_file(slos, kind, Path(path).name)
    if output == "-":
        sys.stdout.write(text)
    else:
        _write_atomically(output, text)
    return 0


def _read_documents(path: str) -> list[Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read file: {exc}") from None
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid YAML: {exc}".replace("\n", " ")) from None


def checked_slos(converted: list[Doc], notes: Notes) -> list[Doc]:
    """The converted SLOs that load with the real reader; the rest become notes."""
    kept: list[Doc] = []
    names: set[str] = set()
    for slo in converted:
        name = str(slo.get("name", ""))
        if name in names:
            notes.cannot(name, "the SLO", "another SLO in the input has the same name")
            continue
        problems = Problems("converted")
        root = compose_text(yaml.safe_dump({"slos": [slo]}, sort_keys=False), problems)
        with MapReader(root, "", problems) as top:
            read_slos(top, "converted", problems, {})
        errors = problems.errors
        if errors:
            # The loader's context starts with `slos[0] "name"`; the note already names the SLO.
            what = errors[0].context.split(", ", 1)[1] if ", " in errors[0].context else "the SLO"
            expected = f"; expected {errors[0].expected}" if errors[0].expected else ""
            notes.cannot(name, what, errors[0].message + expected)
            continue
        names.add(name)
        kept.append(slo)
    return kept


def render_rule_file(slos: list[Doc], kind: str, source: str) -> str:
    """The rule file text: a header saying where it came from, then `version` and `slos`."""
    spec = {"openslo": "OpenSLO v1", "sloth": "Sloth prometheus/v1"}[kind]
    header = (f"# Converted from {spec} ({source}) by `value-exporter import {kind}`.\n"
              "# Review it, then edit freely: nothing regenerates this file.\n")
    ordered = [{k: _plain(slo[k]) for k in _KEY_ORDER if k in slo} for slo in slos]
    body = yaml.dump({"version": "value-exporter/v1", "slos": ordered}, Dumper=_Dumper,
                     sort_keys=False, allow_unicode=True, width=1000)
    return header + body


class _Dumper(yaml.SafeDumper):
    """Writes every value in place (no &anchors) and short lists of names inline."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _list_inline(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(isinstance(v, str | int | float) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


def _str_block(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line PromQL stays readable as a literal block instead of one escaped line.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _list_inline)
_Dumper.add_representer(str, _str_block)


def _plain(value: Any) -> Any:
    """Whole numbers as integers (99, not 99.0), recursively, as a person would write them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _write_atomically(path: str, text: str) -> None:
    # A temp file and a rename: a reader never sees half a rule file.
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".import-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def slo_name(raw: object, notes: Notes) -> str:
    """A valid SLO name from a foreign one (lower case, other characters as -), noted if changed."""
    text = str(raw or "")
    name = _NAME_CHARS.sub("-", text.lower()).strip("-_") or "slo"
    if name != text:
        notes.approximately(text, "the name", f'renamed to "{name}": SLO names are lower-case '
                            "letters, digits, - and _")
    return name


def label_map(slo: str, what: str, raw: object, notes: Notes) -> dict[str, str]:
    """Labels whose names Prometheus (and the SLO series) accept; the others become notes."""
    labels: dict[str, str] = {}
    if not isinstance(raw, dict):
        return labels
    for key, value in raw.items():
        problem = label_name_problem(str(key))
        if problem is not None:
            notes.cannot(slo, f'{what} "{key}"', problem)
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        labels[str(key)] = "" if value is None else str(value)
    return labels


def percent(value: float) -> float:
    """A percent without float noise (0.9995 * 100 is 99.94999999999999)."""
    return float(f"{value:.10g}")


def convert_sloth(docs: list[Any], notes: Notes) -> list[Doc]:
    """Sloth `prometheus/v1` specs (or `PrometheusServiceLevel` objects) -> SLO mappings."""
    out: list[Doc] = []
    for i, doc in enumerate(docs, 1):
        if isinstance(doc, dict) and doc.get("kind") == "PrometheusServiceLevel":
            doc = doc.get("spec")
        elif not isinstance(doc, dict) or doc.get("version") != "prometheus/v1":
            raise InvalidInput(f'document {i} is not a Sloth spec; expected version: '
                               '"prometheus/v1" or kind: PrometheusServiceLevel')
        if not isinstance(doc, dict) or not isinstance(doc.get("slos"), list):
            raise InvalidInput(f"document {i} has no slos list")
        for slo in doc["slos"]:
            if not isinstance(slo, dict):
                raise InvalidInput(f"document {i}: an SLO is not a mapping")
            try:
                out.append(_sloth_slo(doc, slo, notes))
            except CannotConvert as exc:
                notes.cannot(str(slo.get("name", "")), exc.what, exc.reason)
    return out


def _sloth_slo(spec: Doc, slo: Doc, notes: Notes) -> Doc:
    name = slo_name(slo.get("name"), notes)
    out: Doc = {"name": name, "service": str(spec.get("service", ""))}
    if slo.get("description"):
        out["description"] = str(slo["description"])
    labels = {**label_map(name, "label", spec.get("labels"), notes),
              **label_map(name, "label", slo.get("labels"), notes)}
    if labels:
        out["labels"] = labels
    out["objective"] = slo.get("objective")
    # Sloth's SLO period is a command-line flag (default 30d), not part of the spec.
    out["window"] = "30d"
    sli = slo.get("sli") or {}
    if "events" in sli:
        events = sli["events"] or {}
        out["sli"] = {"events": {"error_query": str(events.get("error_query", "")).strip(),
                                 "total_query": str(events.get("total_query", "")).strip()}}
    elif "raw" in sli:
        raise CannotConvert("sli.raw", "an error ratio query has no event counts, so the budget "
                            "over the window cannot be an exact sum of events (Sloth averages "
                            "ratios); rewrite it as events with error_query and total_query")
    elif "plugin" in sli:
        plugin = (sli["plugin"] or {}).get("id", "")
        raise CannotConvert(f'sli.plugin "{plugin}"', "plugins are Go code that Sloth runs to "
                            "build queries; write the queries they produce as events")
    else:
        raise CannotConvert("sli", "no events, raw or plugin SLI")
    alerting = _sloth_alerting(name, slo.get("alerting") or {}, notes)
    if alerting:
        out["alerting"] = alerting
    return out


def _sloth_alerting(slo: str, alerting: Doc, notes: Notes) -> Doc:
    out: Doc = {}
    if alerting.get("name"):
        notes.cannot(slo, f'alerting.name "{alerting["name"]}"', "alert names derive from the "
                     "SLO and tier names; route on the slo label instead")
    annotations = {str(k): str(v) for k, v in (alerting.get("annotations") or {}).items()}
    for key in ("runbook_url", "runbook"):
        if str(annotations.get(key, "")).startswith(("https://", "http://")):
            out["runbook_url"] = annotations.pop(key)
            break
    labels = label_map(slo, "alerting label", alerting.get("labels"), notes)
    if labels:
        out["labels"] = labels
    if annotations:
        out["annotations"] = annotations
    tiers: Doc = {}
    for key, names in _SLOTH_TIERS.items():
        alert = alerting.get(key) or {}
        if alert.get("disable"):
            tiers.update(dict.fromkeys(names, False))
            continue
        alert_labels = dict(alert.get("labels") or {})
        severity = alert_labels.pop("severity", None)
        if severity:
            tiers.update({n: {"severity": str(severity)} for n in names})
        for part, values in (("labels", alert_labels), ("annotations", alert.get("annotations"))):
            if values:
                notes.cannot(slo, f"alerting.{key}.{part}", "value-exporter sets labels and "
                             "annotations per SLO, not per tier; route on the severity label")
    if tiers:
        out["tiers"] = tiers
    return out
