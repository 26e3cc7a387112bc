"""Rule files -> SLO model, the `sli:` part: each SLI kind read strictly, its PromQL parsed."""

from __future__ import annotations

from typing import Any

import yaml

from exporter.labels import METRIC_NAME
from exporter.promql.parse import parse_expr
from exporter.promql.values import PromQLError
from exporter.rules.slo_model import SLI, AvailabilitySLI, EventsSLI, LatencySLI, RatioSLI
from exporter.yamlkinds import FLOAT, STR
from exporter.yamlnodes import Invalid, Kind, MapReader, Problems

SLI_KINDS = ("ratio", "latency", "availability", "events")
WINDOW_PLACEHOLDER = "{{.window}}"
# What the placeholder becomes when an events query is checked; any valid range would do.
CHECK_WINDOW = "5m"

SELECTOR_EXPECTED = 'a PromQL series selector like http_requests_total{code=~"5.."}'
_INSTANT_EXPECTED = "a PromQL expression that returns an instant vector"

_NODE_WORDS = {
    "AggregateExpr": "an aggregation",
    "BinaryExpr": "a binary expression",
    "MatrixSelector": "a range vector",
    "NumberLiteral": "a number",
    "StringLiteral": "a string",
    "SubqueryExpr": "a subquery",
    "ParenExpr": "an expression in parentheses",
    "UnaryExpr": "a negated expression",
}


def value_type(tree: Any) -> str:
    """The PromQL type an expression returns: vector, scalar, range vector or string."""
    kind = type(tree).__name__
    if kind in ("ParenExpr", "UnaryExpr"):
        return value_type(tree.expr)
    if kind in ("VectorSelector", "AggregateExpr"):
        return "vector"
    if kind in ("MatrixSelector", "SubqueryExpr"):
        return "range vector"
    if kind == "StringLiteral":
        return "string"
    if kind == "Call":
        returned = str(tree.func.return_type).rsplit(".", 1)[-1].lower()
        return "range vector" if returned == "matrix" else returned
    if kind == "BinaryExpr":
        sides = (value_type(tree.lhs), value_type(tree.rhs))
        return "vector" if "vector" in sides else "scalar"
    return "scalar"


def selector_metric_name(tree: Any) -> str:
    """The metric name a vector selector matches exactly (`foo` or `{__name__="foo"}`), or ""."""
    if tree.name:
        return str(tree.name)
    for m in tree.matchers.matchers:
        if m.name == METRIC_NAME and str(m.op).endswith(".Equal"):
            return str(m.value)
    return ""


def selector_problem(text: str) -> str | None:
    """Why `text` is not a plain series selector, or None when it is one."""
    try:
        tree = parse_expr(text)
    except PromQLError as exc:
        return str(exc)
    kind = type(tree).__name__
    if kind == "Call":
        return f"got a call to {tree.func.name}(), not a series selector"
    if kind != "VectorSelector":
        return f"got {_NODE_WORDS.get(kind, 'an expression')}, not a series selector"
    if tree.offset is not None or tree.at is not None:
        # The SLO counts increases at evaluation time; a shifted selector would count other events.
        return "offset and @ modifiers are not allowed in an SLI selector"
    return None


def expression_problem(text: str) -> str | None:
    """Why `text` is not a PromQL expression returning an instant vector, or None."""
    try:
        tree = parse_expr(text)
    except PromQLError as exc:
        return str(exc)
    kind = value_type(tree)
    if kind != "vector":
        return f"expression returns a {kind}"
    return None


def _read_selector(node: yaml.Node, ctx: str, problems: Problems) -> str:
    text = STR.read(node, ctx, problems).strip()
    problem = selector_problem(text)
    if problem is not None:
        problems.error(node, ctx, problem, SELECTOR_EXPECTED)
        raise Invalid()
    return text


def _read_instant(node: yaml.Node, ctx: str, problems: Problems) -> str:
    text = STR.read(node, ctx, problems).strip()
    problem = expression_problem(text)
    if problem is not None:
        problems.error(node, ctx, problem, _INSTANT_EXPECTED)
        raise Invalid()
    return text


def _read_events_query(node: yaml.Node, ctx: str, problems: Problems) -> str:
    text = STR.read(node, ctx, problems).strip()
    if WINDOW_PLACEHOLDER not in text:
        problems.error(node, ctx, "query has no {{.window}} placeholder",
                       "a range like [{{.window}}], which the sidecar fills with its interval")
        raise Invalid()
    problem = expression_problem(text.replace(WINDOW_PLACEHOLDER, CHECK_WINDOW))
    if problem is not None:
        problems.error(node, ctx, f"{problem} (with {{{{.window}}}} = {CHECK_WINDOW})",
                       _INSTANT_EXPECTED)
        raise Invalid()
    return text


SELECTOR: Kind[str] = Kind(SELECTOR_EXPECTED, _read_selector, str)
INSTANT_EXPR: Kind[str] = Kind(_INSTANT_EXPECTED, _read_instant, str)
EVENTS_QUERY: Kind[str] = Kind("a PromQL expression with {{.window}}", _read_events_query, str)


def _read_ratio(node: yaml.Node, ctx: str, problems: Problems) -> SLI:
    with MapReader(node, ctx, problems) as r:
        if r.ok and r.has("errors") == r.has("good"):
            r.error(None, "a ratio needs exactly one of errors and good",
                    '"errors: SELECTOR" or "good: SELECTOR", and "total: SELECTOR"')
        errors = r.optional("errors", SELECTOR, None)
        good = r.optional("good", SELECTOR, None)
        total = r.required("total", SELECTOR)
    return RatioSLI(total=total, errors=errors, good=good)


def _read_latency(node: yaml.Node, ctx: str, problems: Problems) -> SLI:
    with MapReader(node, ctx, problems) as r:
        histogram = r.required("histogram", SELECTOR)
        if histogram:
            tree = parse_expr(histogram)
            name = selector_metric_name(tree)
            if not name.endswith("_bucket"):
                shown = f'"{name}"' if name else "no metric name"
                r.error("histogram", f"selector has {shown}, not a histogram's _bucket series",
                        "a selector of a classic histogram's buckets, like "
                        "http_request_duration_seconds_bucket")
            elif any(m.name == "le" for m in tree.matchers.matchers):
                r.error("histogram", 'selector matches on "le"',
                        "no le matcher (the threshold picks the bucket)")
        threshold = r.required("threshold", FLOAT)
        if r.has("threshold") and threshold <= 0:
            r.error("threshold", f"threshold must be positive, got {format_number(threshold)}",
                    "the upper bound of a good request in the histogram's unit, like 0.3")
    return LatencySLI(histogram=histogram, threshold=threshold)


def _read_availability(node: yaml.Node, ctx: str, problems: Problems) -> SLI:
    with MapReader(node, ctx, problems) as r:
        gauge = r.required("gauge", INSTANT_EXPR)
    return AvailabilitySLI(gauge=gauge)


def _read_events(node: yaml.Node, ctx: str, problems: Problems) -> SLI:
    with MapReader(node, ctx, problems) as r:
        error_query = r.required("error_query", EVENTS_QUERY)
        total_query = r.required("total_query", EVENTS_QUERY)
    return EventsSLI(error_query=error_query, total_query=total_query)


_READERS = {
    "ratio": _read_ratio,
    "latency": _read_latency,
    "availability": _read_availability,
    "events": _read_events,
}
_SHAPES = {
    "ratio": "{errors: SELECTOR, total: SELECTOR} or {good: SELECTOR, total: SELECTOR}",
    "latency": "{histogram: SELECTOR, threshold: SECONDS}",
    "availability": "{gauge: EXPRESSION}",
    "events": "{error_query: PROMQL, total_query: PROMQL}",
}
_KINDS_EXPECTED = "exactly one of " + ", ".join(SLI_KINDS)


def _read_sli(node: yaml.Node, ctx: str, problems: Problems) -> SLI:
    before = problems.error_count()
    sli: SLI = RatioSLI(total="")
    with MapReader(node, ctx, problems) as r:
        present = r.present_keys()
        kinds = [k for k in SLI_KINDS if k in present]
        if len(kinds) > 1:
            r.error(kinds[1], "more than one SLI kind: " + ", ".join(kinds), _KINDS_EXPECTED)
            for kind in kinds:  # the shape is wrong; spare the field-by-field noise
                r.value_node(kind)
        elif not kinds:
            if r.ok:
                r.error(None, "no SLI kind", _KINDS_EXPECTED)
        else:
            kind = kinds[0]
            reader = _READERS[kind]
            sli = r.required(kind, Kind(_SHAPES[kind], reader, lambda: RatioSLI(total="")))
    if problems.error_count() != before:
        raise Invalid()
    return sli


SLI_KIND: Kind[SLI] = Kind(f"a mapping with {_KINDS_EXPECTED}", _read_sli,
                           lambda: RatioSLI(total=""))


def format_number(value: float) -> str:
    """A number as a user wrote it: 150, not 150.0; 0.999 stays 0.999."""
    return str(int(value)) if value.is_integer() else repr(value)
