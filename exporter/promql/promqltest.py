"""promqltest runner: loads script data into a store, runs each eval, compares like upstream."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from exporter.labels import Labels, format_labels, is_stale
from exporter.promql import gofloat
from exporter.promql.parse import allow_experimental_functions
from exporter.promql.promqltest_parse import (
    HISTOGRAM,
    ClearCmd,
    EvalCmd,
    ExpectedSeries,
    LoadCmd,
    Point,
    ScriptError,
    parse_script,
)
from exporter.promql.values import (
    Annotations,
    Matrix,
    PromQLError,
    Sample,
    Scalar,
    String,
    Value,
    Vector,
)
from exporter.store import SeriesStore

EPSILON = 1e-6  # Relative error allowed for sample values, as upstream.
_QUERY_CONTEXT_FUNCS = re.compile(r"(start|end|range|step)\(\)")


class QueryResultLike(Protocol):
    """What the engine returns: a value and the annotations raised."""

    @property
    def value(self) -> Value: ...

    @property
    def annotations(self) -> Annotations: ...


InstantFn = Callable[[str, SeriesStore, int], QueryResultLike]
RangeFn = Callable[[str, SeriesStore, int, int, int], QueryResultLike]


@dataclass(frozen=True, slots=True)
class EvalResult:
    """The outcome of one `eval` command."""

    file: str
    line: int
    expr: str
    passed: bool
    message: str = ""


@dataclass(slots=True)
class RunOptions:
    """Which upstream checks to make besides the result itself."""

    # Re-run instant queries as a range query around the eval time, as upstream does.
    check_range_mode: bool = True
    # Check `expect warn|info|no_warn|no_info` (needs an engine that raises annotations).
    check_annotations: bool = False


class EvalFailure(Exception):
    """An eval whose result differs from the expectation."""


def almost_equal(a: float, b: float, epsilon: float = EPSILON) -> bool:
    """Upstream's comparison: relative error, NaN equals NaN, stale equals only stale."""
    if is_stale(a) or is_stale(b):
        return is_stale(a) and is_stale(b)
    return gofloat.almost_equal(a, b, epsilon)


def _default_engine() -> tuple[InstantFn, RangeFn]:
    # Imported late: the engine is a sibling module the runner only needs when it runs.
    mod: Any = importlib.import_module("exporter.promql.engine")

    def instant(expr: str, store: SeriesStore, t_ms: int) -> QueryResultLike:
        result: QueryResultLike = mod.evaluate_instant(expr, store, t_ms)
        return result

    def range_(expr: str, store: SeriesStore, start: int, end: int, step: int) -> QueryResultLike:
        result: QueryResultLike = mod.evaluate_range(expr, store, start, end, step)
        return result

    return instant, range_


class ScriptRunner:
    """Runs the commands of one script against one fresh store."""

    def __init__(
        self,
        instant: InstantFn,
        range_: RangeFn,
        options: RunOptions | None = None,
        skip: Callable[[EvalCmd], bool] | None = None,
    ) -> None:
        self.instant = instant
        self.range = range_
        self.options = options or RunOptions()
        self.skip = skip
        self.store = SeriesStore()

    def run(self, text: str, file: str) -> list[EvalResult]:
        """Every eval's outcome; a script that does not parse is one failed result."""
        try:
            commands = parse_script(text)
        except ScriptError as err:
            return [EvalResult(file, err.line, "", False, f"cannot parse script: {err}")]
        results: list[EvalResult] = []
        for cmd in commands:
            if isinstance(cmd, ClearCmd):
                self.store.clear()
            elif isinstance(cmd, LoadCmd):
                self._load(cmd)
            elif self.skip is None or not self.skip(cmd):
                results.append(self._eval(cmd, file))
        return results

    def _load(self, cmd: LoadCmd) -> None:
        for labels, points in cmd.series:
            for i, p in enumerate(points):
                # Native histogram points are not stored: this project keeps floats only.
                if p is None or isinstance(p, str):
                    continue
                self.store.append(labels, i * cmd.interval_ms, p)

    def _eval(self, cmd: EvalCmd, file: str) -> EvalResult:
        try:
            self._check(cmd)
        except EvalFailure as err:
            return EvalResult(file, cmd.line, cmd.expr, False, str(err))
        return EvalResult(file, cmd.line, cmd.expr, True)

    def _query(
        self, cmd: EvalCmd, ranged: bool, start: int, end: int, step: int
    ) -> QueryResultLike:
        try:
            if ranged:
                return self.range(cmd.expr, self.store, start, end, step)
            return self.instant(cmd.expr, self.store, start)
        except PromQLError:
            raise
        except Exception as err:  # An engine bug must not stop the remaining evals.
            raise EvalFailure(f"internal error: {type(err).__name__}: {err}") from err

    def _check(self, cmd: EvalCmd) -> None:
        start = cmd.start_ms if cmd.is_range else cmd.eval_ms
        try:
            res = self._query(cmd, cmd.is_range, start, cmd.end_ms, cmd.step_ms)
        except PromQLError as err:
            if not cmd.fail:
                raise EvalFailure(f"error evaluating query: {err}") from None
            expected = cmd.kinds("fail")[0]
            if not expected.matches(str(err)):
                raise EvalFailure(
                    f"expected error matching {expected.message or expected.regex!r}, got: {err}"
                ) from None
            return
        if cmd.fail:
            raise EvalFailure("expected error evaluating query but got none")
        if self.options.check_annotations:
            _check_annotations(cmd, res.annotations)
        _compare(cmd, res.value)
        if cmd.is_range or not self.options.check_range_mode:
            return
        self._check_range_mode(cmd, res.value)

    def _check_range_mode(self, cmd: EvalCmd, instant_value: Value) -> None:
        # Upstream re-runs instant queries over [t-1m, t+1m] and compares the middle step.
        if cmd.exclude_from_range_mode or _QUERY_CONTEXT_FUNCS.search(cmd.expr) or cmd.ordered:
            return
        t = cmd.eval_ms
        try:
            res = self._query(cmd, True, t - 60_000, t + 60_000, 60_000)
        except PromQLError as err:
            raise EvalFailure(f"error evaluating query in range mode: {err}") from None
        mat = res.value
        if not isinstance(mat, Matrix):
            raise EvalFailure(f"range mode returned {type(mat).__name__}, not a matrix")
        _assert_sorted(mat)
        vec: Vector = []
        for s in mat.series:
            for ts, v in zip(s.ts, s.vs, strict=True):
                if ts == t:
                    vec.append(Sample(s.labels, v, ts))
                    break
        try:
            if isinstance(instant_value, Scalar):
                if not vec:
                    raise EvalFailure("range mode: no value at the eval time")
                _compare(cmd, Scalar(vec[0].value))
            else:
                _compare(cmd, vec)
        except EvalFailure as err:
            raise EvalFailure(f"range mode: {err}") from None


def _check_annotations(cmd: EvalCmd, annos: Annotations) -> None:
    for kind, texts in (("warn", annos.warnings), ("info", annos.infos)):
        wanted = cmd.kinds(kind)
        if wanted:
            if not texts:
                raise EvalFailure(f"expected {kind} annotations but none were found")
            for e in wanted:
                if not any(e.matches(t) for t in texts):
                    raise EvalFailure(f"no {kind} annotation matches {e.message or e.regex!r}")
            for t in texts:
                if not any(e.matches(t) for e in wanted):
                    raise EvalFailure(f"unexpected {kind} annotation {t!r}")
        if cmd.kinds("no_" + kind) and texts:
            raise EvalFailure(f"unexpected {kind} annotations: {texts}")


def _fmt(v: float) -> str:
    if is_stale(v):
        return "stale"
    return repr(v).replace("inf", "Inf").replace("nan", "NaN")


def _assert_sorted(mat: Matrix) -> None:
    for a, b in zip(mat.series, mat.series[1:], strict=False):
        if a.labels > b.labels:
            raise EvalFailure(
                f"matrix results should always be sorted by labels: {format_labels(b.labels)} "
                f"after {format_labels(a.labels)}"
            )


def _compare(cmd: EvalCmd, value: Value) -> None:
    """Raise EvalFailure unless the value is what the eval expects."""
    expected: dict[Labels, ExpectedSeries] = {e.labels: e for e in cmd.expected}
    scalar = cmd.expected_scalar is not None
    if isinstance(value, Matrix):
        if cmd.ordered:
            raise EvalFailure("expected ordered result, but query returned a matrix")
        if scalar:
            raise EvalFailure("expected scalar result, but got a matrix")
        _assert_sorted(value)
        seen: set[Labels] = set()
        for s in value.series:
            exp = expected.get(s.labels)
            if exp is None:
                raise EvalFailure(
                    f"unexpected metric {format_labels(s.labels)} in result, has "
                    f"{_points(s.ts, s.vs)}"
                )
            seen.add(s.labels)
            _compare_points(cmd, exp, list(s.ts), list(s.vs))
        for labels in expected:
            if labels not in seen:
                raise EvalFailure(f"expected metric {format_labels(labels)} not found")
    elif isinstance(value, list):
        if scalar:
            raise EvalFailure(f"expected scalar result, but got vector of {len(value)} samples")
        seen = set()
        for pos, sample in enumerate(value, start=1):
            exp = expected.get(sample.labels)
            if exp is None:
                raise EvalFailure(
                    f"unexpected metric {format_labels(sample.labels)} in result, has value "
                    f"{_fmt(sample.value)}"
                )
            if cmd.ordered and exp.pos != pos:
                raise EvalFailure(
                    f"expected metric {format_labels(sample.labels)} at position {exp.pos} "
                    f"but was at {pos}"
                )
            want = exp.points[0] if exp.points else None
            if want == HISTOGRAM:
                raise EvalFailure(
                    f"expected a native histogram for {format_labels(sample.labels)} "
                    f"but got float value {_fmt(sample.value)}"
                )
            if not isinstance(want, float) or not almost_equal(want, sample.value):
                raise EvalFailure(
                    f"expected {_point(want)} for {format_labels(sample.labels)} "
                    f"but got {_fmt(sample.value)}"
                )
            seen.add(sample.labels)
        for labels, exp in expected.items():
            if labels not in seen:
                want = _point(exp.points[0])
                raise EvalFailure(f"expected metric {format_labels(labels)} with {want} not found")
    elif isinstance(value, Scalar):
        if not scalar:
            raise EvalFailure(f"expected vector or matrix, but got scalar {_fmt(value.value)}")
        assert cmd.expected_scalar is not None
        if not almost_equal(cmd.expected_scalar, value.value):
            raise EvalFailure(
                f"expected scalar {_fmt(cmd.expected_scalar)} but got {_fmt(value.value)}"
            )
    elif isinstance(value, String):
        if cmd.expected_string != value.value:
            raise EvalFailure(f'expected string "{cmd.expected_string}" but got "{value.value}"')
    else:
        raise EvalFailure(f"unexpected result type {type(value).__name__}")


def _point(p: Point) -> str:
    if p is None:
        return "_"
    if isinstance(p, str):
        return p
    return _fmt(p)


def _points(ts: Sequence[int], vs: Sequence[float]) -> str:
    return "[" + ", ".join(f"{_fmt(v)} @{t}" for t, v in zip(ts, vs, strict=True)) + "]"


def _compare_points(cmd: EvalCmd, exp: ExpectedSeries, ts: list[int], vs: list[float]) -> None:
    want: list[tuple[int, float]] = []
    histograms = 0
    for i, p in enumerate(exp.points):
        t = cmd.start_ms + i * cmd.step_ms
        if t > cmd.end_ms:
            raise EvalFailure(
                f"expected {len(exp.points)} points for {format_labels(exp.labels)}, "
                "but query time range cannot return this many points"
            )
        if p == HISTOGRAM:
            histograms += 1
        elif isinstance(p, float):
            want.append((t, p))
    name = format_labels(exp.labels)
    if histograms:
        raise EvalFailure(f"expected {histograms} native histogram points for {name} (unsupported)")
    if len(want) != len(ts):
        raise EvalFailure(
            f"expected {len(want)} float points for {name}, but got {_points(ts, vs)}"
        )
    for i, ((t_want, v_want), t, v) in enumerate(zip(want, ts, vs, strict=True)):
        if t_want != t:
            raise EvalFailure(
                f"expected float value at index {i} for {name} to have timestamp {t_want}, "
                f"but it had timestamp {t} (result has {_points(ts, vs)})"
            )
        if not almost_equal(v_want, v):
            raise EvalFailure(
                f"expected float value at index {i} (t={t}) for {name} to be {_fmt(v_want)}, "
                f"but got {_fmt(v)} (result has {_points(ts, vs)})"
            )


def run_script(
    text: str,
    file: str = "<script>",
    *,
    instant: InstantFn | None = None,
    range_: RangeFn | None = None,
    options: RunOptions | None = None,
    skip: Callable[[EvalCmd], bool] | None = None,
) -> list[EvalResult]:
    """Run one script's text; the engine defaults to exporter.promql.engine."""
    if instant is None or range_ is None:
        default_instant, default_range = _default_engine()
        instant = instant or default_instant
        range_ = range_ or default_range
    # Prometheus's own runner enables experimental functions, so its scripts may use them.
    with allow_experimental_functions():
        return ScriptRunner(instant, range_, options, skip).run(text, file)


def run_file(path: str | Path, **kwargs: Any) -> list[EvalResult]:
    """Run one script file (keyword arguments as for run_script)."""
    p = Path(path)
    return run_script(p.read_text(encoding="utf-8"), str(p), **kwargs)


def run_files(paths: Sequence[str]) -> int:
    """The `promqltest` command: run scripts, print failures and a summary; 1 if any failed."""
    passed = failed = 0
    for path in paths:
        try:
            results = run_file(path)
        except OSError as err:
            print(f"{path}: cannot read: {err}", file=sys.stderr)
            failed += 1
            continue
        for r in results:
            if r.passed:
                passed += 1
                continue
            failed += 1
            print(f"{r.file}:{r.line}: {r.expr}: {r.message}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
