"""Tests for the PromQL evaluator: selectors, operators, aggregations, subqueries, range mode."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from exporter.labels import STALE_NAN, Labels, make_labels
from exporter.promql.engine import Evaluator, Function, evaluate_instant, evaluate_range
from exporter.promql.plan import plan_query
from exporter.promql.values import (
    CallContext,
    Matrix,
    PromQLError,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
)
from exporter.store import SeriesStore

M = 60_000  # one minute in ms


def _l(name: str = "", **kv: str) -> Labels:
    return make_labels({"__name__": name, **kv})


def _store(series: Mapping[Labels, list[tuple[int, float]]]) -> SeriesStore:
    store = SeriesStore()
    for labels, points in series.items():
        for t, v in points:
            store.append(labels, t, v)
    return store


def _as_dict(value: Value) -> dict[Labels, float]:
    assert isinstance(value, list), value
    return {s.labels: s.value for s in value}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@pytest.fixture
def store() -> SeriesStore:
    """Requests per job/instance at 0 and 5m, plus `up`, `down` and a `meta` info series per job."""
    return _store(
        {
            _l("req", job="api", instance="a"): [(0, 1), (5 * M, 10)],
            _l("req", job="api", instance="b"): [(0, 2), (5 * M, 20)],
            _l("req", job="web", instance="a"): [(0, 3), (5 * M, 30)],
            _l("up", job="api"): [(0, 1), (5 * M, 1)],
            _l("up", job="web"): [(0, 0), (5 * M, 0)],
            _l("meta", job="api", team="t1"): [(0, 2), (5 * M, 2)],
            _l("meta", job="web", team="t2"): [(0, 3), (5 * M, 3)],
            _l("down", job="api"): [(0, 0), (5 * M, 0)],
        }
    )


INSTANT_CASES = [
    (
        "selector",
        "req",
        {
            _l("req", job="api", instance="a"): 10,
            _l("req", job="api", instance="b"): 20,
            _l("req", job="web", instance="a"): 30,
        },
    ),
    ("offset", "req{job='web'} offset 5m", {_l("req", job="web", instance="a"): 3}),
    ("negative-offset", "req{job='web'} @ 0 offset -4m", {_l("req", job="web", instance="a"): 3}),
    ("at-modifier", "req{job='web'} @ 0", {_l("req", job="web", instance="a"): 3}),
    ("arithmetic-drops-name", "req{job='web'} * 2", {_l(job="web", instance="a"): 60}),
    (
        "filter-keeps-name",
        "req > 15",
        {_l("req", job="api", instance="b"): 20, _l("req", job="web", instance="a"): 30},
    ),
    ("bool-drops-name", "req{job='web'} > bool 15", {_l(job="web", instance="a"): 1}),
    (
        "scalar-left-filter-keeps-vector-value",
        "15 < req{job='web'}",
        {_l("req", job="web", instance="a"): 30},
    ),
    ("unary-minus", "-req{job='web'}", {_l(job="web", instance="a"): -30}),
    (
        "one-to-one-ignoring",
        "req{instance='a'} / ignoring(instance) up",
        {_l(job="api"): 10, _l(job="web"): math.inf},
    ),
    (
        "one-to-one-on-keeps-only-on-labels",
        "req{instance='a'} - on(job) up",
        {_l(job="api"): 9, _l(job="web"): 30},
    ),
    (
        "group-left",
        "req * on(job) group_left up",
        {
            _l(job="api", instance="a"): 10,
            _l(job="api", instance="b"): 20,
            _l(job="web", instance="a"): 0,
        },
    ),
    (
        "group-left-include",
        "req * on(job) group_left(team) meta",
        {
            _l(job="api", instance="a", team="t1"): 20,
            _l(job="api", instance="b", team="t1"): 40,
            _l(job="web", instance="a", team="t2"): 90,
        },
    ),
    (
        "group-right-include",
        "meta - on(job) group_right(team) req",
        {
            _l(job="api", instance="a", team="t1"): -8,
            _l(job="api", instance="b", team="t1"): -18,
            _l(job="web", instance="a", team="t2"): -27,
        },
    ),
    (
        "and",
        "req and on(job) (up == 1)",
        {_l("req", job="api", instance="a"): 10, _l("req", job="api", instance="b"): 20},
    ),
    ("unless", "req unless on(job) (up == 1)", {_l("req", job="web", instance="a"): 30}),
    (
        "or",
        "up or req{job='web'}",
        {_l("up", job="api"): 1, _l("up", job="web"): 0, _l("req", job="web", instance="a"): 30},
    ),
    ("sum-by", "sum by (job) (req)", {_l(job="api"): 30, _l(job="web"): 30}),
    (
        "sum-without-drops-name",
        "sum without (instance) (req)",
        {_l(job="api"): 30, _l(job="web"): 30},
    ),
    ("avg", "avg(req)", {(): 20}),
    ("count", "count by (instance) (req)", {_l(instance="a"): 2, _l(instance="b"): 1}),
    ("group", "group by (job) (req)", {_l(job="api"): 1, _l(job="web"): 1}),
    ("min-max", "max(req) - min(req)", {(): 20}),
    ("stddev", "stddev(req)", {(): math.sqrt(200 / 3)}),
    ("stdvar", "stdvar(req)", {(): 200 / 3}),
    ("quantile", "quantile(0.5, req)", {(): 20}),
    ("quantile-out-of-range", "quantile(2, req)", {(): math.inf}),
    ("count-values", "count_values('v', up)", {_l(v="1"): 1, _l(v="0"): 1}),
    ("topk-keeps-labels", "topk(1, req)", {_l("req", job="web", instance="a"): 30}),
    (
        "bottomk-by",
        "bottomk by (job) (1, req)",
        {_l("req", job="api", instance="a"): 10, _l("req", job="web", instance="a"): 30},
    ),
    ("topk-zero", "topk(0, req)", {}),
    ("lookback-expired", "req offset -1h", {}),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [pytest.param(e, x, id=i) for i, e, x in INSTANT_CASES]
)
def test_instant_vector_results(
    store: SeriesStore, expr: str, expected: dict[Labels, float]
) -> None:
    """Each expression yields exactly the expected label sets and values at t=5m."""
    got = _as_dict(evaluate_instant(expr, store, 5 * M).value)
    assert set(got) == set(expected)
    for labels, value in expected.items():
        assert _same(got[labels], value), labels


SCALAR_CASES = [
    ("literal", "1 + 2 * 3", 7.0),
    ("hex-and-inf", "0x10 + Inf", math.inf),
    ("division-by-zero", "1 / 0", math.inf),
    ("zero-over-zero", "0 / 0", math.nan),
    ("modulo-sign-of-dividend", "-7 % 3", -1.0),
    ("modulo-by-zero", "5 % 0", math.nan),
    ("power-of-zero-negative", "0 ^ -1", math.inf),
    ("power-domain", "(-8) ^ 0.5", math.nan),
    ("power-overflow", "10 ^ 400", math.inf),
    ("atan2", "1 atan2 1", math.pi / 4),
    ("comparison-bool", "2 > bool 1", 1.0),
    ("right-assoc-power", "2 ^ 3 ^ 2", 512.0),
]


@pytest.mark.parametrize(
    ("expr", "expected"), [pytest.param(e, x, id=i) for i, e, x in SCALAR_CASES]
)
def test_scalar_arithmetic(expr: str, expected: float) -> None:
    """Scalar expressions follow Go's float semantics instead of raising."""
    value = evaluate_instant(expr, SeriesStore(), 0).value
    assert isinstance(value, Scalar)
    assert _same(value.value, expected)


ERROR_CASES = [
    ("parse-error", "sum(", "parse error"),
    ("type-error", "rate(req)", "parse error"),
    ("many-to-many", "up * on() req", "found duplicate series for the match group {} on the right"),
    (
        "one-to-one-multiple-matches",
        "req * on(job) up",
        "multiple matches for labels: many-to-one matching must be explicit",
    ),
    (
        "duplicate-labelset",
        "-{__name__=~'up|down', job='api'}",
        "vector cannot contain metrics with the same labelset",
    ),
    ("topk-nan", "topk(NaN, req)", "Scalar value NaN overflows int64"),
]


@pytest.mark.parametrize(("expr", "message"), [pytest.param(e, m, id=i) for i, e, m in ERROR_CASES])
def test_evaluation_errors(store: SeriesStore, expr: str, message: str) -> None:
    """Queries Prometheus refuses raise PromQLError with Prometheus's wording."""
    with pytest.raises(PromQLError, match=None) as err:
        evaluate_instant(expr, store, 5 * M)
    assert message in str(err.value)


def test_stale_marker_hides_series() -> None:
    """A stale marker as the newest sample means no value, though older samples exist."""
    store = _store({_l("x"): [(0, 1), (M, STALE_NAN)]})
    assert evaluate_instant("x", store, 30_000).value != []
    assert evaluate_instant("x", store, 2 * M).value == []


def test_lookback_is_left_open() -> None:
    """A sample exactly lookback old is outside the window (t - lookback, t]."""
    store = _store({_l("x"): [(0, 1)]})
    assert evaluate_instant("x", store, 5 * M - 1).value != []
    assert evaluate_instant("x", store, 5 * M).value == []
    assert evaluate_instant("x", store, M, lookback_ms=M).value == []


def test_matrix_selector_window_and_stale() -> None:
    """A range selector reads (t - range, t] after offset, without stale markers, and says so."""
    store = _store({_l("x"): [(0, 0), (M, 1), (2 * M, STALE_NAN), (3 * M, 3)]})
    value = evaluate_instant("x[3m] offset 30s", store, 3 * M + 30_000).value
    assert isinstance(value, Matrix)
    assert (value.start_ms, value.end_ms) == (0, 3 * M)
    assert list(value.series[0].ts) == [M, 3 * M]
    assert list(value.series[0].vs) == [1, 3]


def test_subquery_steps_are_aligned() -> None:
    """Subquery steps are absolute multiples of the step inside (t - offset - range, t - offset]."""
    store = _store({_l("x"): [(i * 10_000, i) for i in range(100)]})
    value = evaluate_instant("x[1m:20s] offset 10s", store, 5 * M + 5_000).value
    assert isinstance(value, Matrix)
    assert list(value.series[0].ts) == [240_000, 260_000, 280_000]
    assert (value.start_ms, value.end_ms) == (235_000, 295_000)
    default = evaluate_instant("x[3m:]", store, 5 * M).value
    assert isinstance(default, Matrix)
    assert list(default.series[0].ts) == [3 * M, 4 * M, 5 * M]


def test_subquery_with_at_reads_at_fixed_time() -> None:
    """`@` on a subquery fixes its end, whatever the evaluation time."""
    store = _store({_l("x"): [(i * M, i) for i in range(10)]})
    value = evaluate_instant("x[2m:1m] @ 300", store, 9 * M).value
    assert isinstance(value, Matrix)
    assert list(value.series[0].ts) == [4 * M, 5 * M]
    assert list(value.series[0].vs) == [4, 5]


def test_range_query_sorts_series_and_wraps_scalars(store: SeriesStore) -> None:
    """Range results are series sorted by labels; a scalar becomes one series without labels."""
    result = evaluate_range("req{instance='a'}", store, 0, 5 * M, 5 * M).value
    assert isinstance(result, Matrix)
    assert [s.labels for s in result.series] == sorted(s.labels for s in result.series)
    assert [list(s.vs) for s in result.series] == [[1, 10], [3, 30]]
    scalar = evaluate_range("1 + 1", store, 0, 2 * M, M).value
    assert isinstance(scalar, Matrix)
    assert [(s.labels, list(s.ts), list(s.vs)) for s in scalar.series] == [
        ((), [0, M, 2 * M], [2, 2, 2])
    ]


def test_range_query_at_start_and_end(store: SeriesStore) -> None:
    """`@ start()` and `@ end()` read at the range query's bounds at every step."""
    result = evaluate_range("req{job='web'} @ start() + req{job='web'} @ end()", store, 0, 5 * M, M)
    assert isinstance(result.value, Matrix)
    assert list(result.value.series[0].vs) == [33] * 6


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        pytest.param("req[5m]", "range vector", id="matrix"),
        pytest.param("'text'", "string", id="string"),
    ],
)
def test_range_query_refuses_non_instant_types(store: SeriesStore, expr: str, kind: str) -> None:
    """A range query over a range vector or string is a type error, as in Prometheus."""
    with pytest.raises(PromQLError, match=f'invalid expression type "{kind}" for range query'):
        evaluate_range(expr, store, 0, M, M)


def test_string_literal_result() -> None:
    """A top-level string literal evaluates to a String."""
    assert evaluate_instant('"hello"', SeriesStore(), 0).value == String("hello")


def test_topk_order_and_ties() -> None:
    """topk returns descending values; among ties the first series seen wins, as Go's heap does."""
    store = _store({_l("x", i=str(i)): [(0, v)] for i, v in enumerate([5, 7, 7, 1, 9])})
    value = evaluate_instant("topk(3, x)", store, 0).value
    assert isinstance(value, list)
    assert [(s.labels, s.value) for s in value] == [
        (_l("x", i="4"), 9),
        (_l("x", i="1"), 7),
        (_l("x", i="2"), 7),
    ]


def test_min_max_prefer_numbers_over_nan() -> None:
    """min and max ignore NaN unless every input is NaN."""
    store = _store({_l("x", i="1"): [(0, math.nan)], _l("x", i="2"): [(0, 4)]})
    assert _as_dict(evaluate_instant("max(x)", store, 0).value) == {(): 4}
    assert _as_dict(evaluate_instant("min(x)", store, 0).value) == {(): 4}


def test_avg_switches_to_incremental_mean_on_overflow() -> None:
    """avg of huge values does not overflow to Inf."""
    store = _store({_l("x", i=str(i)): [(0, 1e308)] for i in range(3)})
    assert _as_dict(evaluate_instant("avg(x)", store, 0).value) == {(): pytest.approx(1e308)}


def test_count_values_formats_like_go() -> None:
    """count_values renders values as Go's shortest 'f' formatting."""
    store = _store(
        {_l("x", i="1"): [(0, 1e21)], _l("x", i="2"): [(0, 0.5)], _l("x", i="3"): [(0, 2)]}
    )
    got = _as_dict(evaluate_instant("count_values('v', x)", store, 0).value)
    assert set(got) == {_l(v="1000000000000000000000"), _l(v="0.5"), _l(v="2")}


def _fake_functions(monkeypatch: pytest.MonkeyPatch, table: dict[str, Function]) -> None:
    monkeypatch.setattr(Evaluator, "functions", lambda self: table)


def test_timestamp_of_selector_sees_raw_sample_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """timestamp() of a selector receives the samples' own times; other arguments the eval time."""
    seen: list[int] = []

    def timestamp(args: list[Value], ctx: CallContext) -> Value:
        vec = args[0]
        assert isinstance(vec, list)
        seen.extend(s.t_ms for s in vec)
        return [Sample((), s.t_ms / 1000, ctx.t_ms) for s in vec]

    _fake_functions(monkeypatch, {"timestamp": timestamp})
    store = _store({_l("x"): [(10_000, 1)]})
    evaluate_instant("timestamp(x)", store, M)
    evaluate_instant("timestamp(x * 1)", store, M)
    evaluate_instant("timestamp(x @ 90 offset 30s)", store, 10 * M)
    assert seen == [10_000, M, 10_000]


def test_function_results_must_have_unique_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function result with two samples of one label set is refused."""

    def strip(args: list[Value], ctx: CallContext) -> Value:
        vec = args[0]
        assert isinstance(vec, list)
        return [Sample((), s.value, ctx.t_ms) for s in vec]

    _fake_functions(monkeypatch, {"abs": strip})
    with pytest.raises(PromQLError, match="same labelset"):
        evaluate_instant(
            "abs(req)", _store({_l("req", a="1"): [(0, 1)], _l("req", a="2"): [(0, 1)]}), 0
        )


def test_function_receives_matrix_and_expressions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A range argument arrives as a Matrix; arg_exprs carries the parser's nodes."""
    calls: list[tuple[Value, int]] = []

    def probe(args: list[Value], ctx: CallContext) -> Value:
        calls.append((args[0], len(ctx.arg_exprs)))
        return Vector()

    _fake_functions(monkeypatch, {"rate": probe})
    evaluate_instant("rate(req[5m])", _store({_l("req"): [(0, 1)]}), M)
    assert isinstance(calls[0][0], Matrix)
    assert calls[0][1] == 1


def test_plans_are_cached_per_text() -> None:
    """The same query text is parsed and planned once."""
    assert plan_query("sum(rate(x[5m]))") is plan_query("sum(rate(x[5m]))")


def test_case_insensitive_matcher_inside_group() -> None:
    """A selector regex with a mid-pattern (?i) selects as Prometheus does."""
    store = _store({_l("x", g="production"): [(0, 1)], _l("x", g="canary"): [(0, 2)]})
    got = _as_dict(evaluate_instant("x{g=~'((?i)PRO).*'}", store, 0).value)
    assert got == {_l("x", g="production"): 1}


@pytest.mark.parametrize(
    ("expr", "at_ms"),
    [
        pytest.param("x @ 1.5", 1500, id="fractional"),
        pytest.param("x @ -5", -5000, id="negative"),
        pytest.param("(x @ 3)[1m:1m] @ -5.5", -5500, id="negative-subquery-with-inner-at"),
    ],
)
def test_at_timestamps_are_read_exactly(expr: str, at_ms: int) -> None:
    """@ times become milliseconds, including those before 1970 the parser cannot convert."""
    node = plan_query(expr)
    assert getattr(node, "at", None) == at_ms


def test_subquery_over_selector_matches_general_path() -> None:
    """The per-series fast path of `sel[range:step]` equals evaluating the selector per step."""
    store = _store(
        {
            _l("x", i="1"): [(0, 1), (M, 2), (2 * M, STALE_NAN), (3 * M, 4), (9 * M, 5)],
            _l("x", i="2"): [(30_000, 7), (7 * M, 8)],
        }
    )
    for expr in ("x[10m:45s] offset 30s", "x[10m:1m] @ 500", "x[4m:20s]"):
        fast = evaluate_instant(expr, store, 10 * M).value
        general = evaluate_instant(expr.replace("x[", "(x or x)["), store, 10 * M).value
        assert isinstance(fast, Matrix)
        assert isinstance(general, Matrix)
        assert [(s.labels, list(s.ts), list(s.vs)) for s in fast.series] == [
            (s.labels, list(s.ts), list(s.vs)) for s in general.series
        ], expr


@pytest.mark.parametrize(
    "expr",
    [
        "mad_over_time(x[5m])",
        'sum(sort_by_label(x, "a"))',
        "1 + double_exponential_smoothing(x[5m], 0.5, 0.5)",
    ],
    ids=["top-level", "in-aggregation", "in-binary"],
)
def test_experimental_functions_need_the_flag(expr: str) -> None:
    """Experimental functions are refused by default and parse once explicitly allowed."""
    from exporter.promql.parse import allow_experimental_functions, parse_expr

    with pytest.raises(PromQLError, match="is not enabled"):
        parse_expr(expr)
    with allow_experimental_functions():
        parse_expr(expr)
    with pytest.raises(PromQLError, match="is not enabled"):
        evaluate_instant(expr, SeriesStore(), 0)
