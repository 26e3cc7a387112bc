"""Syntax tree → evaluation plan: plain Python nodes the evaluator walks, built once per query."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser

from exporter.labels import METRIC_NAME, Matcher, MatchType
from exporter.promql.parse import Expr, experimental_functions_enabled, parse_expr
from exporter.promql.values import PromQLError
from exporter.regex import RegexError

# Value kinds, as Prometheus's parser types expressions.
SCALAR = "scalar"
VECTOR = "vector"
MATRIX = "matrix"
STRING = "string"

# An @ modifier: absolute milliseconds, or the query's start()/end().
AT_START = "start"
AT_END = "end"
At = int | str | None


@dataclass(frozen=True, slots=True, eq=False)
class NumberNode:
    """A number literal."""

    value: float
    kind: str = SCALAR


@dataclass(frozen=True, slots=True, eq=False)
class StringNode:
    """A string literal."""

    value: str
    kind: str = STRING


@dataclass(frozen=True, slots=True, eq=False)
class SelectorNode:
    """An instant vector selector; `alternatives` holds each `or`-group of matchers."""

    alternatives: tuple[tuple[Matcher, ...], ...]
    offset_ms: int
    at: At
    kind: str = VECTOR


@dataclass(frozen=True, slots=True, eq=False)
class MatrixNode:
    """A range vector selector `sel[range]`."""

    selector: SelectorNode
    range_ms: int
    kind: str = MATRIX


@dataclass(frozen=True, slots=True, eq=False)
class SubqueryNode:
    """A subquery `expr[range:step]`; step None means the default evaluation interval."""

    expr: Node
    range_ms: int
    step_ms: int | None
    offset_ms: int
    at: At
    kind: str = MATRIX


@dataclass(frozen=True, slots=True, eq=False)
class NegateNode:
    """Unary minus."""

    expr: Node
    kind: str


@dataclass(frozen=True, slots=True, eq=False)
class BinaryNode:
    """A binary operator with its vector matching (card is one_to_one, many_to_one, ...)."""

    op: str
    lhs: Node
    rhs: Node
    return_bool: bool
    card: str
    on: bool
    matching: tuple[str, ...]
    include: tuple[str, ...]
    kind: str


@dataclass(frozen=True, slots=True, eq=False)
class AggregateNode:
    """An aggregation; grouping is sorted and de-duplicated."""

    op: str
    expr: Node
    param: Node | None
    grouping: tuple[str, ...]
    without: bool
    kind: str = VECTOR


@dataclass(frozen=True, slots=True, eq=False)
class CallNode:
    """A function call; arg_exprs are the parser's nodes, for functions that read them."""

    name: str
    args: tuple[Node, ...]
    arg_exprs: tuple[Expr, ...]
    kind: str


Node = (
    NumberNode
    | StringNode
    | SelectorNode
    | MatrixNode
    | SubqueryNode
    | NegateNode
    | BinaryNode
    | AggregateNode
    | CallNode
)

ONE_TO_ONE = "one_to_one"
MANY_TO_ONE = "many_to_one"
ONE_TO_MANY = "one_to_many"
MANY_TO_MANY = "many_to_many"

_CARDS = {
    "OneToOne": ONE_TO_ONE,
    "ManyToOne": MANY_TO_ONE,
    "OneToMany": ONE_TO_MANY,
    "ManyToMany": MANY_TO_MANY,
}
_MATCH_TYPES = {
    "Equal": MatchType.EQUAL,
    "NotEqual": MatchType.NOT_EQUAL,
    "Re": MatchType.REGEX,
    "NotRe": MatchType.NOT_REGEX,
}
_KINDS = {"Scalar": SCALAR, "Vector": VECTOR, "Matrix": MATRIX, "String": STRING}
_SET_OPS = frozenset({"and", "or", "unless"})
_SYSTEM_TIME = re.compile(r"tv_sec:\s*(-?\d+),\s*tv_nsec:\s*(\d+)")


@functools.lru_cache(maxsize=4096)
def _plan_text(text: str, experimental: bool) -> Node:
    # `experimental` is part of the cache key: the same text may be refused without the flag.
    return build_plan(parse_expr(text))


def plan_query(expr: str | Expr) -> Node:
    """The plan for a query text (cached) or an already parsed expression."""
    if isinstance(expr, str):
        return _plan_text(expr, experimental_functions_enabled())
    return build_plan(expr)


def build_plan(expr: Expr) -> Node:
    """Translate one promql_parser expression tree into plan nodes."""
    return _build(expr)


def _build(e: Any) -> Node:
    while isinstance(e, promql_parser.ParenExpr):
        e = e.expr
    if isinstance(e, promql_parser.NumberLiteral):
        return NumberNode(float(e.val))
    if isinstance(e, promql_parser.StringLiteral):
        return StringNode(str(e.val))
    if isinstance(e, promql_parser.VectorSelector):
        return _selector(e)
    if isinstance(e, promql_parser.MatrixSelector):
        return MatrixNode(_selector(e.vector_selector), _ms(e.range))
    if isinstance(e, promql_parser.SubqueryExpr):
        step = None if e.step is None else _ms(e.step)
        if step is not None and step <= 0:
            raise PromQLError("parse error: zero or negative subquery step")
        return SubqueryNode(_build(e.expr), _ms(e.range), step, _offset(e), _at(e))
    if isinstance(e, promql_parser.UnaryExpr):
        inner = _build(e.expr)
        return NegateNode(inner, inner.kind)
    if isinstance(e, promql_parser.BinaryExpr):
        return _binary(e)
    if isinstance(e, promql_parser.AggregateExpr):
        return _aggregate(e)
    if isinstance(e, promql_parser.Call):
        args = tuple(e.args)
        kind = _KINDS.get(str(e.func.return_type).rsplit(".", 1)[-1], VECTOR)
        return CallNode(str(e.func.name), tuple(_build(a) for a in args), args, kind)
    raise PromQLError(f"unsupported expression: {e}")


def _selector(e: Any) -> SelectorNode:
    groups: list[list[Any]] = [list(e.matchers.matchers)]
    groups += [list(g) for g in e.matchers.or_matchers or ()]
    name = e.name
    alternatives = []
    for group in groups:
        matchers = [_matcher(m) for m in group]
        if name:
            matchers.insert(0, Matcher.of(METRIC_NAME, MatchType.EQUAL, str(name)))
        if matchers:
            alternatives.append(tuple(matchers))
    return SelectorNode(tuple(alternatives), _offset(e), _at(e))


def _matcher(m: Any) -> Matcher:
    mt = _MATCH_TYPES[str(m.op).rsplit(".", 1)[-1]]
    value = str(m.value)
    try:
        return Matcher.of(str(m.name), mt, value)
    except RegexError as exc:
        raise PromQLError(f"parse error: invalid regular expression {value!r}: {exc}") from None


def _binary(e: Any) -> BinaryNode:
    op = str(e.op)
    lhs, rhs = _build(e.lhs), _build(e.rhs)
    kind = SCALAR if lhs.kind == SCALAR and rhs.kind == SCALAR else VECTOR
    mod = e.modifier
    return_bool = bool(mod.return_bool) if mod is not None else False
    card = MANY_TO_MANY if op in _SET_OPS else ONE_TO_ONE
    on = False
    matching: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    if mod is not None:
        if mod.card is not None:
            card = _CARDS[str(mod.card).rsplit(".", 1)[-1]]
        if mod.matching is not None:
            on = str(mod.matching.type).endswith("Include")
            matching = tuple(sorted(set(mod.matching.labels)))
        include = tuple(mod.group_labels or ())
    return BinaryNode(op, lhs, rhs, return_bool, card, on, matching, include, kind)


def _aggregate(e: Any) -> AggregateNode:
    mod = e.modifier
    without = mod is not None and str(mod.type).endswith("Without")
    grouping = tuple(sorted(set(mod.labels))) if mod is not None else ()
    param = None if e.param is None else _build(e.param)
    return AggregateNode(str(e.op), _build(e.expr), param, grouping, without)


def _ms(d: timedelta | None) -> int:
    if d is None:
        raise PromQLError("parse error: missing duration")
    return d // timedelta(milliseconds=1)


def _offset(e: Any) -> int:
    off = e.offset
    return 0 if off is None else _ms(off)


def _at(e: Any) -> At:
    at = e.at
    if at is None:
        return None
    kind = str(at.type).rsplit(".", 1)[-1]
    if kind == "Start":
        return AT_START
    if kind == "End":
        return AT_END
    if str(at).strip() == "@ 0.000":
        # The binding panics converting a time before 1970 (and prints such times as 0);
        # the node's debug form still carries the raw seconds and nanoseconds, the node's
        # own modifier coming after any inside it.
        found = _SYSTEM_TIME.findall(repr(e))
        if not found:
            raise PromQLError("parse error: cannot read @ timestamp")
        sec, nsec = found[-1]
        return int(sec) * 1000 + int(nsec) // 1_000_000
    try:
        seconds: float = at.at.timestamp()
    except (ValueError, OverflowError) as exc:
        raise PromQLError(f"parse error: @ timestamp out of range: {exc}") from None
    return round(seconds * 1000)
