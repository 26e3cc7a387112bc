"""Static facts about PromQL expressions: which metric names they read (the scrape filter)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import promql_parser

from exporter.labels import METRIC_NAME
from exporter.promql.parse import child_exprs, parse_expr


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
    return all(_collect(child, names) for child in child_exprs(e))


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


def longest_lookback_ms(exprs: Iterable[str], lookback_ms: int) -> int:
    """How far back from evaluation time any of the expressions can read samples.

    The store keeps raw samples this long: ranges and offsets add up through subqueries,
    and every instant selector reaches back one lookback. Negative offsets read forward, so
    they never extend the history needed.
    """
    longest = lookback_ms
    for text in exprs:
        longest = max(longest, _reach(parse_expr(text), 0, lookback_ms))
    return longest


# Past this reach a name keeps its samples on its own (retention_by_name_ms).
LONG_REACH_MS = 86_400_000


def retention_by_name_ms(exprs: Iterable[str], lookback_ms: int,
                         long_ms: int = LONG_REACH_MS) -> tuple[int, dict[str, int]]:
    """(how long to keep every series, longer times for the names read further than `long_ms`).

    A long reach is usually a subquery over a recorded series (a journey's 7d window summed
    from its hourly series): only that name needs days of samples, and keeping the scraped
    ones as long would cost memory for nothing. A selector without a fixed name could read
    any series, so its reach counts for all of them.
    """
    reaches: dict[str | None, int] = {}
    for text in exprs:
        _collect_reaches(parse_expr(text), 0, lookback_ms, reaches)
    default = max([lookback_ms, *(r for n, r in reaches.items() if n is None or r <= long_ms)])
    return default, {n: r for n, r in reaches.items() if n is not None and r > default}


def _collect_reaches(e: Any, outer_ms: int, lookback_ms: int,
                     out: dict[str | None, int]) -> None:
    if isinstance(e, promql_parser.VectorSelector | promql_parser.MatrixSelector):
        selector = e if isinstance(e, promql_parser.VectorSelector) else e.vector_selector
        names: set[str] = set()
        keys: list[str | None] = [*sorted(names)] if _selector_name(selector, names) else [None]
        reach = _reach(e, outer_ms, lookback_ms)
        for key in keys:
            out[key] = max(out.get(key, 0), reach)
        return
    if isinstance(e, promql_parser.SubqueryExpr):
        outer_ms += max(_offset_ms(e), 0) + _duration_ms(e.range)
        _collect_reaches(e.expr, outer_ms, lookback_ms, out)
        return
    for child in child_exprs(e):
        _collect_reaches(child, outer_ms, lookback_ms, out)


def _reach(e: Any, outer_ms: int, lookback_ms: int) -> int:
    if isinstance(e, promql_parser.VectorSelector):
        return outer_ms + max(_offset_ms(e), 0) + lookback_ms
    if isinstance(e, promql_parser.MatrixSelector):
        inner = e.vector_selector
        return outer_ms + max(_offset_ms(inner), 0) + _duration_ms(e.range)
    if isinstance(e, promql_parser.SubqueryExpr):
        here = outer_ms + max(_offset_ms(e), 0) + _duration_ms(e.range)
        return _reach(e.expr, here, lookback_ms)
    return max((_reach(c, outer_ms, lookback_ms) for c in child_exprs(e)), default=0)


def _duration_ms(d: Any) -> int:
    return 0 if d is None else int(d.total_seconds() * 1000)


def _offset_ms(e: Any) -> int:
    offset = getattr(e, "offset", None)
    return 0 if offset is None else _duration_ms(offset)
