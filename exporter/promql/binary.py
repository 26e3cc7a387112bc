"""Binary operators: float arithmetic with Go's semantics, vector matching and set operations."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

from exporter.labels import METRIC_NAME, Labels
from exporter.promql.gofloat import go_div, go_mod, go_pow
from exporter.promql.plan import ONE_TO_MANY, ONE_TO_ONE, BinaryNode
from exporter.promql.values import PromQLError, Sample, Vector

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": go_div,
    "%": go_mod,
    "^": go_pow,
    "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def drop_name(labels: Labels) -> Labels:
    """Labels without `__name__`; label sets are sorted, so the scan stops early."""
    for i, pair in enumerate(labels):
        k = pair[0]
        if k == METRIC_NAME:
            return labels[:i] + labels[i + 1 :]
        if k > METRIC_NAME:
            return labels
    return labels


def scalar_binop(op: str, a: float, b: float) -> float:
    """Scalar op scalar (comparisons always carry `bool` here)."""
    arith = ARITHMETIC.get(op)
    if arith is not None:
        return arith(a, b)
    return 1.0 if COMPARISON[op](a, b) else 0.0


def vector_scalar_binop(
    op: str, vec: Vector, scalar: float, swap: bool, return_bool: bool, t_ms: int
) -> Vector:
    """Vector op scalar (swap: the scalar is the left operand)."""
    out: Vector = []
    append = out.append
    arith = ARITHMETIC.get(op)
    if arith is not None:
        for s in vec:
            v = arith(scalar, s.value) if swap else arith(s.value, scalar)
            append(Sample(drop_name(s.labels), v, t_ms))
        return out
    cmp = COMPARISON[op]
    for s in vec:
        keep = cmp(scalar, s.value) if swap else cmp(s.value, scalar)
        if return_bool:
            append(Sample(drop_name(s.labels), 1.0 if keep else 0.0, t_ms))
        elif keep:
            # A filter keeps the vector's own sample, whichever side it was on.
            append(Sample(s.labels, s.value, t_ms))
    return out


def signature_fn(node: BinaryNode) -> Callable[[Labels], object]:
    """The matching key of a label set: on(...) labels, or all but ignoring(...) and the name."""
    if node.on:
        names = node.matching

        def on_sig(labels: Labels) -> object:
            d = dict(labels)
            return tuple(d.get(n) for n in names)

        return on_sig
    ignored = frozenset((*node.matching, METRIC_NAME))

    def ignoring_sig(labels: Labels) -> object:
        return tuple(p for p in labels if p[0] not in ignored)

    return ignoring_sig


def set_binop(node: BinaryNode, lhs: Vector, rhs: Vector) -> Vector:
    """and / or / unless: keep or drop samples by whether their key occurs on the other side."""
    op = node.op
    if op == "or":
        if not lhs:
            return list(rhs)
        if not rhs:
            return list(lhs)
        sig = signature_fn(node)
        left = {sig(s.labels) for s in lhs}
        return list(lhs) + [s for s in rhs if sig(s.labels) not in left]
    if not lhs or not rhs:
        return [] if op == "and" else list(lhs)
    sig = signature_fn(node)
    right = {sig(s.labels) for s in rhs}
    if op == "and":
        return [s for s in lhs if sig(s.labels) in right]
    return [s for s in lhs if sig(s.labels) not in right]


def vector_binop(node: BinaryNode, lhs: Vector, rhs: Vector, t_ms: int) -> Vector:
    """Vector op vector with one-to-one or group_left/group_right matching."""
    if not lhs or not rhs:
        return []
    card = node.card
    if card == ONE_TO_MANY:
        lhs, rhs = rhs, lhs
    sig = signature_fn(node)
    right: dict[object, Sample] = {}
    for rs in rhs:
        key = sig(rs.labels)
        dup = right.get(key)
        if dup is not None:
            raise PromQLError(_duplicate_message(node, rs.labels, dup.labels))
        right[key] = rs

    op = node.op
    arith = ARITHMETIC.get(op)
    cmp = COMPARISON.get(op)
    return_bool = node.return_bool
    swapped = card == ONE_TO_MANY
    metric = _result_metric_fn(node)
    matched: dict[object, set[Labels] | None] = {}
    out: Vector = []
    for ls in lhs:
        key = sig(ls.labels)
        match = right.get(key)
        if match is None:
            continue
        rs = match
        fl, fr = (rs.value, ls.value) if swapped else (ls.value, rs.value)
        if arith is not None:
            value = arith(fl, fr)
            keep = True
        else:
            assert cmp is not None
            value, keep = fl, cmp(fl, fr)
        if return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        labels = metric(ls.labels, rs.labels)
        if return_bool:
            labels = drop_name(labels)
        if card == ONE_TO_ONE:
            if key in matched:
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched[key] = None
        else:
            inserted = matched.get(key)
            if inserted is None:
                inserted = matched[key] = set()
            elif labels in inserted:
                raise PromQLError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                )
            inserted.add(labels)
        out.append(Sample(labels, value, t_ms))
    return out


def _result_metric_fn(node: BinaryNode) -> Callable[[Labels, Labels], Labels]:
    """How a matched pair's output labels are built (the many side's, adjusted)."""
    changes_schema = node.op in ARITHMETIC
    one_to_one = node.card == ONE_TO_ONE
    matching = frozenset(node.matching)
    on = node.on
    include = node.include

    def result(ll: Labels, rl: Labels) -> Labels:
        labels = drop_name(ll) if changes_schema else ll
        if one_to_one:
            if on:
                labels = tuple(p for p in labels if p[0] in matching)
            elif matching:
                labels = tuple(p for p in labels if p[0] not in matching)
        if include:
            d = dict(labels)
            rd = dict(rl)
            for name in include:
                v = rd.get(name, "")
                if v:
                    d[name] = v
                else:
                    d.pop(name, None)
            labels = tuple(sorted(d.items()))
        return labels

    return result


def _duplicate_message(node: BinaryNode, a: Labels, b: Labels) -> str:
    side = "left" if node.card == ONE_TO_MANY else "right"
    if node.on:
        group = tuple(p for p in a if p[0] in node.matching)
    else:
        ignored = {*node.matching, METRIC_NAME}
        group = tuple(p for p in a if p[0] not in ignored)
    first, second = sorted((a, b))
    return (
        f"found duplicate series for the match group {labels_string(group)} on the {side} "
        f"hand-side of the operation: [{labels_string(first)}, {labels_string(second)}]"
        ";many-to-many matching not allowed: matching labels must be unique on one side"
    )


def labels_string(labels: Labels) -> str:
    """Prometheus's Labels.String(): `{__name__="x", a="b"}`."""
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in labels) + "}"


def go_quote(s: str) -> str:
    """A double-quoted string with Go's common escapes."""
    escaped = (
        s.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'
