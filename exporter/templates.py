"""Alert label/annotation templates: a Go text/template subset (lexer, parser, executor).

Alerting rules expand their labels and annotations per alert (`{{ $labels.instance }}`,
`{{ $value | humanize }}`); `check rules` rejects templates that do not parse. Errors read as
Go's (`template: __alert_X:1: unclosed action`), wrapped as Prometheus wraps them.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping

from exporter.templates_funcs import (
    Func,
    FuncContext,
    TemplateError,
    TemplateSample,
    go_sprintf,
    go_str,
    go_type,
    prometheus_functions,
)
from exporter.templates_parse import Node, Operand, Pipeline, Template, line_col, parse_template

__all__ = [
    "TemplateError",
    "TemplateSample",
    "check_template",
    "execute",
    "expand_alert_template",
    "parse_template",
]

# Prometheus prepends these definitions to every alert template; they sit on line 1, so an
# error's line number is the user's, but its column on line 1 counts them.
_DEFS = ("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
         "{{$externalURL := .ExternalURL}}{{$value := .Value}}")

# -- executor ------------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecFail(Exception):
    def __init__(self, op: Operand | None, message: str) -> None:
        super().__init__(message)
        self.op = op
        self.message = message


def truth(value: object) -> bool:
    """Go template truthiness: zero values and empty collections are false."""
    if value is None:
        return False
    if isinstance(value, bool | int | float | str | list | dict):
        return bool(value)
    return True


class _Exec:
    def __init__(self, tmpl: Template, funcs: Mapping[str, Func], data: object,
                 variables: Mapping[str, object]) -> None:
        self.tmpl = tmpl
        self.funcs = funcs
        self.vars: list[tuple[str, object]] = [("$", data), *variables.items()]
        self.out: list[str] = []

    def run(self, nodes: list[Node], dot: object) -> None:
        for node in nodes:
            kind = node.kind
            if kind == "text":
                self.out.append(node.text)
            elif kind == "action":
                assert node.pipe is not None
                value = self.pipeline(node.pipe, dot)
                if not node.pipe.decls:
                    self.out.append(go_str(value))
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()
            else:
                self.control(node, dot)

    def control(self, node: Node, dot: object) -> None:
        assert node.pipe is not None
        mark = len(self.vars)
        value = self.pipeline(node.pipe, dot)
        try:
            if node.kind == "range":
                self.range(node, value, dot)
            elif truth(value):
                self.run(node.body, value if node.kind == "with" else dot)
            else:
                self.run(node.orelse, dot)
        finally:
            del self.vars[mark:]

    def range(self, node: Node, value: object, dot: object) -> None:
        assert node.pipe is not None
        if isinstance(value, dict):
            items: list[tuple[object, object]] = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise _ExecFail(None, f"range can't iterate over {go_str(value)}")
        if not items:
            self.run(node.orelse, dot)
            return
        decls = node.pipe.decls
        for key, elem in items:
            mark = len(self.vars)
            if len(decls) == 1:
                self.vars.append((decls[0], elem))
            elif len(decls) == 2:
                self.vars.extend([(decls[0], key), (decls[1], elem)])
            try:
                self.run(node.body, elem)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]

    def pipeline(self, pipe: Pipeline, dot: object) -> object:
        value: object = None
        for i, command in enumerate(pipe.commands):
            value = self.command(command, dot, value, i > 0)
        if pipe.decls:
            if pipe.assign:
                self.set_var(pipe.decls[0], value)
            elif len(pipe.decls) == 1:  # in a range, the range itself binds the names
                self.vars.append((pipe.decls[0], value))
        return value

    def set_var(self, name: str, value: object) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    def var(self, name: str) -> object:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise _ExecFail(None, f"undefined variable: {name}")

    def command(self, ops: list[Operand], dot: object, final: object, has_final: bool) -> object:
        head = ops[0]
        if head.kind == "ident":
            assert isinstance(head.value, str)
            return self.call(head, ops[1:], dot, final, has_final)
        if len(ops) > 1 or has_final:
            raise _ExecFail(head, f"can't give argument to non-function {head.text}")
        return self.operand(head, dot)

    def call(self, head: Operand, args: list[Operand], dot: object, final: object,
             has_final: bool) -> object:
        name = str(head.value)
        if name in ("and", "or"):
            # Go 1.18+ evaluates and/or lazily, stopping at the deciding argument.
            values: list[Callable[[], object]] = [
                lambda a=a: self.operand(a, dot) for a in args  # type: ignore[misc]
            ]
            if has_final:
                values.append(lambda: final)
            result: object = None
            for get in values:
                result = get()
                if truth(result) != (name == "and"):
                    return result
            return result
        evaluated = [self.operand(a, dot) for a in args]
        if has_final:
            evaluated.append(final)
        fn = _BUILTINS.get(name) or self.funcs.get(name)
        # Go names the whole command (`gt $value 1`) as the error's context.
        text = " ".join([head.text, *(a.text for a in args)])
        where = Operand("ident", name, head.pos, text=text)
        if fn is None:
            raise _ExecFail(where, f'"{name}" is not a defined function')
        try:
            return fn(*evaluated)
        except TemplateError as exc:
            raise _ExecFail(where, f"error calling {name}: {exc}") from None
        except TypeError:
            raise _ExecFail(where, f"wrong number of args for {name}: got {len(evaluated)}") \
                from None

    def operand(self, op: Operand, dot: object) -> object:
        kind = op.kind
        if kind == "field":
            return self.fields(op, dot, op.chain)
        if kind == "dot":
            base = dot
        elif kind == "var":
            base = self.var(str(op.value))
        elif kind == "pipe":
            assert isinstance(op.value, Pipeline)
            base = self.pipeline(op.value, dot)
        elif kind == "ident":
            base = self.call(op, [], dot, None, False)
        else:
            base = op.value
        return self.fields(op, base, op.chain) if op.chain else base

    def fields(self, op: Operand, value: object, chain: tuple[str, ...]) -> object:
        for name in chain:
            if isinstance(value, dict):
                # missingkey=zero: an absent label reads as "" (map[string]string's zero).
                value = value.get(name, "" if _string_map(value) else None)
            elif isinstance(value, TemplateSample) and name in ("Labels", "Value"):
                value = value.labels if name == "Labels" else value.value
            elif value is None:
                raise _ExecFail(op, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise _ExecFail(op, f"can't evaluate field {name} in type {go_type(value)}")
        return value


def _string_map(value: dict[object, object]) -> bool:
    return all(isinstance(v, str) for v in value.values())


# -- builtins (text/template's own functions) ----------------------------------------------


def _sprint(*args: object) -> str:
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _cmp_value(a: object, b: object) -> tuple[object, object]:
    def kind(v: object) -> str:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if isinstance(v, str):
            return "string"
        return "other"

    if kind(a) == "other":
        raise TemplateError("invalid type for comparison")
    if kind(a) != kind(b):
        raise TemplateError(
            f"incompatible types for comparison: {go_type(a)} and {go_type(b)}")
    return a, b


def _eq(a: object, *bs: object) -> bool:
    if not bs:
        raise TemplateError("missing argument for comparison")
    return any(x == y for x, y in (_cmp_value(a, b) for b in bs))


def _ordered(op: Callable[[object, object], bool]) -> Callable[[object, object], bool]:
    def compare(a: object, b: object) -> bool:
        x, y = _cmp_value(a, b)
        if isinstance(x, bool):
            raise TemplateError("invalid type for comparison")
        return op(x, y)

    return compare


def _index(item: object, *keys: object) -> object:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, "" if _string_map(item) else None)
        elif isinstance(item, list) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise TemplateError(f"error calling index: index out of range: {key}")
            item = item[key]
        else:
            raise TemplateError(f"can't index item of type {go_type(item)}")
    return item


def _len(item: object) -> int:
    if isinstance(item, str | list | dict):
        return len(item)
    raise TemplateError(f"len of type {go_type(item)}")


_BUILTINS: dict[str, Func] = {
    "not": lambda a: not truth(a),
    "len": _len,
    "index": _index,
    "print": _sprint,
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "printf": lambda fmt, *a: go_sprintf(str(fmt), a),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered(lambda a, b: a < b),  # type: ignore[operator]
    "le": _ordered(lambda a, b: a <= b),  # type: ignore[operator]
    "gt": _ordered(lambda a, b: a > b),  # type: ignore[operator]
    "ge": _ordered(lambda a, b: a >= b),  # type: ignore[operator]
    "urlquery": lambda *a: urllib.parse.quote_plus(_sprint(*a)),
}
_BUILTIN_NAMES = frozenset({*_BUILTINS, "and", "or"})


def execute(tmpl: Template, funcs: Mapping[str, Func], data: object,
            variables: Mapping[str, object] | None = None) -> str:
    """Run a parsed template; raises TemplateError `template: NAME:L:C: executing ...`."""
    ex = _Exec(tmpl, funcs, data, variables or {})
    try:
        ex.run(tmpl.nodes, data)
    except _ExecFail as fail:
        where = f"template: {tmpl.name}"
        if fail.op is not None:
            line, col = line_col(tmpl.text, fail.op.pos)
            where += f':{line}:{col}: executing "{tmpl.name}" at <{fail.op.text}>'
        raise TemplateError(f"{where}: {fail.message}") from None
    except (_Break, _Continue):
        pass
    return "".join(ex.out)


# -- Prometheus's alert templates ----------------------------------------------------------


def _alert_funcs(ctx: FuncContext) -> Mapping[str, Func]:
    return prometheus_functions(ctx)


_FUNC_NAMES = frozenset({*_BUILTIN_NAMES, *_alert_funcs(FuncContext())})


def _alert_template(text: str, name: str) -> Template:
    # Parse the definitions and the user's text together so positions match Prometheus's.
    full = parse_template(_DEFS + text, name, _FUNC_NAMES)
    return full


def check_template(text: str, name: str = "__alert_") -> str | None:
    """Why an alert label/annotation template cannot parse (Go's message), or None."""
    try:
        _alert_template(text, name)
    except TemplateError as exc:
        return str(exc)
    return None


def expand_alert_template(
    text: str,
    *,
    alert_name: str,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    query: Callable[[str], list[TemplateSample]] | None = None,
) -> str:
    """Expand one alert label or annotation as rules/alerting.go does; errors go in place."""
    if "{{" not in text:
        return text  # the common case: a plain string needs no parse
    name = "__alert_" + alert_name
    data = {
        "Labels": dict(labels),
        "ExternalLabels": dict(external_labels or {}),
        "ExternalURL": external_url,
        "Value": value,
    }
    ctx = FuncContext(query=query, external_url=external_url)
    try:
        tmpl = _template_cache(text, name)
    except TemplateError as exc:
        return f"<error expanding template: error parsing template {name}: {exc}>"
    try:
        return execute(tmpl, _alert_funcs(ctx), data)
    except TemplateError as exc:
        return f"<error expanding template: error executing template {name}: {exc}>"


_CACHE: dict[tuple[str, str], Template] = {}


def _template_cache(text: str, name: str) -> Template:
    key = (text, name)
    tmpl = _CACHE.get(key)
    if tmpl is None:
        tmpl = _alert_template(text, name)
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[key] = tmpl
    return tmpl
