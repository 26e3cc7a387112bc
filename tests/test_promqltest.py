"""Tests of the promqltest script parser and runner, against a tiny stand-in engine."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from exporter.labels import STALE_NAN, Matcher, is_stale
from exporter.promql.promqltest import RunOptions, almost_equal, run_files, run_script
from exporter.promql.promqltest_parse import (
    HISTOGRAM,
    EvalCmd,
    LoadCmd,
    ScriptError,
    parse_duration,
    parse_number,
    parse_script,
    parse_series_line,
)
from exporter.promql.values import (
    Annotations,
    Matrix,
    PromQLError,
    RangeSeries,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
)
from exporter.store import SeriesStore


@dataclass
class FakeResult:
    """The engine's QueryResult shape."""

    value: Value
    annotations: Annotations = field(default_factory=Annotations)


def _instant_value(expr: str, store: SeriesStore, t_ms: int) -> Value:
    if expr == "boom":
        raise PromQLError("something went wrong")
    if expr.startswith('"'):
        return String(expr.strip('"'))
    number = parse_number(expr)
    if number is not None:
        return Scalar(number)
    if expr.startswith("reversed "):
        vec = _instant_value(expr.removeprefix("reversed "), store, t_ms)
        assert isinstance(vec, list)
        return vec[::-1]
    out: Vector = []
    for s in store.select([Matcher.of("__name__", "=", expr)]):
        got = s.value_at(t_ms)
        if got is not None:
            out.append(Sample(s.labels, got[1], t_ms))
    return out


def fake_instant(expr: str, store: SeriesStore, t_ms: int) -> FakeResult:
    """Selects plain metric names, numbers, strings; `boom` fails."""
    return FakeResult(_instant_value(expr, store, t_ms))


def fake_range(expr: str, store: SeriesStore, start: int, end: int, step: int) -> FakeResult:
    """Steps the fake instant engine over the range."""
    series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}
    for t in range(start, end + 1, step):
        value = _instant_value(expr, store, t)
        samples = [Sample((), value.value, t)] if isinstance(value, Scalar) else value
        assert isinstance(samples, list)
        for s in samples:
            ts, vs = series.setdefault(s.labels, ([], []))
            ts.append(t)
            vs.append(s.value)
    rows = [RangeSeries(k, ts, vs) for k, (ts, vs) in sorted(series.items())]
    return FakeResult(Matrix(rows, start, end))


def run(text: str, **kwargs: object) -> list[tuple[int, bool, str]]:
    """Run a script with the fake engine; (line, passed, message) per eval."""
    results = run_script(text, instant=fake_instant, range_=fake_range, **kwargs)  # type: ignore[arg-type]
    return [(r.line, r.passed, r.message) for r in results]


LOAD = """
load 1m
  metric{a="x"} 1+1x4
  metric{a="y"} 10 _ 30 stale 50
"""

CASES = [
    ("instant vector", 'eval instant at 1m metric\n  metric{a="x"} 2\n  metric{a="y"} 10', True),
    ("wrong value", 'eval instant at 1m metric\n  metric{a="x"} 3\n  metric{a="y"} 10', False),
    ("missing series", 'eval instant at 1m metric\n  metric{a="x"} 2', False),
    (
        "extra expected series",
        'eval instant at 1m metric\n  metric{a="x"} 2\n  metric{a="y"} 10\n  metric{a="z"} 1',
        False,
    ),
    ("stale hides series", 'eval instant at 3m metric\n  metric{a="x"} 4', True),
    (
        "range query",
        'eval range from 0 to 4m step 1m metric\n  metric{a="x"} 1+1x4\n'
        '  metric{a="y"} 10 10 30 _ 50',
        True,
    ),
    (
        "range wrong timestamps",
        'eval range from 0 to 4m step 1m metric\n  metric{a="x"} 1+1x4\n'
        '  metric{a="y"} 10 10 30 50',
        False,
    ),
    ("scalar", "eval instant at 0m 42\n  42", True),
    ("scalar within tolerance", "eval instant at 0m 1.0000001\n  1", True),
    ("scalar beyond tolerance", "eval instant at 0m 1.001\n  1", False),
    ("scalar versus vector", "eval instant at 0m 42\n  {} 42", False),
    ("expect fail", "eval instant at 0m boom\n  expect fail", True),
    ("expect fail msg", "eval instant at 0m boom\n  expect fail msg: something went wrong", True),
    ("expect fail wrong msg", "eval instant at 0m boom\n  expect fail msg: other", False),
    ("expect fail regex", "eval instant at 0m boom\n  expect fail regex: went (wrong|right)", True),
    ("old eval_fail", "eval_fail instant at 0m boom", True),
    (
        "expected_fail_message",
        "eval_fail instant at 0m boom\n  expected_fail_message something went wrong",
        True,
    ),
    ("unexpected failure", "eval instant at 0m boom\n  {} 1", False),
    ("fail expected but none", "eval instant at 0m 1\n  expect fail", False),
    (
        "ordered ok",
        'eval instant at 0m metric\n  expect ordered\n  metric{a="x"} 1\n  metric{a="y"} 10',
        True,
    ),
    (
        "ordered wrong",
        'eval instant at 0m reversed metric\n  expect ordered\n'
        '  metric{a="x"} 1\n  metric{a="y"} 10',
        False,
    ),
    (
        "unordered accepts any order",
        'eval instant at 0m reversed metric\n  metric{a="x"} 1\n  metric{a="y"} 10',
        True,
    ),
    ("string", 'eval instant at 0m "Foo"\n  expect string "Foo"', True),
    ("string backquoted", 'eval instant at 0m "Foo"\n  expect string `Foo`', True),
    ("string mismatch", 'eval instant at 0m "Foo"\n  expect string "Bar"', False),
    ("annotations ignored", "eval instant at 0m 1\n  expect warn\n  1", True),
    ("empty result", "eval instant at 0m nothing", True),
]


@pytest.mark.parametrize(("text", "ok"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_eval_outcomes(text: str, ok: bool) -> None:
    """Each eval passes or fails as upstream's runner would decide."""
    results = run(LOAD + "\n" + text + "\n")
    assert len(results) == 1
    assert results[0][1] is ok, results[0][2]


def test_clear_forgets_data() -> None:
    """`clear` empties the store between loads."""
    results = run(LOAD + "\nclear\n\neval instant at 1m metric\n")
    assert results == [(8, True, "")]


def test_comment_ends_block() -> None:
    """A comment line ends a load block, so a following series line is a parse error."""
    with pytest.raises(ScriptError):
        parse_script("load 1m\n  a 1\n# note\n  b 2\n")


def test_skip_predicate() -> None:
    """Evals the skip predicate selects are not run at all."""
    text = LOAD + "\neval instant at 0m boom\n  {} 1\n"
    results = run_script(
        text, instant=fake_instant, range_=fake_range, skip=lambda c: c.expr == "boom"
    )
    assert results == []


def test_range_mode_check_can_be_disabled() -> None:
    """With the range-mode check off, only the instant query runs."""
    calls: list[str] = []

    def instant(expr: str, store: SeriesStore, t: int) -> FakeResult:
        calls.append("instant")
        return fake_instant(expr, store, t)

    def range_(expr: str, store: SeriesStore, a: int, b: int, c: int) -> FakeResult:
        calls.append("range")
        return fake_range(expr, store, a, b, c)

    text = LOAD + '\neval instant at 1m metric\n  metric{a="x"} 2\n  metric{a="y"} 10\n'
    run_script(text, instant=instant, range_=range_, options=RunOptions(check_range_mode=False))
    assert calls == ["instant"]
    calls.clear()
    run_script(text, instant=instant, range_=range_)
    assert calls == ["instant", "range"]


SERIES = [
    ("plain", "m 1 2 3", [1.0, 2.0, 3.0]),
    ("increasing", "m 1+2x3", [1.0, 3.0, 5.0, 7.0]),
    ("decreasing signed", "m -1-1x2", [-1.0, -2.0, -3.0]),
    ("repeat", "m 5x2", [5.0, 5.0, 5.0]),
    ("blank", "m 1 _ _x2 2", [1.0, None, None, None, 2.0]),
    ("specials", "m Inf -Inf", [math.inf, -math.inf]),
    ("exponent", "m 1e3 1.5e-3", [1000.0, 0.0015]),
    ("histogram", "m {{schema:0 sum:1 count:1}}x1", [HISTOGRAM, HISTOGRAM]),
    ("histogram series", "m {{schema:0 count:1}}+{{count:1}}x2 3", [HISTOGRAM] * 3 + [3.0]),
]


@pytest.mark.parametrize(
    ("line", "want"), [(c[1], c[2]) for c in SERIES], ids=[c[0] for c in SERIES]
)
def test_series_values(line: str, want: list[object]) -> None:
    """Series descriptions expand like promtool's notation."""
    _, points = parse_series_line(line, 1)
    assert points == want


def test_series_stale_and_nan() -> None:
    """`stale` is the stale marker and NaN an ordinary NaN."""
    _, points = parse_series_line("m stale NaN", 1)
    assert isinstance(points[0], float) and is_stale(points[0])
    assert isinstance(points[1], float) and math.isnan(points[1]) and not is_stale(points[1])


LABELS = [
    ("name only", "up 1", (("__name__", "up"),)),
    ("labels", 'up{job="a", i="b"} 1', (("__name__", "up"), ("i", "b"), ("job", "a"))),
    ("no name", '{job="a"} 1', (("job", "a"),)),
    ("empty", "{} 1", ()),
    ("escapes", r'm{a="x\"y\\z\n"} 1', (("__name__", "m"), ("a", 'x"y\\z\n'))),
    ("quoted name", '{"my.metric", a="b"} 1', (("__name__", "my.metric"), ("a", "b"))),
    ("empty value dropped", 'm{a=""} 1', (("__name__", "m"),)),
]


@pytest.mark.parametrize(
    ("line", "want"), [(c[1], c[2]) for c in LABELS], ids=[c[0] for c in LABELS]
)
def test_series_labels(line: str, want: tuple[tuple[str, str], ...]) -> None:
    """Label sets parse into sorted pairs."""
    labels, _ = parse_series_line(line, 1)
    assert labels == want


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("1m", 60_000),
        ("1h30m", 5_400_000),
        ("10s", 10_000),
        ("1d", 86_400_000),
        ("5ms", 5),
    ],
)
def test_durations(text: str, ms: int) -> None:
    """Durations use Prometheus units."""
    assert parse_duration(text) == ms


def test_eval_headers() -> None:
    """Instant and range headers set the query times."""
    cmds = parse_script(
        "load 5m\n  a 1\n\neval instant at 10m a\n  a 1\n\n"
        "eval range from 0 to 10m step 5m a\n  a 1 1 1\n"
    )
    load, inst, rng = cmds
    assert isinstance(load, LoadCmd) and load.interval_ms == 300_000
    assert isinstance(inst, EvalCmd) and inst.eval_ms == 600_000 and not inst.is_range
    assert isinstance(rng, EvalCmd) and (rng.start_ms, rng.end_ms, rng.step_ms) == (
        0,
        600_000,
        300_000,
    )


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1.0, 1.0 + 1e-9, True),
        (1.0, 1.1, False),
        (math.nan, math.nan, True),
        (STALE_NAN, math.nan, False),
        (STALE_NAN, STALE_NAN, True),
        (0.0, 1e-300, False),
        (math.inf, math.inf, True),
    ],
)
def test_almost_equal(a: float, b: float, equal: bool) -> None:
    """Float comparison follows upstream's almost.Equal."""
    assert almost_equal(a, b) is equal


def test_run_files_summary(
    tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_files prints failures and ends with the `N passed, N failed` line."""
    import exporter.promql.promqltest as runner

    monkeypatch.setattr(runner, "_default_engine", lambda: (fake_instant, fake_range))
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    script = tmp_path / "t.test"
    script.write_text(
        LOAD + '\neval instant at 0m metric\n  metric{a="x"} 1\n  metric{a="y"} 10\n\n'
        "eval instant at 0m 1\n  2\n"
    )
    code = run_files([str(script)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[-1] == "1 passed, 1 failed"
    assert "expected scalar 2.0 but got 1.0" in out[0]
