"""Units of value expressions: inferred from names and parameters, checked before any rule runs.

The rules, as `check rules` applies them:

- A unit is a product of base units with integer powers: currencies (upper-case ISO-4217
  codes, `EUR`), `seconds`, `minutes`, `hours`, `bytes`, `events`, or any other lower-case word
  (`orders`); `ratio` and `1` mean dimensionless. Written `EUR`, `EUR/event`, `EUR/minute`,
  `events*seconds/bytes`; plurals and singulars are the same unit.
- Known units come from parameters (`$name`, `parameter:<name>`), from value metrics defined
  earlier (by name), and from metric-name suffixes: `_seconds`, `_bytes`, `_ratio`, currency
  suffixes (`_eur`, `_usd`, ...), `_total` (events, unless a unit suffix precedes it:
  `revenue_eur_total` is EUR), histogram `_sum` and `_bucket` (the base unit), `_count`
  (dimensionless, so `_sum / _count` is a mean in the base unit). Recorded names
  `level:metric:operations` read the operations (`:ratio...` dimensionless, `:total` and
  `:events` events) and else the metric part.
- `+`, `-`, comparisons and `or` between two different known units are errors; `*` and `/`
  combine units; a number literal adapts (it is dimensionless in `*` and `/`).
- Rates are not tracked per time: `rate`, `irate`, `increase`, `delta`, `deriv` and the
  `*_over_time` functions keep their argument's unit; `count`, `count_over_time` are
  dimensionless; `time()` and `timestamp()` are seconds; `histogram_quantile` has the unit of
  its buckets. Anything else is unknown, and unknown units pass silently.
"""

from __future__ import annotations

import re
from typing import Any

import promql_parser

Unit = tuple[tuple[str, int], ...]  # sorted (base unit, power), powers never 0
DIMENSIONLESS: Unit = ()
EVENTS: Unit = (("events", 1),)
SECONDS: Unit = (("seconds", 1),)

_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_WORD_RE = re.compile(r"[a-z][a-z_]*")
_SINGULAR = {"event": "events", "second": "seconds", "minute": "minutes", "hour": "hours",
             "byte": "bytes"}
_SUFFIXES = {"seconds": SECONDS, "bytes": (("bytes", 1),), "ratio": DIMENSIONLESS}
_KEEP_UNIT = frozenset({
    "rate", "irate", "increase", "delta", "idelta", "deriv", "abs", "ceil", "floor", "round",
    "clamp", "clamp_min", "clamp_max", "sort", "sort_desc", "label_replace", "label_join",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "last_over_time",
    "quantile_over_time", "stddev_over_time", "scalar", "vector", "predict_linear",
})
_DIMENSIONLESS_FUNCS = frozenset({"count_over_time", "absent", "absent_over_time",
                                  "present_over_time", "changes", "resets"})
_KEEP_AGG = frozenset({"sum", "avg", "min", "max", "topk", "bottomk", "quantile", "stddev",
                       "limitk", "limit_ratio"})
_ADDITIVE = {"+": "cannot add {r} to {l}", "-": "cannot subtract {r} from {l}",
             "or": "cannot join {l} and {r} with or"}
_COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})


class UnitError(Exception):
    """An expression combines units that do not fit; the message names both."""


def parse_unit(text: str) -> Unit:
    """`EUR/event` -> ((EUR, 1), (events, -1)); raises ValueError on a malformed unit."""
    text = text.strip()
    if text in ("1", "ratio"):
        return DIMENSIONLESS
    num, slash, den = text.partition("/")
    powers: dict[str, int] = {}
    for part, sign in ((num, 1), (den, -1)):
        if sign == -1 and not slash:
            continue
        for word in part.split("*"):
            word = word.strip()
            if word in ("1", "ratio") and sign == 1:
                continue
            if not (_CURRENCY_RE.fullmatch(word) or _WORD_RE.fullmatch(word)):
                raise ValueError(f'invalid unit "{text}"')
            base = _SINGULAR.get(word, word)
            powers[base] = powers.get(base, 0) + sign
    return _normal(powers)


def format_unit(unit: Unit) -> str:
    """The canonical text: `EUR/events`, `ratio` for dimensionless."""
    num = [b if p == 1 else f"{b}^{p}" for b, p in unit if p > 0]
    den = [b if p == -1 else f"{b}^{-p}" for b, p in unit if p < 0]
    text = "*".join(num) or "1"
    if not den:
        return "ratio" if not num else text
    return f"{text}/{'*'.join(den)}"


def is_share(name: str, unit: str) -> bool:
    """Whether a value metric is a share to show in percent: dimensionless and not a rate
    named `..._per_...` (incidents per 1,000 orders is dimensionless but no fraction)."""
    return unit == "ratio" and "_per_" not in name


def currency(unit: Unit | None) -> str | None:
    """The currency code when the unit is exactly one currency (`EUR`), else None."""
    if unit and len(unit) == 1 and unit[0][1] == 1 and _CURRENCY_RE.fullmatch(unit[0][0]):
        return unit[0][0]
    return None


def money_per(unit: Unit | None, per: str) -> str | None:
    """The currency when the unit is money per one `per` (`EUR/event`), else None."""
    if unit is None or len(unit) != 2:
        return None
    powers = dict(unit)
    if powers.get(per) != -1:
        return None
    other = [b for b in powers if b != per]
    return other[0] if powers[other[0]] == 1 and _CURRENCY_RE.fullmatch(other[0]) else None


def multiply(a: Unit, b: Unit, sign: int = 1) -> Unit:
    """a * b (sign 1) or a / b (sign -1)."""
    powers = dict(a)
    for base, p in b:
        powers[base] = powers.get(base, 0) + sign * p
    return _normal(powers)


def _normal(powers: dict[str, int]) -> Unit:
    return tuple(sorted((b, p) for b, p in powers.items() if p))


def metric_unit(name: str, known: dict[str, Unit]) -> Unit | None:
    """The unit a metric name states, or None when it states none."""
    if name in known:
        return known[name]
    if ":" in name:
        parts = name.split(":")
        ops = parts[-1] if len(parts) >= 3 else ""
        if ops.startswith("ratio"):
            return DIMENSIONLESS
        if ops in ("total", "events"):
            return EVENTS
        if ops.endswith("seconds"):
            return SECONDS
        name = parts[1] if len(parts) >= 3 else parts[-1]
    if name.endswith("_count"):
        return DIMENSIONLESS
    for histogram_part in ("_sum", "_bucket"):
        name = name.removesuffix(histogram_part)
    counter = name.endswith("_total")
    last = name.removesuffix("_total").rsplit("_", 1)[-1]
    if last in _SUFFIXES:
        return _SUFFIXES[last]
    if last in _CURRENCY_SUFFIXES:
        return ((last.upper(), 1),)
    return EVENTS if counter else None


# Suffixes read as money: the ISO-4217 codes a business metric is likely to carry. A fixed
# list, because any three letters (`_sum`, `_max`, `_avg`) would otherwise read as money.
_CURRENCY_SUFFIXES = frozenset({
    "eur", "usd", "gbp", "chf", "jpy", "cny", "sek", "nok", "dkk", "pln", "czk", "huf", "cad",
    "aud", "nzd", "inr", "brl", "mxn", "zar", "sgd", "hkd", "krw", "try", "ils", "aed", "sar"})


def currency_suffix_codes() -> frozenset[str]:
    """The lower-case currency codes read from metric-name suffixes."""
    return _CURRENCY_SUFFIXES


def infer_unit(e: Any, known: dict[str, Unit]) -> Unit | None:
    """The unit of a parsed expression (None: unknown); raises UnitError on a mismatch."""
    if isinstance(e, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return infer_unit(e.expr, known)
    if isinstance(e, promql_parser.NumberLiteral):
        return None
    if isinstance(e, promql_parser.VectorSelector):
        return metric_unit(e.name or "", known)
    if isinstance(e, promql_parser.MatrixSelector):
        return metric_unit(e.vector_selector.name or "", known)
    if isinstance(e, promql_parser.SubqueryExpr):
        return infer_unit(e.expr, known)
    if isinstance(e, promql_parser.AggregateExpr):
        inner = infer_unit(e.expr, known)
        op = str(e.op)
        if op in ("count", "count_values", "group"):
            return DIMENSIONLESS
        return inner if op in _KEEP_AGG else None
    if isinstance(e, promql_parser.Call):
        return _call_unit(e, known)
    if isinstance(e, promql_parser.BinaryExpr):
        return _binary_unit(e, known)
    return None


def _call_unit(e: Any, known: dict[str, Unit]) -> Unit | None:
    name = str(e.func.name)
    args = [infer_unit(a, known) for a in e.args]  # also checks inside every argument
    if name in ("time", "timestamp"):
        return SECONDS
    if name in _DIMENSIONLESS_FUNCS:
        return DIMENSIONLESS
    if name == "histogram_quantile" and len(args) == 2:
        return args[1]
    if name == "quantile_over_time" and len(args) == 2:
        return args[1]
    if name in _KEEP_UNIT and args:
        return args[0]
    return None


def _is_literal(e: Any) -> bool:
    while isinstance(e, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        e = e.expr
    return isinstance(e, promql_parser.NumberLiteral)


def _binary_unit(e: Any, known: dict[str, Unit]) -> Unit | None:
    left, right = infer_unit(e.lhs, known), infer_unit(e.rhs, known)
    op = str(e.op)
    returns_bool = bool(e.modifier is not None and e.modifier.return_bool)
    if op in _ADDITIVE or op in _COMPARISONS:
        if left is not None and right is not None and left != right:
            template = _ADDITIVE.get(op, "cannot compare {l} with {r}")
            raise UnitError(template.format(l=format_unit(left), r=format_unit(right)))
        if op in _COMPARISONS:
            return DIMENSIONLESS if returns_bool else left if left is not None else right
        return left if left is not None else right
    if op in ("*", "/"):
        sign = 1 if op == "*" else -1
        if left is not None and right is not None:
            return multiply(left, right, sign)
        if left is not None and _is_literal(e.rhs):
            return left
        if right is not None and _is_literal(e.lhs):
            return right if sign == 1 else multiply(DIMENSIONLESS, right, -1)
        return None
    if op in ("and", "unless", "%"):
        return left
    return None
