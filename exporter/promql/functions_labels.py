"""PromQL functions on label sets: absent, label_replace, label_join, sort_by_label."""

from __future__ import annotations

import re
from functools import cmp_to_key

from exporter.labels import Labels, get_label, with_label
from exporter.promql.functions_common import (
    Function,
    absent_labels,
    check_unique,
    string_arg,
    vector_arg,
)
from exporter.promql.values import CallContext, PromQLError, Sample, Value, Vector
from exporter.regex import RegexError, compile_regex, compile_template, expand


def absent(args: list[Value], ctx: CallContext) -> Value:
    """1 with labels from the selector's equality matchers if the vector is empty."""
    if vector_arg(args, 0):
        return []
    expr = ctx.arg_exprs[0] if ctx.arg_exprs else None
    return [Sample(absent_labels(expr), 1.0, ctx.t_ms)]


def _valid_label_name(name: str) -> bool:
    # Prometheus 3 accepts any non-empty UTF-8 label name.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name != ""


def label_replace(args: list[Value], ctx: CallContext) -> Value:
    """Set dst to the expanded replacement where src fully matches the regex."""
    vec = vector_arg(args, 0)
    dst, repl, src, pattern = (string_arg(args, i) for i in (1, 2, 3, 4))
    try:
        regex = compile_regex(pattern)
    except RegexError:
        raise PromQLError(f"invalid regular expression in label_replace(): {pattern}") from None
    template = compile_template(repl, regex)
    if not _valid_label_name(dst):
        raise PromQLError(f"invalid destination label name in label_replace(): {dst}")
    out: Vector = []
    for s in vec:
        m = regex.fullmatch(get_label(s.labels, src))
        labels: Labels = s.labels
        if m is not None:
            labels = with_label(labels, dst, expand(template, m))
        out.append(Sample(labels, s.value, s.t_ms))
    return check_unique(out)


def label_join(args: list[Value], ctx: CallContext) -> Value:
    """Set dst to the values of the src labels joined by the separator."""
    vec = vector_arg(args, 0)
    dst, sep = string_arg(args, 1), string_arg(args, 2)
    srcs = [string_arg(args, i) for i in range(3, len(args))]
    for src in srcs:
        if not _valid_label_name(src):
            raise PromQLError(f"invalid source label name in label_join(): {src}")
    if not _valid_label_name(dst):
        raise PromQLError(f"invalid destination label name in label_join(): {dst}")
    out = [
        Sample(
            with_label(s.labels, dst, sep.join(get_label(s.labels, x) for x in srcs)),
            s.value,
            s.t_ms,
        )
        for s in vec
    ]
    return check_unique(out)


_NAT_CHUNK = re.compile(r"(\d+|\D+)")


def _natural_less(a: str, b: str) -> bool:
    """facette/natsort's ordering: digit runs compare as numbers, other runs as text."""
    ca: list[str] = _NAT_CHUNK.findall(a)
    cb: list[str] = _NAT_CHUNK.findall(b)
    for x, y in zip(ca, cb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            xi, yi = int(x), int(y)
            if xi != yi:
                return xi < yi
            return len(x) < len(y)
        return x < y
    return len(ca) < len(cb)


def _sort_by_label(descending: bool) -> Function:
    def call(args: list[Value], _ctx: CallContext) -> Value:
        names = [string_arg(args, i) for i in range(1, len(args))]

        def cmp(a: Sample, b: Sample) -> int:
            for name in names:
                va, vb = get_label(a.labels, name), get_label(b.labels, name)
                if va == vb:
                    continue
                less = _natural_less(va, vb)
                return (-1 if less else 1) * (-1 if descending else 1)
            # Equal on the named labels: the whole label set decides, for a stable order.
            full = (a.labels > b.labels) - (a.labels < b.labels)
            return -full if descending else full

        return sorted(vector_arg(args, 0), key=cmp_to_key(cmp))

    return call


LABEL_FUNCTIONS: dict[str, Function] = {
    "absent": absent,
    "label_replace": label_replace,
    "label_join": label_join,
    # Experimental in Prometheus 3.5.
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
}
