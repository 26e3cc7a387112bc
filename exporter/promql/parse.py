"""PromQL text → promql_parser syntax tree: the first step of every query, cached per text."""

from __future__ import annotations

import functools
from typing import Any

import promql_parser

from exporter.promql.values import PromQLError

# promql_parser is untyped (a Rust extension); its nodes are Any everywhere in this package.
Expr = Any


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Expr:
    return promql_parser.parse(text)


def parse_expr(text: str) -> Expr:
    """Parse one PromQL expression; a syntax or type error becomes a PromQLError."""
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
