"""PromQL evaluator: walks a query plan at each evaluation time and returns Prometheus's values."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from exporter.labels import Labels
from exporter.promql import aggregation, binary
from exporter.promql.gcpause import gc_paused
from exporter.promql.parse import Expr
from exporter.promql.plan import (
    AT_END,
    AT_START,
    MATRIX,
    SCALAR,
    STRING,
    VECTOR,
    AggregateNode,
    At,
    BinaryNode,
    CallNode,
    MatrixNode,
    NegateNode,
    Node,
    NumberNode,
    SelectorNode,
    StringNode,
    SubqueryNode,
    plan_query,
)
from exporter.promql.selectors import (
    collect_series,
    select_instant,
    select_range,
    select_steps,
    subquery_times,
)
from exporter.promql.values import (
    Annotations,
    CallContext,
    Matrix,
    PromQLError,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
)
from exporter.store import Series, SeriesStore

DEFAULT_LOOKBACK_MS = 300_000
DEFAULT_SUBQUERY_STEP_MS = 60_000
# Prometheus's --query.max-samples default, and its error text when a query goes past it.
DEFAULT_MAX_SAMPLES = 50_000_000
TOO_MANY_SAMPLES = ("query processing would load too many samples into memory in "
                    "query execution")

Function = Callable[[list[Value], CallContext], Value]

_DOCUMENTED_TYPE = {
    SCALAR: "scalar",
    VECTOR: "instant vector",
    MATRIX: "range vector",
    STRING: "string",
}
_DUPLICATE = "vector cannot contain metrics with the same labelset"


class TooManySamplesError(PromQLError):
    """A query loaded more samples than its max_samples bound (Prometheus's
    ErrTooManySamples)."""

    def __init__(self) -> None:
        super().__init__(TOO_MANY_SAMPLES)


@dataclass
class QueryResult:
    """A query's value and the warnings/infos raised while computing it."""

    value: Value
    annotations: Annotations


def evaluate_instant(
    expr: str | Expr,
    store: SeriesStore,
    t_ms: int,
    *,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> QueryResult:
    """Evaluate at one time: a Vector, Scalar, String, or (for range selectors) a Matrix.

    Raises TooManySamplesError once selectors have loaded more than max_samples samples."""
    root = plan_query(expr)
    ev = Evaluator(store, t_ms, t_ms, lookback_ms, subquery_step_ms, max_samples)
    with gc_paused():
        value = ev.eval(root, t_ms)
    if isinstance(value, Matrix):
        value.series.sort(key=lambda s: s.labels)
    return QueryResult(value, ev.annotations)


def evaluate_range(
    expr: str | Expr,
    store: SeriesStore,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    *,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    subquery_step_ms: int = DEFAULT_SUBQUERY_STEP_MS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> QueryResult:
    """Evaluate at start, start+step, ... end: a Matrix of series sorted by labels."""
    root = plan_query(expr)
    if root.kind not in (SCALAR, VECTOR):
        raise PromQLError(
            f'invalid expression type "{_DOCUMENTED_TYPE[root.kind]}" for range query, '
            "must be Scalar or instant Vector"
        )
    if step_ms <= 0:
        raise PromQLError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    ev = Evaluator(store, start_ms, end_ms, lookback_ms, subquery_step_ms, max_samples)
    points: dict[Labels, tuple[list[int], list[float]]] = {}
    with gc_paused():
        for t in range(start_ms, end_ms + 1, step_ms):
            _gather(points, ev.eval(root, t), t)
    series = collect_series(points)
    series.sort(key=lambda s: s.labels)
    return QueryResult(Matrix(series, start_ms, end_ms), ev.annotations)


def _gather(points: dict[Labels, tuple[list[int], list[float]]], value: Value, t: int) -> None:
    """Add one step's scalar or vector to per-series point lists."""
    if isinstance(value, Scalar):
        ts, vs = points.setdefault((), ([], []))
        ts.append(t)
        vs.append(value.value)
        return
    if not isinstance(value, list):
        raise PromQLError(f"unexpected {type(value).__name__} in step evaluation")
    for s in value:
        entry = points.get(s.labels)
        if entry is None:
            entry = points[s.labels] = ([], [])
        elif entry[0][-1] == t:
            raise PromQLError(_DUPLICATE)
        entry[0].append(t)
        entry[1].append(s.value)


class Evaluator:
    """One query's evaluation state: its time bounds, options and per-query caches."""

    def __init__(
        self,
        store: SeriesStore,
        start_ms: int,
        end_ms: int,
        lookback_ms: int,
        subquery_step_ms: int,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self.store = store
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.lookback_ms = lookback_ms
        self.subquery_step_ms = subquery_step_ms
        # Prometheus bounds the samples a query holds at once; this counts every sample the
        # selectors load over the whole query (every step), which is never below that peak.
        self.max_samples = max_samples
        self.samples_loaded = 0
        self.annotations = Annotations()
        # Selectors resolve their series once per query, however many steps ask.
        self._series: dict[SelectorNode, list[Series]] = {}
        self._functions: Mapping[str, Function] | None = None
        self._dispatch: dict[type, Callable[[Node, int], Value]] = {
            NumberNode: lambda n, t: Scalar(cast(NumberNode, n).value),
            StringNode: lambda n, t: String(cast(StringNode, n).value),
            SelectorNode: lambda n, t: self._selector(cast(SelectorNode, n), t),
            MatrixNode: lambda n, t: self._matrix(cast(MatrixNode, n), t),
            SubqueryNode: lambda n, t: self._subquery(cast(SubqueryNode, n), t),
            NegateNode: lambda n, t: self._negate(cast(NegateNode, n), t),
            BinaryNode: lambda n, t: self._binary(cast(BinaryNode, n), t),
            AggregateNode: lambda n, t: self._aggregate(cast(AggregateNode, n), t),
            CallNode: lambda n, t: self._call(cast(CallNode, n), t),
        }

    def eval(self, node: Node, t: int) -> Value:
        """The value of a plan node at evaluation time t (ms)."""
        return self._dispatch[type(node)](node, t)

    def eval_vector(self, node: Node, t: int) -> Vector:
        """Evaluate a node that the parser typed as an instant vector."""
        value = self.eval(node, t)
        if not isinstance(value, list):
            raise PromQLError(f"expected instant vector, got {type(value).__name__}")
        return value

    def eval_scalar(self, node: Node, t: int) -> float:
        """Evaluate a node that the parser typed as a scalar."""
        value = self.eval(node, t)
        if not isinstance(value, Scalar):
            raise PromQLError(f"expected scalar, got {type(value).__name__}")
        return value.value

    # -- selectors ---------------------------------------------------------------------

    def series_for(self, node: SelectorNode) -> list[Series]:
        """The series a selector matches (resolved through the label index once per query)."""
        found = self._series.get(node)
        if found is None:
            found = self.store.select_any(node.alternatives)
            self._series[node] = found
        return found

    def at_time(self, at: At, t: int) -> int:
        """The time a selector or subquery reads at: its @ time, else the evaluation time."""
        if at is None:
            return t
        if at == AT_START:
            return self.start_ms
        if at == AT_END:
            return self.end_ms
        return cast(int, at)

    def _charge(self, samples: int) -> None:
        """Count samples loaded; past max_samples the query fails as Prometheus's does."""
        self.samples_loaded += samples
        if self.samples_loaded > self.max_samples:
            raise TooManySamplesError()

    def _charge_matrix(self, matrix: Matrix) -> Matrix:
        self._charge(sum(len(s.ts) for s in matrix.series))
        return matrix

    def _selector(self, node: SelectorNode, t: int) -> Vector:
        ref = self.at_time(node.at, t) - node.offset_ms
        out = select_instant(self.series_for(node), ref, self.lookback_ms, t)
        self._charge(len(out))
        return out

    def _matrix(self, node: MatrixNode, t: int) -> Matrix:
        sel = node.selector
        ref = self.at_time(sel.at, t) - sel.offset_ms
        return self._charge_matrix(select_range(self.series_for(sel), ref, node.range_ms))

    def _subquery(self, node: SubqueryNode, t: int) -> Matrix:
        end = self.at_time(node.at, t) - node.offset_ms
        step = node.step_ms or self.subquery_step_ms
        times = subquery_times(end, node.range_ms, step)
        inner = node.expr
        if isinstance(inner, SelectorNode):
            refs = [self.at_time(inner.at, u) - inner.offset_ms for u in times]
            found = select_steps(self.series_for(inner), times, refs, self.lookback_ms)
            return self._charge_matrix(Matrix(found, end - node.range_ms, end))
        points: dict[Labels, tuple[list[int], list[float]]] = {}
        for inner_t in times:
            _gather(points, self.eval(node.expr, inner_t), inner_t)
        return self._charge_matrix(Matrix(collect_series(points), end - node.range_ms, end))

    # -- operators ---------------------------------------------------------------------

    def _negate(self, node: NegateNode, t: int) -> Value:
        value = self.eval(node.expr, t)
        if isinstance(value, Scalar):
            return Scalar(-value.value)
        if not isinstance(value, list):
            raise PromQLError("unary minus needs a scalar or an instant vector")
        out = [Sample(binary.drop_name(s.labels), -s.value, t) for s in value]
        _check_unique(out)
        return out

    def _binary(self, node: BinaryNode, t: int) -> Value:
        lhs_kind, rhs_kind = node.lhs.kind, node.rhs.kind
        if lhs_kind == SCALAR and rhs_kind == SCALAR:
            a = self.eval_scalar(node.lhs, t)
            b = self.eval_scalar(node.rhs, t)
            return Scalar(binary.scalar_binop(node.op, a, b))
        if lhs_kind == SCALAR:
            a = self.eval_scalar(node.lhs, t)
            vec = self.eval_vector(node.rhs, t)
            out = binary.vector_scalar_binop(node.op, vec, a, True, node.return_bool, t)
        elif rhs_kind == SCALAR:
            vec = self.eval_vector(node.lhs, t)
            b = self.eval_scalar(node.rhs, t)
            out = binary.vector_scalar_binop(node.op, vec, b, False, node.return_bool, t)
        else:
            lhs = self.eval_vector(node.lhs, t)
            rhs = self.eval_vector(node.rhs, t)
            if node.op in ("and", "or", "unless"):
                out = binary.set_binop(node, lhs, rhs)
            else:
                out = binary.vector_binop(node, lhs, rhs, t)
        _check_unique(out)
        return out

    def _aggregate(self, node: AggregateNode, t: int) -> Vector:
        op = node.op
        if op == "count_values":
            label = self._count_values_label(node, t)
            return aggregation.count_values(node, self.eval_vector(node.expr, t), label, t)
        param = math.nan
        if node.param is not None:
            param = self.eval_scalar(node.param, t)
        vec = self.eval_vector(node.expr, t)
        group = aggregation.grouping_fn(node)
        if op in ("topk", "bottomk", "limitk"):
            if not vec or param < 1:
                return []
            return aggregation.topk(node, vec, aggregation.k_param(param), group, t)
        if op == "limit_ratio":
            raise PromQLError("limit_ratio is not supported")
        return aggregation.aggregate(node, vec, param, group, t)

    def _count_values_label(self, node: AggregateNode, t: int) -> str:
        if node.param is None:
            raise PromQLError("count_values needs a label name")
        value = self.eval(node.param, t)
        if not isinstance(value, String):
            raise PromQLError("count_values needs a string parameter")
        label = value.value
        if not label or not _valid_utf8(label):
            raise PromQLError(f"invalid label name {binary.go_quote(label)}")
        return label

    # -- functions ---------------------------------------------------------------------

    def _call(self, node: CallNode, t: int) -> Value:
        fn = self.functions().get(node.name)
        if fn is None:
            raise PromQLError(f"function {node.name!r} is not implemented")
        if node.name == "timestamp" and isinstance(node.args[0], SelectorNode):
            args: list[Value] = [self._timestamp_arg(node.args[0], t)]
        else:
            args = [self.eval(arg, t) for arg in node.args]
        result = fn(args, CallContext(t, node.arg_exprs, self.annotations))
        if isinstance(result, list):
            _check_unique(result)
        return result

    def _timestamp_arg(self, node: SelectorNode, t: int) -> Vector:
        # timestamp() of a selector reports each sample's own time, not the evaluation time.
        ref = self.at_time(node.at, t) - node.offset_ms
        out = select_instant(self.series_for(node), ref, self.lookback_ms, t, raw_times=True)
        self._charge(len(out))
        return out

    def functions(self) -> Mapping[str, Function]:
        """The function table (imported lazily: functions.py is its own module)."""
        if self._functions is None:
            module = importlib.import_module("exporter.promql.functions")
            self._functions = cast(Mapping[str, Function], module.FUNCTIONS)
        return self._functions




def _check_unique(vec: Vector) -> None:
    """Prometheus refuses a vector where two samples share a label set."""
    if len(vec) > 1 and len({s.labels for s in vec}) != len(vec):
        raise PromQLError(_DUPLICATE)


def _valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
