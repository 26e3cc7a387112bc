"""PromQL text → promql_parser syntax tree: the first step of every query, cached per text."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import promql_parser

from exporter.promql.functions import EXPERIMENTAL
from exporter.promql.values import PromQLError

# promql_parser is untyped (a Rust extension); its nodes are Any everywhere in this package.
Expr = Any


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Expr:
    return promql_parser.parse(text)


# Prometheus 3.5 parses experimental functions only behind a process-wide feature flag
# (--enable-feature=promql-experimental-functions); off by default, as there.
_experimental_enabled = False


def experimental_functions_enabled() -> bool:
    """Whether experimental functions (mad_over_time, sort_by_label, ...) parse."""
    return _experimental_enabled


@contextlib.contextmanager
def allow_experimental_functions() -> Iterator[None]:
    """Let experimental functions parse within the block, as Prometheus's test runner does."""
    global _experimental_enabled
    before = _experimental_enabled
    _experimental_enabled = True
    try:
        yield
    finally:
        _experimental_enabled = before


def parse_expr(text: str) -> Expr:
    """Parse one PromQL expression; a syntax or type error becomes a PromQLError."""
    tree = _parse(text)
    if not _experimental_enabled:
        name = _experimental_call(tree)
        if name is not None:
            raise PromQLError(f'parse error: function "{name}" is not enabled')
    return tree


def child_exprs(e: Any) -> list[Any]:
    """The direct sub-expressions of a promql_parser node (selectors have none)."""
    if isinstance(e, promql_parser.Call):
        return list(e.args)
    if isinstance(e, promql_parser.BinaryExpr):
        return [e.lhs, e.rhs]
    if isinstance(e, promql_parser.AggregateExpr):
        return [x for x in (e.expr, e.param) if x is not None]
    if isinstance(e, (promql_parser.ParenExpr, promql_parser.UnaryExpr,
                      promql_parser.SubqueryExpr)):
        return [e.expr]
    return []


def _experimental_call(e: Any) -> str | None:
    """The first experimental function the expression calls, if any."""
    if isinstance(e, promql_parser.Call) and e.func.name in EXPERIMENTAL:
        return str(e.func.name)
    for child in child_exprs(e):
        found = _experimental_call(child)
        if found is not None:
            return found
    return None


def _parse(text: str) -> Expr:
    if not text.strip():
        raise PromQLError("parse error: no expression found in input")
    try:
        return _parse_cached(text)
    except ValueError as exc:
        raise PromQLError(f"parse error: {exc}") from None
    except BaseException as exc:
        # The Rust side panics (pyo3 PanicException, a BaseException) on a few inputs;
        # report those as parse errors instead of taking the daemon down.
        if type(exc).__name__ != "PanicException":
            raise
        raise PromQLError(f"parse error: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
