"""Unit tests of the PromQL function table, called directly with evaluated arguments."""

from __future__ import annotations

import math

import promql_parser
import pytest

from exporter.labels import Labels
from exporter.promql.functions import EXPERIMENTAL, FUNCTIONS
from exporter.promql.histogram import bucket_fraction, bucket_quantile
from exporter.promql.values import (
    Annotations,
    CallContext,
    Matrix,
    PromQLError,
    RangeSeries,
    Sample,
    Scalar,
    String,
    Value,
)

T = 600_000  # Evaluation time of every call: 10m.
FOO: Labels = (("__name__", "foo"), ("job", "a"))
BAR: Labels = (("__name__", "bar"), ("job", "b"))


def ctx(*exprs: str) -> CallContext:
    """A call context at time T with the given argument expressions."""
    return CallContext(T, [promql_parser.parse(e) for e in exprs], Annotations())


def window(*points: tuple[int, float], labels: Labels = FOO, start: int = T - 300_000) -> Matrix:
    """A one-series range vector over (start, T] from (seconds, value) points."""
    return Matrix(
        [RangeSeries(labels, [s * 1000 for s, _ in points], [v for _, v in points])], start, T
    )


def vec(*values: float, labels: Labels = FOO) -> list[Sample]:
    """An instant vector of samples sharing a label set except a distinguishing `i` label."""
    return [Sample((*labels, ("i", str(i))), v, T) for i, v in enumerate(values)]


def call(name: str, *args: Value, c: CallContext | None = None) -> Value:
    """Call a function from the table."""
    return FUNCTIONS[name](list(args), c or ctx())


def values(result: Value) -> list[float]:
    """The sample values of a vector result."""
    assert isinstance(result, list)
    return [s.value for s in result]


def same(a: float, b: float) -> bool:
    """Equal within 1e-9 relative, NaN equal to NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


# A counter sampled every 60s within a 5m window ending at T=600s.
COUNTER = ((360, 10.0), (420, 20.0), (480, 30.0), (540, 40.0), (600, 50.0))

RANGE_CASES = [
    ("rate extrapolates to the window start", "rate", COUNTER, 50 / 300),
    ("increase", "increase", COUNTER, 50.0),
    ("delta gauge", "delta", ((360, 10.0), (600, 4.0)), -7.5),
    (
        "rate counter reset",
        "increase",
        ((360, 10.0), (420, 20.0), (480, 5.0), (540, 15.0), (600, 25.0)),
        35 * 300 / 240,
    ),
    (
        "rate zero-point clamp",
        "increase",
        ((360, 1.0), (420, 11.0), (480, 21.0), (540, 31.0), (600, 41.0)),
        41.0,
    ),
    ("rate half-interval extrapolation", "increase", ((420, 1.0), (480, 2.0), (600, 4.0)), 3.75),
    ("rate needs two samples", "rate", ((600, 1.0),), None),
    ("irate", "irate", COUNTER, 10 / 60),
    ("irate after reset", "irate", ((540, 40.0), (600, 5.0)), 5 / 60),
    ("idelta", "idelta", ((540, 40.0), (600, 35.0)), -5.0),
    ("deriv", "deriv", ((540, 1.0), (570, 2.0), (600, 3.0)), 1 / 30),
    ("resets", "resets", ((360, 3.0), (420, 1.0), (480, 2.0), (540, 0.0)), 2.0),
    ("changes", "changes", ((360, 1.0), (420, 1.0), (480, 2.0), (540, math.nan)), 2.0),
    ("avg_over_time", "avg_over_time", ((360, 1.0), (420, 2.0), (480, 6.0)), 3.0),
    ("sum_over_time kahan", "sum_over_time", ((1, 1e100), (2, 1.0), (3, -1e100)), 1.0),
    ("count_over_time", "count_over_time", COUNTER, 5.0),
    ("min_over_time", "min_over_time", ((1, 3.0), (2, 1.0), (3, 2.0)), 1.0),
    ("max_over_time NaN first", "max_over_time", ((1, math.nan), (2, 1.0), (3, 2.0)), 2.0),
    (
        "stddev_over_time",
        "stddev_over_time",
        ((1, 2.0), (2, 4.0), (3, 4.0), (4, 4.0), (5, 5.0), (6, 5.0), (7, 7.0), (8, 9.0)),
        2.0,
    ),
    ("stdvar_over_time", "stdvar_over_time", ((1, 1.0), (2, 3.0)), 1.0),
    ("last_over_time", "last_over_time", COUNTER, 50.0),
    ("present_over_time", "present_over_time", COUNTER, 1.0),
    ("mad_over_time", "mad_over_time", ((1, 1.0), (2, 2.0), (3, 4.0)), 1.0),
    ("ts_of_max_over_time", "ts_of_max_over_time", ((1, 5.0), (2, 1.0), (3, 5.0)), 3.0),
]


@pytest.mark.parametrize(
    ("name", "points", "want"), [c[1:] for c in RANGE_CASES], ids=[c[0] for c in RANGE_CASES]
)
def test_range_functions(
    name: str, points: tuple[tuple[int, float], ...], want: float | None
) -> None:
    """Range functions compute upstream's value (or nothing) for one series."""
    got = values(call(name, window(*points)))
    if want is None:
        assert got == []
    else:
        assert len(got) == 1 and same(got[0], want), got


def test_range_functions_drop_name_except_last_over_time() -> None:
    """Range functions drop `__name__`; last_over_time keeps it like an offset."""
    m = window(*COUNTER)
    rate = call("rate", m)
    last = call("last_over_time", m)
    assert isinstance(rate, list) and rate[0].labels == (("job", "a"),)
    assert isinstance(last, list) and last[0].labels == FOO


def test_duplicate_labelsets_fail() -> None:
    """Two series equal but for their name collide once the name is dropped."""
    m = window(*COUNTER)
    m.series.append(
        RangeSeries((("__name__", "other"), ("job", "a")), m.series[0].ts, m.series[0].vs)
    )
    with pytest.raises(PromQLError, match="same labelset"):
        call("rate", m)


def test_quantile_and_predict_linear() -> None:
    """quantile_over_time takes q first; predict_linear regresses around the eval time."""
    assert values(
        call("quantile_over_time", Scalar(0.5), window((1, 1.0), (2, 2.0), (3, 10.0)))
    ) == [2.0]
    got = values(call("predict_linear", window((540, 1.0), (600, 2.0)), Scalar(60)))
    assert same(got[0], 3.0)


MATH_CASES = [
    ("abs", [-2.0], [], [2.0]),
    ("ceil", [1.2], [], [2.0]),
    ("floor", [-1.2], [], [-2.0]),
    ("sqrt of negative", [-1.0], [], [math.nan]),
    ("ln of zero", [0.0], [], [-math.inf]),
    ("log2", [8.0], [], [3.0]),
    ("log10 of negative", [-1.0], [], [math.nan]),
    ("exp overflow", [1000.0], [], [math.inf]),
    ("sgn", [-3.0, 0.0, 2.0], [], [-1.0, 0.0, 1.0]),
    ("round ties up", [2.5, -2.5], [], [3.0, -2.0]),
    ("round to nearest", [7.0], [Scalar(5)], [5.0]),
    ("clamp", [0.0, 5.0, 10.0], [Scalar(1), Scalar(6)], [1.0, 5.0, 6.0]),
    ("clamp min above max", [1.0], [Scalar(6), Scalar(1)], []),
    ("clamp_min", [0.0, 5.0], [Scalar(2)], [2.0, 5.0]),
    ("clamp_max", [0.0, 5.0], [Scalar(2)], [0.0, 2.0]),
    ("sin of infinity", [math.inf], [], [math.nan]),
    ("asin out of domain", [2.0], [], [math.nan]),
    ("atanh of one", [1.0], [], [math.inf]),
    ("deg", [math.pi], [], [180.0]),
    ("rad", [180.0], [], [math.pi]),
]


@pytest.mark.parametrize(
    ("name", "inputs", "extra", "want"),
    [(c[0].split(" ")[0], *c[1:]) for c in MATH_CASES],
    ids=[c[0] for c in MATH_CASES],
)
def test_math_functions(
    name: str, inputs: list[float], extra: list[Value], want: list[float]
) -> None:
    """Value functions follow Go's math (NaN and ±Inf instead of exceptions)."""
    result = FUNCTIONS[name]([vec(*inputs), *extra], ctx())
    got = values(result)
    assert len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True)), got
    assert all(dict(s.labels).get("__name__") is None for s in result)  # type: ignore[union-attr]


DATE_CASES = [
    ("year", 1_700_000_000.0, 2023.0),
    ("month", 1_700_000_000.0, 11.0),
    ("day_of_month", 1_700_000_000.0, 14.0),
    ("day_of_week", 1_700_000_000.0, 2.0),
    ("day_of_year", 1_700_000_000.0, 318.0),
    ("hour", 1_700_000_000.0, 22.0),
    ("minute", 1_700_000_000.0, 13.0),
    ("days_in_month", 951_782_400.0, 29.0),  # 2000-02-29: a leap year.
    ("year", -1.0, 1969.0),
]


@pytest.mark.parametrize(
    ("name", "seconds", "want"), DATE_CASES, ids=[f"{c[0]}-{c[1]:.0f}" for c in DATE_CASES]
)
def test_date_functions(name: str, seconds: float, want: float) -> None:
    """Date functions read a vector of Unix seconds in UTC."""
    assert values(call(name, vec(seconds))) == [want]


def test_date_functions_default_to_eval_time() -> None:
    """Without an argument, date functions use the evaluation time."""
    assert values(call("minute")) == [10.0]


def test_time_vector_scalar() -> None:
    """time() and pi() are scalars; vector() wraps one; scalar() needs exactly one sample."""
    assert call("time") == Scalar(600.0)
    assert call("pi") == Scalar(math.pi)
    assert values(call("vector", Scalar(3))) == [3.0]
    assert call("scalar", vec(4.0)) == Scalar(4.0)
    result = call("scalar", vec(1.0, 2.0))
    assert isinstance(result, Scalar) and math.isnan(result.value)


def test_timestamp_uses_sample_time() -> None:
    """timestamp() reports each sample's own time in seconds."""
    assert values(call("timestamp", [Sample(FOO, 1.0, 42_000)])) == [42.0]


SORT_CASES = [
    ("sort", [3.0, math.nan, 1.0, 2.0], [1.0, 2.0, 3.0, math.nan]),
    ("sort_desc", [3.0, math.nan, 1.0, 2.0], [3.0, 2.0, 1.0, math.nan]),
]


@pytest.mark.parametrize(("name", "inputs", "want"), SORT_CASES, ids=[c[0] for c in SORT_CASES])
def test_sort(name: str, inputs: list[float], want: list[float]) -> None:
    """sort and sort_desc order by value with NaN last."""
    got = values(call(name, vec(*inputs)))
    assert all(same(g, w) for g, w in zip(got, want, strict=True))


def test_sort_by_label_natural_order() -> None:
    """sort_by_label compares digit runs numerically."""
    samples = [Sample((("i", v),), 0.0, T) for v in ("10", "9", "a")]
    result = call("sort_by_label", samples, String("i"))
    assert isinstance(result, list)
    assert [s.labels[0][1] for s in result] == ["9", "10", "a"]


ABSENT_CASES = [
    ("equality matchers", 'foo{job="a", env="b"}', (("env", "b"), ("job", "a"))),
    ("regex matcher ignored", 'foo{job=~"a.*"}', ()),
    ("repeated name dropped", 'foo{job="a", job="b"}', ()),
    ("not a selector", "sum(foo)", ()),
]


@pytest.mark.parametrize(
    ("expr", "want"), [c[1:] for c in ABSENT_CASES], ids=[c[0] for c in ABSENT_CASES]
)
def test_absent_labels(expr: str, want: Labels) -> None:
    """absent() takes its labels from the selector's single equality matchers."""
    result = call("absent", [], c=ctx(expr))
    assert isinstance(result, list) and result[0].labels == want and result[0].value == 1.0
    assert call("absent", vec(1.0), c=ctx(expr)) == []


def test_absent_over_time() -> None:
    """absent_over_time() returns 1 only when no series has samples in the window."""
    empty = Matrix([], T - 60_000, T)
    result = call("absent_over_time", empty, c=ctx('foo{job="a"}[1m]'))
    assert isinstance(result, list) and result[0].labels == (("job", "a"),)
    assert call("absent_over_time", window(*COUNTER), c=ctx("foo[5m]")) == []


LABEL_REPLACE_CASES = [
    ("group reference", "dst", "x-$1", "job", "(.*)", "x-a"),
    ("braced reference", "dst", "${1}b", "job", "(.*)", "ab"),
    ("name run swallows letters", "dst", "$1b", "job", "(.*)", ""),
    ("no match keeps labels", "dst", "x", "job", "zzz", None),
    ("empty value removes", "job", "", "job", ".*", ""),
]


@pytest.mark.parametrize(
    ("dst", "repl", "src", "regex", "want"),
    [c[1:] for c in LABEL_REPLACE_CASES],
    ids=[c[0] for c in LABEL_REPLACE_CASES],
)
def test_label_replace(dst: str, repl: str, src: str, regex: str, want: str | None) -> None:
    """label_replace expands Go templates on a full match only."""
    result = call(
        "label_replace",
        [Sample(FOO, 1.0, T)],
        String(dst),
        String(repl),
        String(src),
        String(regex),
    )
    assert isinstance(result, list)
    if want is None:
        assert result[0].labels == FOO
    else:
        assert dict(result[0].labels).get(dst, "") == want


def test_label_replace_errors() -> None:
    """Bad regexes, bad destination names and colliding results fail."""
    args = [String("dst"), String("x"), String("job"), String("(")]
    with pytest.raises(PromQLError, match="invalid regular expression"):
        call("label_replace", vec(1.0), *args)
    with pytest.raises(PromQLError, match="invalid destination label name"):
        call("label_replace", vec(1.0), String(""), String("x"), String("job"), String(".*"))
    with pytest.raises(PromQLError, match="same labelset"):
        call("label_replace", vec(1.0, 2.0), String("i"), String(""), String(""), String(""))


def test_label_join() -> None:
    """label_join joins source values, missing ones as empty strings."""
    result = call(
        "label_join",
        [Sample(FOO, 1.0, T)],
        String("d"),
        String("-"),
        String("job"),
        String("x"),
        String("__name__"),
    )
    assert isinstance(result, list)
    assert dict(result[0].labels)["d"] == "a--foo"


def _buckets(*pairs: tuple[float, float]) -> list[tuple[float, float]]:
    return list(pairs)


HQ_CASES = [
    ("interpolates", 0.5, _buckets((1, 10), (2, 20), (math.inf, 20)), 1.0),
    ("highest bucket gives second highest bound", 0.99, _buckets((1, 10), (math.inf, 20)), 1.0),
    ("needs +Inf", 0.5, _buckets((1, 10), (2, 20)), math.nan),
    ("no observations", 0.5, _buckets((1, 0), (math.inf, 0)), math.nan),
    ("q below zero", -1, _buckets((1, 10), (math.inf, 10)), -math.inf),
    ("q above one", 2, _buckets((1, 10), (math.inf, 10)), math.inf),
    ("negative lowest bound", 0.1, _buckets((-1, 10), (0, 20), (math.inf, 30)), -1.0),
    ("monotonicity forced", 0.75, _buckets((1, 10), (2, 8), (3, 20), (math.inf, 20)), 2.5),
]


@pytest.mark.parametrize(
    ("q", "buckets", "want"), [c[1:] for c in HQ_CASES], ids=[c[0] for c in HQ_CASES]
)
def test_bucket_quantile(q: float, buckets: list[tuple[float, float]], want: float) -> None:
    """Classic histogram quantiles follow quantile.go's special cases."""
    assert same(bucket_quantile(q, buckets)[0], want)


def test_bucket_fraction() -> None:
    """histogram_fraction interpolates within classic buckets."""
    assert same(bucket_fraction(1, 2, _buckets((1, 10), (2, 20), (math.inf, 20))), 0.5)
    assert bucket_fraction(2, 1, _buckets((1, 10), (math.inf, 20))) == 0.0


def test_histogram_quantile_groups_by_labels_without_le() -> None:
    """Buckets group by all labels but `le`; the result drops the name."""
    samples = [
        Sample((("__name__", "h_bucket"), ("job", "a"), ("le", le)), v, T)
        for le, v in (("1", 10.0), ("2", 20.0), ("+Inf", 20.0))
    ]
    result = call("histogram_quantile", Scalar(0.5), samples)
    assert isinstance(result, list)
    assert [(s.labels, s.value) for s in result] == [((("job", "a"),), 1.0)]


def test_experimental_functions_are_listed() -> None:
    """Every function marked experimental is in the table."""
    assert set(FUNCTIONS) >= EXPERIMENTAL


def test_double_exponential_smoothing_validates_factors() -> None:
    """Smoothing and trend factors must lie strictly between 0 and 1."""
    with pytest.raises(PromQLError, match="invalid smoothing factor"):
        call("double_exponential_smoothing", window(*COUNTER), Scalar(1), Scalar(0.5))
    got = values(call("double_exponential_smoothing", window(*COUNTER), Scalar(0.5), Scalar(0.5)))
    assert same(got[0], 50.0)
