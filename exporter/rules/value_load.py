"""Rule files -> value model: `parameters:` and `value:` read strictly, with units checked.

`$name` in an expression is a parameter, substituted before PromQL parsing: a constant is
inlined (one with a history becomes a scalar expression choosing its value by `time()`), a
metric-backed parameter becomes its `parameter:<name>` series. Parameters and value metrics
are global: a file may use those of the files loaded before it. `$value`, `$labels` and
`$externalLabels` belong to alert templates and are reserved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import yaml

from exporter.compile_promql import number
from exporter.promql.parse import parse_expr
from exporter.promql.values import PromQLError
from exporter.rules.model import Source
from exporter.rules.slo_model import SLO
from exporter.rules.value_model import SHORTHANDS, Parameter, PriorValue, Shorthand, ValueMetric
from exporter.units import (
    Unit,
    UnitError,
    currency,
    format_unit,
    infer_unit,
    metric_unit,
    money_per,
    parse_unit,
)
from exporter.value import shorthand_series
from exporter.value_alerts import VALUE_ALERT
from exporter.yamlkinds import FLOAT, STR, checked
from exporter.yamlnodes import (
    Invalid,
    Kind,
    MapReader,
    Problems,
    child_context,
    flatten,
    mismatch,
    position,
)

RESERVED = ("value", "labels", "externalLabels")
PARAMETER_PREFIX = "parameter:"
_PARAM_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# String literals first, so a `$` inside a label matcher's value is left alone.
_REFERENCE_RE = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`|\$([a-zA-Z_]\w*)')
_PER = {"revenue_at_risk": ("value_per_event", "events"),
        "value_delivered": ("value_per_event", "events"),
        "error_budget_value": ("value_per_event", "events"),
        "cost_of_downtime": ("cost_per_minute", "minutes")}


def _unit_problem(text: str) -> str | None:
    try:
        parse_unit(text)
    except ValueError as exc:
        return str(exc)
    return None


UNIT = checked(STR, _unit_problem, "a unit like EUR, EUR/event, seconds or ratio")
METRIC_NAME = checked(STR, lambda n: None if _METRIC_RE.fullmatch(n) else
                      f'invalid metric name "{n}"', "a metric name like checkout_revenue_eur")


@dataclass
class ValueScope:
    """What value expressions may refer to, across the files loaded so far."""

    parameters: dict[str, Parameter] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)  # series name -> unit
    slos: dict[str, SLO] = field(default_factory=dict)
    names: dict[str, Source] = field(default_factory=dict)  # value series -> where defined
    values: list[ValueMetric] = field(default_factory=list)  # every valid one, in file order


def read_value_sections(top: MapReader, path: str, problems: Problems, scope: ValueScope,
                        slos: list[SLO]) -> tuple[list[Parameter], list[ValueMetric]]:
    """Every valid parameter and value metric of one file; problems go to `problems`."""
    scope.slos.update((s.name, s) for s in slos)
    params: list[Parameter] = []
    node = top.value_node("parameters")
    if node is not None:
        ctx = top.child("parameters")
        if not isinstance(node, yaml.MappingNode):
            problems.error(node, ctx, f"got {_describe(node)}", "a mapping of parameter names")
        else:
            for name, (key_node, value_node) in flatten(node, ctx, problems).items():
                param = _read_parameter(path, name, key_node, value_node, ctx, problems, scope)
                if param is not None:
                    params.append(param)
    values: list[ValueMetric] = []
    for item_ctx, item in top.items("value"):
        metric = _read_value(path, item_ctx, item, problems, scope)
        if metric is not None:
            values.append(metric)
    scope.values.extend(values)
    return params, values


def name_item(r: MapReader, word: str, parent: str = "") -> str:
    """Read an item's `name` and make it the context: `value "x"`, `journey "j", stage "s"`.

    The list index is dropped once a name is known, so every section reports alike.
    """
    name = r.name_by("name")
    if name:
        r.ctx = child_context(parent, f"{word} {json.dumps(name, ensure_ascii=False)}")
    return name


def _describe(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else "a value"


def _read_parameter(path: str, name: str, key_node: yaml.Node, node: yaml.Node, ctx: str,
                    problems: Problems, scope: ValueScope) -> Parameter | None:
    before = problems.error_count()
    where = f"parameter {json.dumps(name, ensure_ascii=False)}"
    if name in RESERVED:
        problems.error(key_node, ctx, f'parameter name "{name}" is reserved',
                       "a name other than " + ", ".join(RESERVED))
    elif not _PARAM_RE.fullmatch(name):
        problems.error(key_node, ctx, f'invalid parameter name "{name}"',
                       "letters, digits and _, not starting with a digit")
    elif name in scope.parameters:
        problems.error(key_node, ctx, f'duplicate parameter "{name}" (first at '
                       f"{scope.parameters[name].source})", "parameter names unique")
    with MapReader(node, where, problems) as p:
        unit_text = p.required("unit", UNIT)
        description = p.optional("description", STR, "")
        value = p.optional("value", FLOAT, None)
        expr = p.optional("expr", STR, None)
        history = p.optional("history", HISTORY, ())
        if p.ok and (value is None) == (expr is None) and not (p.has("value") or p.has("expr")):
            p.error(None, "a parameter needs value or expr", "{value: 42.5, unit: EUR} or "
                    "{expr: PROMQL, unit: EUR}")
        elif p.has("value") and p.has("expr"):
            p.error("expr", "give value or expr, not both", "a constant or a metric")
        if history and p.has("expr"):
            p.error("history", "only a constant has a history", "history with value")
        unit = parse_unit(unit_text) if unit_text and not _unit_problem(unit_text) else None
        if expr is not None and unit is not None:
            # The expression is the item itself: its problems read `parameter "x": ...`.
            expr = _checked_expr(expr, p.value_node("expr"), p.where, problems, scope, unit)
    if problems.error_count() != before or unit is None:
        return None
    param = Parameter(name=name, unit=format_unit(unit), value=value, history=tuple(history),
                      expr=expr, description=description, source=Source(path, *position(node)))
    scope.parameters[name] = param
    scope.units[PARAMETER_PREFIX + name] = unit
    return param


def _read_date(node: yaml.Node, ctx: str, problems: Problems) -> int:
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    try:
        moment = datetime.fromisoformat(text) if "T" in text or " " in text else \
            datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        raise mismatch(node, ctx, problems, "a date like 2026-03-01") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a plain date starts at midnight UTC
    return int(moment.timestamp())


def _read_prior(node: yaml.Node, ctx: str, problems: Problems) -> PriorValue:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as h:
        value = h.required("value", FLOAT)
        from_s = h.required("from", Kind("a date like 2026-03-01", _read_date, int))
    if problems.error_count() != before:
        raise Invalid()
    return PriorValue(value=value, from_s=from_s)


def _read_history(node: yaml.Node, ctx: str, problems: Problems) -> tuple[PriorValue, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise mismatch(node, ctx, problems, "a list of {value, from}")
    out: list[PriorValue] = []
    for i, item in enumerate(node.value):
        try:
            prior = _read_prior(item, f"{ctx}[{i}]", problems)
        except Invalid:
            continue
        if out and prior.from_s <= out[-1].from_s:
            problems.error(item, f"{ctx}[{i}]", "dates are not increasing",
                           "each from later than the one before")
        out.append(prior)
    return tuple(out)


HISTORY: Kind[tuple[PriorValue, ...]] = Kind("a list of {value, from}", _read_history, tuple)


def constant_expr(param: Parameter) -> str:
    """The PromQL text a constant stands for: a number, or a choice by `time()` for history.

    Each term is the value times 0 or 1, so the sum is the chosen value exactly (no rounding).
    """
    assert param.value is not None
    if not param.history:
        return _number(param.value)
    bounds = [p.from_s for p in param.history]
    values = [param.value, *(p.value for p in param.history)]
    terms: list[str] = []
    for i, value in enumerate(values):
        conds = ([f"(time() >= bool {bounds[i - 1]})"] if i else []) + (
            [f"(time() < bool {bounds[i]})"] if i < len(bounds) else [])
        terms.append(" * ".join([_number(value), *conds]))
    return "(" + " + ".join(terms) + ")"


def _number(value: float) -> str:
    text = number(value)
    return f"({text})" if value < 0 else text


def substitute(expr: str, scope: ValueScope) -> tuple[str, str, list[str]]:
    """(PromQL for the rules, PromQL for the unit check, unknown or reserved $names)."""
    bad: list[str] = []

    def replace(m: re.Match[str], check: bool) -> str:
        name = m.group(1)
        if name is None:
            return m.group(0)
        param = scope.parameters.get(name)
        if param is None:
            bad.append(name)
            return "0"
        if check or param.value is None:
            return PARAMETER_PREFIX + name
        return constant_expr(param)

    text = _REFERENCE_RE.sub(lambda m: replace(m, False), expr)
    checked_text = _REFERENCE_RE.sub(lambda m: replace(m, True), expr)
    return text, checked_text, list(dict.fromkeys(bad))


def _checked_expr(expr: str, node: yaml.Node | None, ctx: str, problems: Problems,
                  scope: ValueScope, declared: Unit | None) -> str:
    """`expr` with parameters substituted; parse and unit problems are reported."""
    text, check_text, bad = substitute(expr, scope)
    for name in bad:
        if name in RESERVED:
            problems.error(node, ctx, f"${name} is reserved for alert templates",
                           "a parameter name")
        else:
            problems.error(node, ctx, f'unknown parameter "${name}"',
                           "a parameter defined in this file or an earlier one")
    if bad:
        return text
    try:
        parse_expr(text)
        tree = parse_expr(check_text)
    except PromQLError as exc:
        problems.error(node, ctx, str(exc), "a valid PromQL expression")
        return text
    try:
        unit = infer_unit(tree, scope.units)
    except UnitError as exc:
        problems.error(node, ctx, str(exc), "quantities of the same unit")
        return text
    if unit is not None and declared is not None and unit != declared:
        problems.error(node, ctx, f"expression is in {format_unit(unit)}, not "
                       f"{format_unit(declared)}", "the declared unit")
    return text


def _read_value(path: str, ctx: str, node: yaml.Node, problems: Problems,
                scope: ValueScope) -> ValueMetric | None:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as v:
        if not v.ok:
            return None
        name_item(v, "value")
        kinds = [k for k in SHORTHANDS if v.has(k)]
        owner = v.required("owner", STR)
        help_text = v.optional("help", STR, "")
        alert = v.optional("alert", VALUE_ALERT, None)
        if len(kinds) > 1 or (kinds and v.has("expr")):
            v.error(None, "give expr or one shorthand, not several",
                    "expr, or one of " + ", ".join(SHORTHANDS))
            for key in ("name", "unit", "expr", *SHORTHANDS):
                v.value_node(key)
            return None
        if kinds:
            metric = _read_shorthand(path, node, v, kinds[0], owner, help_text, scope, before)
            return replace(metric, alert=alert) if metric is not None else None
        name = v.required("name", METRIC_NAME)
        unit_text = v.required("unit", UNIT)
        expr = v.required("expr", STR)
        unit = parse_unit(unit_text) if unit_text and not _unit_problem(unit_text) else None
        if name and unit is not None:
            _check_name(v, name, unit)
        if expr:
            expr = _checked_expr(expr, v.value_node("expr"), v.where, problems, scope, unit)
        _claim(v, "name", name, Source(path, *position(node)), scope)
    if problems.error_count() != before or unit is None:
        return None
    scope.units[name] = unit
    return ValueMetric(name=name, unit=format_unit(unit), owner=owner, help=help_text,
                       expr=expr, alert=alert, source=Source(path, *position(node)))


def _check_name(v: MapReader, name: str, unit: Unit) -> None:
    """Money carries its currency as a name suffix; a name's own unit must be the declared one."""
    code = currency(unit)
    parts = name.split(":")
    metric = parts[1] if len(parts) >= 3 else parts[-1]
    if code is not None and not metric.endswith("_" + code.lower()):
        v.error("name", f'name "{name}" lacks the currency suffix _{code.lower()}',
                f"money named with its currency, like checkout_revenue_{code.lower()}")
        return
    stated = metric_unit(name, {})
    if stated is not None and stated != unit:
        v.error("name", f'name "{name}" says {format_unit(stated)}, unit says '
                f"{format_unit(unit)}", "a name whose suffix matches the unit")


def _claim(v: MapReader, key: str, name: str, source: Source, scope: ValueScope) -> None:
    if not name:
        return
    if name in scope.names:
        v.error(key, f'duplicate value series "{name}" (first at {scope.names[name]})',
                "each value metric once across all rule files")
    else:
        scope.names[name] = source


def _read_shorthand(path: str, node: yaml.Node, v: MapReader, kind: str, owner: str,
                    help_text: str, scope: ValueScope, before: int) -> ValueMetric | None:
    for key in ("name", "unit"):
        if v.has(key):
            v.error(key, "a shorthand names its own series and unit",
                    "no " + key + " with a shorthand")
    per_key, per = _PER[kind]
    slo_name, param_ref, code = "", "", ""
    with MapReader(v.value_node(kind), v.child(kind), v.problems) as s:
        slo_name = s.required("slo", STR)
        param_ref = s.required(per_key, STR)
        if slo_name and slo_name not in scope.slos:
            s.error("slo", f'unknown SLO "{slo_name}"', "an SLO of this file or an earlier one")
        if param_ref:
            code = _shorthand_parameter(s, per_key, param_ref, per, scope)
    if v.problems.error_count() != before:
        return None
    param = param_ref[1:]
    metric = ValueMetric(name=f"{kind}:{slo_name}", unit=code.upper(), owner=owner,
                         help=help_text, shorthand=Shorthand(kind, slo_name, param, code.lower()),
                         source=Source(path, *position(node)))
    assert metric.shorthand is not None
    for series in shorthand_series(metric.shorthand):
        _claim(v, kind, series, metric.source, scope)
        scope.units[series] = parse_unit(code.upper())
    return metric if v.problems.error_count() == before else None


def _shorthand_parameter(s: MapReader, key: str, ref: str, per: str, scope: ValueScope) -> str:
    """The currency of `$param` when it is money per `per`; else reports and returns ""."""
    expected = f"$name of a parameter in money per {per.removesuffix('s')}, like EUR/{per[:-1]}"
    if not ref.startswith("$") or ref[1:] not in scope.parameters:
        s.error(key, f'unknown parameter "{ref}"' if ref.startswith("$") else
                f'"{ref}" is not a $parameter', expected)
        return ""
    param = scope.parameters[ref[1:]]
    code = money_per(parse_unit(param.unit), per)
    if code is None:
        s.error(key, f"parameter {ref} is in {param.unit}", expected)
        return ""
    return code
