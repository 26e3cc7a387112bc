"""Template functions and Go value formatting for alert label and annotation templates."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from exporter.durations import DurationError, parse_duration


class TemplateError(Exception):
    """A template that failed to parse or to execute; the message is Go's wording."""


@dataclass(frozen=True, slots=True)
class TemplateSample:
    """One element of a `query` result as templates see it: a label map and a value."""

    labels: dict[str, str]
    value: float


# query(text) -> samples at the alert's evaluation time; the evaluator supplies it.
TemplateQuery = Callable[[str], list[TemplateSample]]


@dataclass(slots=True)
class FuncContext:
    """What template functions may reach besides their arguments."""

    query: TemplateQuery | None = None
    external_url: str = ""
    extra: dict[str, object] = field(default_factory=dict)


# -- Go formatting ------------------------------------------------------------------------


def go_type(value: object) -> str:
    """The Go type name a value has in Prometheus's templates (for error messages)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, TemplateSample):
        return "*template.sample"
    if isinstance(value, list):
        return "template.queryResult"
    if isinstance(value, dict):
        return "map[string]string"
    return "<nil>" if value is None else type(value).__name__


def _special(v: float, plus: bool = True) -> str | None:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return ("+Inf" if plus else "Inf") if v > 0 else "-Inf"
    return None


def go_float(v: float) -> str:
    """Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e6."""
    special = _special(v)
    if special is not None:
        return special
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digits_t, exponent = Decimal(repr(v)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    point = len(digits_t) + exponent  # position of the decimal point in `digits`
    exp = point - 1
    neg = "-" if sign else ""
    # strconv's shortest 'g' decides as if the precision were 6 (so 1e+06, not 1000000).
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_str(value: object) -> str:
    """fmt.Sprint of a value as text/template prints it."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, TemplateSample):
        return f"&{{{go_str(value.labels)} {go_float(value.value)}}}"
    return str(value)


def go_quote(text: str) -> str:
    """strconv.Quote for the common characters."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, args: Sequence[object]) -> str:
    """fmt.Sprintf for the verbs alert templates use (%s %d %f %g %e %v %q %x %t %%)."""
    out: list[str] = []
    pos = 0
    arg_i = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if arg_i >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[arg_i]
        arg_i += 1
        text = _format_one(verb, flags, prec, arg)
        if width and width != "*":
            w = int(width)
            if "-" in flags:
                text = text.ljust(w)
            elif "0" in flags and verb in "dfeEgGx" and isinstance(arg, int | float):
                neg = text.startswith(("-", "+"))
                body = text[1:] if neg else text
                text = (text[0] if neg else "") + body.rjust(w - (1 if neg else 0), "0")
            else:
                text = text.rjust(w)
        out.append(text)
    out.append(fmt[pos:])
    if arg_i < len(args):
        extra = ", ".join(f"{go_type(a)}={go_str(a)}" for a in args[arg_i:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad(verb: str, arg: object) -> str:
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def _format_one(verb: str, flags: str, prec: str | None, arg: object) -> str:
    plus = "+" if "+" in flags else (" " if " " in flags else "")
    if verb == "v":
        return go_str(arg)
    if verb == "s":
        return go_str(arg) if isinstance(arg, str | dict | list) else _bad(verb, arg)
    if verb == "q":
        return go_quote(arg) if isinstance(arg, str) else _bad(verb, arg)
    if verb == "t":
        return go_str(arg) if isinstance(arg, bool) else _bad(verb, arg)
    if verb in "dxX" and isinstance(arg, int) and not isinstance(arg, bool):
        return format(arg, plus + ("d" if verb == "d" else verb))
    if verb in "xX" and isinstance(arg, str):
        return arg.encode().hex() if verb == "x" else arg.encode().hex().upper()
    if verb in "feEgG" and isinstance(arg, float):
        special = _special(arg, plus=True)
        if special is not None:
            return special if special != "+Inf" or plus else "+Inf"
        if prec is None and verb in "gG":
            text = go_float(arg)
            return (plus + text) if plus and arg >= 0 else text
        p = 6 if prec is None else int(prec)
        return ("%" + plus + "." + str(p) + verb) % arg
    return _bad(verb, arg)


# -- conversions and the function table --------------------------------------------------


def to_float(value: object) -> float:
    """common_templates.ConvertToFloat: floats, ints and numeric strings."""
    if isinstance(value, bool):
        raise TemplateError("can't convert bool to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace("_", "x") if "_" in value else value)
        except ValueError:
            raise TemplateError(
                f'strconv.ParseFloat: parsing {go_quote(value)}: invalid syntax'
            ) from None
    raise TemplateError(f"can't convert {go_type(value)} to float")


def _g4(v: float) -> str:
    special = _special(v)
    return special if special is not None else f"{v:.4g}"


def humanize(value: object) -> str:
    """1234 -> 1.234k; 0.001 -> 1m (metric prefixes, four significant digits)."""
    v = to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(value: object) -> str:
    """1024 -> 1ki (binary prefixes)."""
    v = to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(value: object) -> str:
    """Seconds as `1d 2h 3m 4s`, or `1.5s`, `250ms` below a minute."""
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: object) -> str:
    """0.1234 -> 12.34%."""
    return _g4(to_float(value) * 100) + "%"


def _first(v: object) -> object:
    if isinstance(v, list) and v:
        return v[0]
    if isinstance(v, list):
        raise TemplateError("first() called on vector with no elements")
    raise TemplateError(f"wrong type for value; expected template.queryResult; got {go_type(v)}")


def _sample(v: object) -> TemplateSample:
    if not isinstance(v, TemplateSample):
        raise TemplateError(f"wrong type for value; expected *template.sample; got {go_type(v)}")
    return v


def _query(ctx: FuncContext, text: object) -> list[TemplateSample]:
    if ctx.query is None:
        raise TemplateError("query is not available here")
    return ctx.query(str(text))


def _parse_duration(text: object) -> float:
    try:
        return parse_duration(str(text)) / 1000.0
    except DurationError as exc:
        raise TemplateError(str(exc)) from None


def _re_replace_all(pattern: object, repl: object, text: object) -> str:
    # Go's $1 / ${1} references become Python's \g<1>.
    py_repl = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", str(repl).replace("\\", "\\\\"))
    return re.sub(str(pattern), py_repl, str(text))


def _strip_port(host_port: object) -> str:
    text = str(host_port)
    m = re.fullmatch(r"\[([^\]]*)\]:(\d*)|([^:]*):(\d*)", text)
    if m is None:
        return text
    return m.group(1) if m.group(1) is not None else m.group(3)


Func = Callable[..., object]


def prometheus_functions(ctx: FuncContext) -> Mapping[str, Func]:
    """Prometheus's template functions (template/template.go), bound to one expansion."""
    return {
        "query": lambda q: _query(ctx, q),
        "first": _first,
        "label": lambda name, s: _sample(s).labels.get(str(name), ""),
        "value": lambda s: _sample(s).value,
        "strvalue": lambda s: _sample(s).labels.get("__value__", ""),
        "args": lambda *a: {f"arg{i}": v for i, v in enumerate(a)},
        "reReplaceAll": _re_replace_all,
        "safeHtml": lambda text: str(text),
        "match": lambda pattern, text: re.search(str(pattern), str(text)) is not None,
        "title": lambda text: str(text).title(),
        "toUpper": lambda text: str(text).upper(),
        "toLower": lambda text: str(text).lower(),
        "sortByLabel": lambda name, v: sorted(v, key=lambda s: _sample(s).labels.get(name, "")),
        "stripPort": _strip_port,
        "humanize": humanize,
        "humanize1024": humanize1024,
        "humanizeDuration": humanize_duration,
        "humanizePercentage": humanize_percentage,
        "pathPrefix": lambda: re.sub(r"^[a-z]+://[^/]*", "", ctx.external_url),
        "externalURL": lambda: ctx.external_url,
        "parseDuration": _parse_duration,
    }
