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


def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern with Python's re, translating the syntax that differs."""
    translated = re.sub(r"\(\?<(?![=!])", "(?P<", pattern).replace(r"\z", r"\Z")
    return re.compile("(?s:" + translated + ")")


_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9_]+")


def expand_template(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups are ""."""
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        name: str | None = None
        if i < n and template[i] == "{":
            m = _TEMPLATE_NAME.match(template, i + 1)
            if m is not None and m.end() < n and template[m.end()] == "}":
                name, i = m.group(0), m.end() + 1
        else:
            m = _TEMPLATE_NAME.match(template, i)
            if m is not None:
                name, i = m.group(0), m.end()
        if name is None:
            out.append("$")  # Malformed reference: Go keeps the dollar sign as text.
            continue
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str:
    if name.isdigit():
        index = int(name)
        if index > (match.re.groups or 0):
            return ""
        return match.group(index) or ""
    if name in match.re.groupindex:
        return match.group(name) or ""
    return ""


def label_replace(args: list[Value], ctx: CallContext) -> Value:
    """Set dst to the expanded replacement where src fully matches the regex."""
    vec = vector_arg(args, 0)
    dst, repl, src, pattern = (string_arg(args, i) for i in (1, 2, 3, 4))
    try:
        regex = go_regex(pattern)
    except re.error:
        raise PromQLError(f"invalid regular expression in label_replace(): {pattern}") from None
    if not _valid_label_name(dst):
        raise PromQLError(f"invalid destination label name in label_replace(): {dst}")
    out: Vector = []
    for s in vec:
        m = regex.fullmatch(get_label(s.labels, src))
        labels: Labels = s.labels
        if m is not None:
            labels = with_label(labels, dst, expand_template(repl, m))
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
