"""Rule files -> rule model: Prometheus's `groups:` format read strictly, every error at once."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from exporter.errors import Problem, UserError
from exporter.labels import METRIC_NAME
from exporter.promql.parse import parse_expr
from exporter.promql.values import PromQLError
from exporter.rules.journey_load import check_slo_references, read_improvements, read_journeys
from exporter.rules.journey_model import Improvement, Journey
from exporter.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup, RuleSet, Source
from exporter.rules.slo_load import mapping_value, read_slos
from exporter.rules.slo_model import SLO
from exporter.rules.value_load import ValueScope, read_value_sections
from exporter.templates import check_template
from exporter.yamlkinds import DURATION, INT, STR, map_of
from exporter.yamlnodes import MapReader, Problems, compose_file, position

SUPPORTED_VERSIONS = ("value-exporter/v1",)

# Sections that later parts of the rule format add; until then they are named, not "unknown".
_FUTURE_SECTIONS: dict[str, str] = {}


def _label_name_problem(name: str) -> str | None:
    if not name:
        return "empty label name"
    if name == METRIC_NAME:
        return f'label name "{name}" is reserved'
    return None


LABELS = map_of(STR, _label_name_problem, "valid label names")


def load_rule_files(paths: Sequence[str | Path], warnings: list[Problem] | None = None) -> RuleSet:
    """Load and validate rule files; raises UserError listing every problem in every file.

    Warnings (likely mistakes that still load) go to `warnings` when given; they are in the
    UserError too when the load fails.
    """
    groups: list[RuleGroup] = []
    slos: list[SLO] = []
    journeys: list[Journey] = []
    improvements: list[Improvement] = []
    # SLO, journey and improvement names are global: every series carries slo="name" (etc.).
    seen_slos: dict[str, Source] = {}
    seen_business: tuple[dict[str, Source], dict[str, Source]] = ({}, {})
    value_scope = ValueScope()  # parameters and value series are global too
    problems: list[Problem] = []
    for path in paths:
        file_problems = Problems(str(path))
        file_groups, file_slos = _read_file(str(path), file_problems, seen_slos,
                                            (journeys, improvements, *seen_business), value_scope)
        groups.extend(file_groups)
        slos.extend(file_slos)
        problems.extend(file_problems.in_file_order())
    problems.extend(check_slo_references(journeys, seen_slos))
    if any(not p.warning for p in problems):
        raise UserError(problems)
    if warnings is not None:
        warnings.extend(p for p in problems if p.warning)
    return RuleSet(groups=tuple(groups), files=tuple(str(p) for p in paths), slos=tuple(slos),
                   journeys=tuple(journeys), improvements=tuple(improvements),
                   parameters=tuple(value_scope.parameters.values()),
                   values=tuple(value_scope.values))


# Where the business sections of every file collect: journeys, improvements, and the names
# seen so far of each.
_Business = tuple[list[Journey], list[Improvement], dict[str, Source], dict[str, Source]]


def _read_file(path: str, problems: Problems, seen_slos: dict[str, Source],
               business: _Business, value_scope: ValueScope) -> tuple[list[RuleGroup], list[SLO]]:
    root = compose_file(path, problems)
    if problems.error_count():
        return [], []
    groups: list[RuleGroup] = []
    with MapReader(root, "", problems) as top:
        version = top.optional("version", STR, SUPPORTED_VERSIONS[0])
        if version not in SUPPORTED_VERSIONS:
            top.error("version", f'unknown version "{version}"', " or ".join(SUPPORTED_VERSIONS))
        seen: set[str] = set()
        for ctx, node in top.items("groups"):
            name, group = _read_group(path, ctx, node, problems)
            if name in seen:
                problems.error(node, f'{ctx} "{name}"', f'duplicate group name "{name}"',
                               "group names unique within a file")
            seen.add(name)
            if group is not None:
                groups.append(group)
        slos = read_slos(top, path, problems, seen_slos)
        read_value_sections(top, path, problems, value_scope, slos)
        journeys, improvements, seen_journeys, seen_improvements = business
        journeys.extend(read_journeys(top, path, problems, seen_journeys, value_scope))
        improvements.extend(read_improvements(top, path, problems, seen_improvements))
        for key in _FUTURE_SECTIONS:
            if top.has(key):
                top.error(key, f'section "{key}" is not supported yet', _FUTURE_SECTIONS[key])
                top.value_node(key)
    return groups, slos


def _read_group(
    path: str, ctx: str, node: yaml.Node, problems: Problems
) -> tuple[str, RuleGroup | None]:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as g:
        name = g.name_by("name")
        g.required("name", STR)
        interval = g.optional("interval", DURATION, None)
        query_offset = g.optional("query_offset", DURATION, None)
        limit = g.optional("limit", INT, 0)
        if limit < 0:
            g.error("limit", f"limit must not be negative, got {limit}", "0 (no limit) or more")
        if interval is not None and interval <= 0:
            g.error("interval", "interval must be positive", "a duration like 1m")
        labels = g.optional("labels", LABELS, {})
        rules: list[Rule] = []
        rule_nodes = list(g.items("rules"))
        if not g.has("rules"):
            g.error(None, 'missing required key "rules"', "a list of recording and alerting rules")
        for i, (_, rnode) in enumerate(rule_nodes):
            rule = _read_rule(path, f"{g.where}, rule {i + 1}", rnode, problems)
            if rule is not None:
                rules.append(rule)
    if problems.error_count() != before:
        return name, None
    return name, RuleGroup(
        name=name,
        file=path,
        rules=tuple(rules),
        interval_ms=int(interval) if interval is not None else None,
        query_offset_ms=int(query_offset) if query_offset is not None else None,
        limit=limit,
        labels=tuple(sorted(labels.items())),
    )


_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


def _read_rule(path: str, ctx: str, node: yaml.Node, problems: Problems) -> Rule | None:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as r:
        is_alert = r.has("alert")
        if is_alert == r.has("record"):
            r.error(None, "a rule needs exactly one of record and alert",
                    '"record: name" or "alert: name"')
            for key in _RULE_KEYS:  # the shape is wrong; spare the key-by-key noise
                r.value_node(key)
            return None
        kind = "alert" if is_alert else "record"
        name = r.required(kind, STR)
        r.ctx = f"{ctx} {yaml.safe_dump(name, default_style=chr(34)).strip()}" if name else ctx
        expr = r.required("expr", STR)
        expr_node = r.value_node("expr")
        if expr:
            _check_expr(expr, expr_node, r.child("expr"), problems)
        if not name:
            r.error(kind, f"{kind} name must not be empty")
        labels = r.optional("labels", LABELS, {})
        source = Source(path, *position(node))
        if is_alert:
            for_ms = r.optional("for", DURATION, 0)
            keep = r.optional("keep_firing_for", DURATION, 0)
            annotations = r.optional("annotations", map_of(STR), {})
            _check_templates(r, name, labels, annotations)
        else:
            for key in ("for", "keep_firing_for", "annotations"):
                if r.has(key):
                    r.error(key, f'invalid field "{key}" in recording rule',
                            "it only on alerting rules")
                    r.value_node(key)
    if problems.error_count() != before:
        return None
    if is_alert:
        return AlertingRule(
            name=name,
            expr=expr,
            for_ms=int(for_ms),
            keep_firing_for_ms=int(keep),
            labels=tuple(sorted(labels.items())),
            annotations=tuple(sorted(annotations.items())),
            source=source,
        )
    return RecordingRule(name=name, expr=expr, labels=tuple(sorted(labels.items())), source=source)


def _check_templates(
    r: MapReader, name: str, labels: dict[str, str], annotations: dict[str, str]
) -> None:
    """Alert label and annotation templates must parse, as promtool's check rules demands."""
    pairs = (("labels", "label", labels), ("annotations", "annotation", annotations))
    for key, kind, texts in pairs:
        for field_name, text in texts.items():
            problem = check_template(text, "__alert_" + name)
            if problem is not None:
                # Point at the template itself, not at the start of the mapping.
                node = mapping_value(r.value_node(key), field_name) or r.value_node(key)
                r.problems.error(node, r.child(key), f'{kind} "{field_name}": {problem}',
                                 "a valid Go template")


def _check_expr(expr: str, node: yaml.Node | None, ctx: str, problems: Problems) -> None:
    try:
        tree = parse_expr(expr)
    except PromQLError as exc:
        problems.error(node, ctx, str(exc), "a valid PromQL expression")
        return
    while type(tree).__name__ == "ParenExpr":
        tree = tree.expr
    kind = type(tree).__name__
    if kind in ("MatrixSelector", "SubqueryExpr", "StringLiteral"):
        what = "a string" if kind == "StringLiteral" else "a range vector"
        problems.error(node, ctx, f"expression returns {what}", "an instant vector or a scalar")


def check_rules_command(paths: Sequence[str]) -> int:
    """`value-exporter check rules FILE...`: every problem of every file, exit 1 on any error.

    The files are checked together, as the daemon loads them: a value metric or a journey may
    name an SLO or a parameter defined in another of the files.
    """
    warnings: list[Problem] = []
    try:
        rules = load_rule_files(paths, warnings)
    except UserError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    for warning in warnings:
        print(warning, file=sys.stderr)
    for path in paths:
        print(f"OK: {path}: {_summary(rules, str(path))}")
    return 0


def _summary(rules: RuleSet, path: str) -> str:
    parts = [f"{sum(1 for g in rules.groups if g.file == path)} groups",
             f"{sum(len(g.rules) for g in rules.groups if g.file == path)} rules"]
    for what, items in (("SLOs", rules.slos), ("value metrics", rules.values),
                        ("journeys", rules.journeys), ("improvements", rules.improvements)):
        count = sum(1 for item in items if item.source.file == path)
        if count:
            parts.append(f"{count} {what}")
    return ", ".join(parts)
