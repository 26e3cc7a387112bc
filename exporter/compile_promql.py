"""PromQL for compile (rule model -> Prometheus rules): small builders and one canonical printer.

Every expression compile writes is built here from parts and printed by promql_parser's
prettifier, so the output is one canonical spelling whatever the input's spacing, and a bug
that builds invalid PromQL fails at compile time rather than in Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import promql_parser

from exporter.durations import format_duration

# Node kinds that bind looser than a function argument or an operand: wrap them in parens.
_LOOSE = ("BinaryExpr", "UnaryExpr")


def canonical(expr: str) -> str:
    """The expression as Prometheus's prettifier prints it; ValueError if it does not parse."""
    return str(promql_parser.parse(expr).prettify())


def _kind(expr: str) -> str:
    return type(promql_parser.parse(expr)).__name__


def group(expr: str) -> str:
    """`expr` as an operand: parenthesised when it is a binary or unary expression."""
    return f"({expr})" if _kind(expr) in _LOOSE else expr


def number(value: float) -> str:
    """A float literal PromQL reads back to the same value (`0.001`, `86400`, `+Inf`)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def string(value: str) -> str:
    """A double-quoted PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def duration(ms: int) -> str:
    """A range or offset duration (`5m`, `30d`)."""
    return format_duration(ms)


def call(function: str, *args: str) -> str:
    """A function call."""
    return f"{function}({', '.join(args)})"


def binary(lhs: str, op: str, rhs: str, *, on: Sequence[str] | None = None,
           bool_: bool = False) -> str:
    """`lhs op rhs` with operands grouped; `on` adds `on (labels)` matching."""
    modifier = " bool" if bool_ else ""
    if on is not None:
        modifier += f" on ({', '.join(on)})"
    return f"{group(lhs)} {op}{modifier} {group(rhs)}"


def either(*exprs: str) -> str:
    """`a or b or c`: the first operand's series, then the others' for label sets it lacks."""
    return " or ".join(group(e) for e in exprs)


def sum_by(labels: Sequence[str], expr: str) -> str:
    """`sum by (labels) (expr)`; with no labels a plain `sum`, one series."""
    return f"sum by ({', '.join(labels)}) ({expr})" if labels else f"sum({expr})"


def count_by(labels: Sequence[str], expr: str) -> str:
    """`count by (labels) (expr)`."""
    return f"count by ({', '.join(labels)}) ({expr})" if labels else f"count({expr})"


def range_of(expr: str, ms: int) -> str:
    """`selector[w]` for a selector, else the subquery `(expr)[w:]` at the default step."""
    if is_selector(expr):
        return f"{expr}[{duration(ms)}]"
    return f"({expr})[{duration(ms)}:]"


def subquery(expr: str, range_ms: int, step_ms: int) -> str:
    """`(expr)[range:step]`."""
    return f"({expr})[{duration(range_ms)}:{duration(step_ms)}]"


def offset(selector: str, ms: int) -> str:
    """`selector offset w`."""
    return f"{selector} offset {duration(ms)}"


def at_end(selector: str) -> str:
    """`selector @ end()`: the value at the rule's own evaluation time, even inside a subquery."""
    return f"{selector} @ end()"


def is_selector(expr: str) -> bool:
    """Whether `expr` is a plain instant vector selector (no offset or @)."""
    node: Any = promql_parser.parse(expr)  # stubs type it as the Expr base class
    return type(node).__name__ == "VectorSelector" and node.offset is None and node.at is None


def selector(name: str, matchers: Iterable[tuple[str, str]]) -> str:
    """`name{a="b",...}` with equality matchers in the given order."""
    inner = ",".join(f"{k}={string(v)}" for k, v in matchers)
    return f"{name}{{{inner}}}"


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def with_matcher(sel: str, label: str, op: str, value: str) -> str:
    """A selector with one more matcher (`le=~"0\\.3"`), rebuilt from its parsed matchers."""
    node: Any = promql_parser.parse(sel)
    if type(node).__name__ != "VectorSelector" or node.matchers.or_matchers:
        raise ValueError(f"{sel!r} is not a plain series selector")
    parts = [f"{m.name}{_OPS[str(m.op).rpartition('.')[2]]}{string(m.value)}"
             for m in node.matchers.matchers]
    parts.append(f"{label}{op}{string(value)}")
    return f"{node.name or ''}{{{','.join(parts)}}}"


def float_regex(value: float) -> str:
    """A regex matching how exporters spell a bucket bound: `0.3`, `1`, `1.0`, `1e+06`."""
    if math.isinf(value):
        return r"\+Inf" if value > 0 else "-Inf"
    spellings = {repr(value), f"{value:g}", number(value)}
    if value == int(value):
        spellings.add(f"{int(value)}.0")
    escaped = sorted(s.replace(".", r"\.").replace("+", r"\+") for s in spellings)
    return "|".join(escaped)
