"""Static facts about PromQL expressions: which metric names they read (the scrape filter)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import promql_parser

from exporter.labels import METRIC_NAME
from exporter.promql.parse import parse_expr


def selected_metric_names(exprs: Iterable[str]) -> frozenset[str] | None:
    """Every metric name the expressions select, or None if one selector could read any name.

    A selector without a fixed name (`{job="x"}`, `{__name__=~"http_.*"}`) may match any
    scraped family, so then nothing can be filtered out at parse time.
    """
    names: set[str] = set()
    for text in exprs:
        if not _collect(parse_expr(text), names):
            return None
    return frozenset(names)


def _collect(e: Any, names: set[str]) -> bool:
    """Add the names `e` selects; False when a selector has no fixed metric name."""
    if isinstance(e, promql_parser.VectorSelector):
        return _selector_name(e, names)
    if isinstance(e, promql_parser.MatrixSelector):
        return _selector_name(e.vector_selector, names)
    children: list[Any]
    if isinstance(e, promql_parser.Call):
        children = list(e.args)
    elif isinstance(e, promql_parser.BinaryExpr):
        children = [e.lhs, e.rhs]
    elif isinstance(e, promql_parser.AggregateExpr):
        children = [e.expr, e.param]
    elif isinstance(e, (promql_parser.ParenExpr, promql_parser.UnaryExpr,
                        promql_parser.SubqueryExpr)):
        children = [e.expr]
    else:
        children = []
    return all(_collect(child, names) for child in children if child is not None)


def _selector_name(selector: Any, names: set[str]) -> bool:
    if selector.name:
        names.add(str(selector.name))
        return True
    groups = [list(selector.matchers.matchers)]
    groups += [list(g) for g in selector.matchers.or_matchers or ()]
    for group in groups:
        fixed = [
            str(m.value)
            for m in group
            if str(m.name) == METRIC_NAME and str(m.op).rsplit(".", 1)[-1] == "Equal"
        ]
        if not fixed:
            return False
        names.add(fixed[0])
    return True
