"""promtool's `test rules` file format, read strictly, plus the Go text forms its output uses."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal

import yaml

from exporter.durations import Duration, format_duration
from exporter.labels import Labels
from exporter.templates_funcs import go_quote
from exporter.yamlkinds import BOOL, DURATION, FLOAT, STR, list_of, map_of
from exporter.yamlnodes import TAG_STR, Kind, MapReader, Problems, compose_file

DEFAULT_EVALUATION_INTERVAL_MS = 60_000

# go-yaml v2 reads `1e-7` as a float where YAML 1.1 (PyYAML) sees a string.
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _read_go_float(node: yaml.Node, ctx: str, problems: Problems) -> float:
    if isinstance(node, yaml.ScalarNode) and node.tag == TAG_STR and node.style is None \
            and _GO_YAML_FLOAT.fullmatch(node.value):
        return float(node.value)
    return FLOAT.read(node, ctx, problems)


GO_FLOAT: Kind[float] = Kind(FLOAT.expected, _read_go_float, lambda: 0.0)


@dataclass(frozen=True, slots=True)
class InputSeries:
    """`input_series` item: a series selector and its values in series notation."""

    series: str
    values: str


@dataclass(frozen=True, slots=True)
class ExpAlert:
    """`exp_alerts` item."""

    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class AlertTest:
    """`alert_rule_test` item."""

    eval_time_ms: int
    alertname: str
    exp_alerts: tuple[ExpAlert, ...]


@dataclass(frozen=True, slots=True)
class ExpSample:
    """`exp_samples` item (`histogram` kept to reject it: native histograms are unsupported)."""

    labels: str
    value: float
    histogram: str = ""


@dataclass(frozen=True, slots=True)
class ExprTest:
    """`promql_expr_test` item."""

    expr: str
    eval_time_ms: int
    exp_samples: tuple[ExpSample, ...]


@dataclass(frozen=True, slots=True)
class TestGroup:
    """One item of `tests`."""

    name: str
    interval_ms: int
    input_series: tuple[InputSeries, ...]
    alert_tests: tuple[AlertTest, ...]
    expr_tests: tuple[ExprTest, ...]
    external_labels: Labels
    external_url: str

    def max_eval_time_ms(self) -> int:
        """The latest eval_time of any alert or expression test (0 without tests)."""
        times = [t.eval_time_ms for t in self.alert_tests] + [t.eval_time_ms
                                                              for t in self.expr_tests]
        return max(times, default=0)


@dataclass(frozen=True, slots=True)
class UnitTestFile:
    """A whole unit-test file."""

    rule_files: tuple[str, ...]
    evaluation_interval_ms: int
    group_eval_order: tuple[str, ...]
    tests: tuple[TestGroup, ...]
    fuzzy_compare: bool = False
    warnings: list[str] = field(default_factory=list)


def read_unit_test_file(path: str, problems: Problems) -> UnitTestFile | None:
    """Read a unit-test file; problems collect every error, None when any."""
    root = compose_file(path, problems)
    if problems.error_count():
        return None
    with MapReader(root, "", problems) as top:
        rule_files = top.optional("rule_files", list_of(STR), [])
        interval = top.optional("evaluation_interval", DURATION, Duration(0))
        interval_ms = int(interval) or DEFAULT_EVALUATION_INTERVAL_MS
        order = top.optional("group_eval_order", list_of(STR), [])
        fuzzy = top.optional("fuzzy_compare", BOOL, False)
        tests = [_read_group(ctx, node, problems, interval_ms)
                 for ctx, node in top.items("tests")]
    if problems.error_count():
        return None
    return UnitTestFile(tuple(rule_files), interval_ms, tuple(order), tuple(tests), fuzzy)


def _read_group(ctx: str, node: yaml.Node, problems: Problems,
                default_interval_ms: int) -> TestGroup:
    with MapReader(node, ctx, problems) as g:
        name = g.optional("name", STR, "")
        interval = int(g.optional("interval", DURATION, Duration(0))) or default_interval_ms
        series: list[InputSeries] = []
        for sctx, snode in g.items("input_series"):
            with MapReader(snode, sctx, problems) as s:
                series.append(InputSeries(s.optional("series", STR, ""),
                                          s.optional("values", STR, "")))
        alerts: list[AlertTest] = []
        for actx, anode in g.items("alert_rule_test"):
            with MapReader(anode, actx, problems) as a:
                eval_time = int(a.optional("eval_time", DURATION, Duration(0)))
                alertname = a.optional("alertname", STR, "")
                exp: list[ExpAlert] = []
                for ectx, enode in a.items("exp_alerts"):
                    with MapReader(enode, ectx, problems) as e:
                        exp.append(ExpAlert(e.optional("exp_labels", map_of(STR), {}),
                                            e.optional("exp_annotations", map_of(STR), {})))
                alerts.append(AlertTest(eval_time, alertname, tuple(exp)))
        exprs: list[ExprTest] = []
        for pctx, pnode in g.items("promql_expr_test"):
            with MapReader(pnode, pctx, problems) as p:
                expr = p.optional("expr", STR, "")
                eval_time = int(p.optional("eval_time", DURATION, Duration(0)))
                samples: list[ExpSample] = []
                for xctx, xnode in p.items("exp_samples"):
                    with MapReader(xnode, xctx, problems) as x:
                        samples.append(ExpSample(x.optional("labels", STR, ""),
                                                 x.optional("value", GO_FLOAT, 0.0),
                                                 x.optional("histogram", STR, "")))
                exprs.append(ExprTest(expr, eval_time, tuple(samples)))
        external = g.optional("external_labels", map_of(STR), {})
        url = g.optional("external_url", STR, "")
    return TestGroup(name, interval, tuple(series), tuple(alerts), tuple(exprs),
                     tuple(sorted(external.items())), url)


# -- Go's text forms in promtool's messages -----------------------------------------------

_LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def go_labels(labels: Labels) -> str:
    """labels.Labels.String(): `{__name__="x", a="b"}`."""
    parts = []
    for name, value in labels:
        shown = name if _LEGACY_NAME.fullmatch(name) else go_quote(name)
        parts.append(f"{shown}={go_quote(value)}")
    return "{" + ", ".join(parts) + "}"


def go_float_e(v: float) -> str:
    """strconv.FormatFloat(v, 'E', -1, 64): shortest digits, `1.5E+00`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return ("-" if math.copysign(1.0, v) < 0 else "") + "0E+00"
    sign, digits_t, exponent = Decimal(repr(v)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_t)).lstrip("0")
    exp = len(digits) + exponent - 1 if digits else 0
    digits = digits.rstrip("0") or "0"
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mant}E{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_duration(ms: int) -> str:
    """time.Duration.String() of a millisecond count: `0s`, `500ms`, `1m30s`, `1h0m0s`."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}" + (f".{rest % 1000:03d}".rstrip("0") if rest % 1000 else "")
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def model_duration(ms: int) -> str:
    """model.Duration.String(): `5m`, `1m30s`, `0s`."""
    return format_duration(ms)
