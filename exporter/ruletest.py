"""`value-exporter test FILE...`: rule unit tests run as `promtool test rules` runs them.

Same file format, same evaluation loop (every group at each evaluation_interval step from 0
to the latest eval_time, input samples loaded up to each step first), same comparisons,
same messages on stderr, `  SUCCESS` / `  FAILED:` lines and exit codes (0 pass, 1 fail).
"""

from __future__ import annotations

import glob
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.alerts import FIRING
from exporter.errors import UserError
from exporter.evaluate import GroupEvaluator, QueryFn, store_query_fn
from exporter.labels import Labels, make_labels
from exporter.promql.promqltest_series import HISTOGRAM, ScriptError, parse_series_line
from exporter.promql.values import PromQLError
from exporter.rules.generate import generated_groups
from exporter.rules.load import load_rule_files
from exporter.rules.model import RuleGroup
from exporter.ruletest_file import (
    AlertTest,
    ExprTest,
    TestGroup,
    UnitTestFile,
    go_duration,
    go_float_e,
    go_labels,
    model_duration,
    read_unit_test_file,
)
from exporter.slo import SLOEvaluator
from exporter.slo_rules import slo_alert_groups
from exporter.store import SeriesStore
from exporter.templates_funcs import go_quote
from exporter.yamlnodes import Problems

# (labels, annotations) of one alert, as promtool compares them.
AlertKey = tuple[Labels, Labels]


def run_rule_tests(paths: Sequence[str]) -> int:
    """Run every unit-test file; print as promtool does; 0 when all pass, else 1."""
    failed = False
    for path in paths:
        errors = run_test_file(path)
        if errors:
            print("  FAILED:", file=sys.stderr)
            for message in errors:
                print(message, file=sys.stderr)
                print()
            failed = True
        else:
            print("  SUCCESS")
        print()
    return 1 if failed else 0


def run_test_file(path: str) -> list[str]:
    """The failure messages of one unit-test file (empty when every test passes)."""
    problems = Problems(path)
    spec = read_unit_test_file(path, problems)
    if spec is None:
        return [str(p) for p in problems.in_file_order()]
    rule_files = _resolve_rule_files(os.path.dirname(path), spec.rule_files)
    order: dict[str, int] = {}
    for i, name in enumerate(spec.group_eval_order):
        if name in order:
            return [f"group name repeated in evaluation order: {name}"]
        order[name] = i
    errors: list[str] = []
    for test in spec.tests:
        errors.extend(_run_group(test, spec, rule_files, order))
    return errors


def _resolve_rule_files(base: str, patterns: Sequence[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        full = pattern if not pattern or os.path.isabs(pattern) else os.path.join(base, pattern)
        matches = sorted(glob.glob(full))
        if not matches:
            print("  WARNING: no file match pattern", full, file=sys.stderr)
        found.extend(matches)
    return found


@dataclass
class _Loader:
    """promqltest's lazy loader: input samples appended up to each evaluation time."""

    store: SeriesStore
    pending: list[tuple[Labels, list[tuple[int, float]]]]

    def load_until(self, t_ms: int) -> None:
        for labels, samples in self.pending:
            taken = 0
            for ts, value in samples:
                if ts > t_ms:
                    break
                self.store.append(labels, ts, value)
                taken += 1
            del samples[:taken]


def _loader(test: TestGroup, store: SeriesStore) -> _Loader:
    pending: dict[Labels, list[tuple[int, float]]] = {}
    for i, item in enumerate(test.input_series):
        try:
            labels, points = parse_series_line(f"{item.series} {item.values}", i + 2)
        except ScriptError as exc:
            raise _Abort(f"error in input_series {item.series!r}: {exc}") from None
        samples: list[tuple[int, float]] = []
        for k, point in enumerate(points):
            if point is None:
                continue
            if point == HISTOGRAM or isinstance(point, str):
                raise _Abort(f"native histograms are not supported: {item.series}")
            samples.append((k * test.interval_ms, point))
        pending[labels] = samples  # a repeated series replaces the earlier one, as upstream
    return _Loader(store, list(pending.items()))


class _Abort(Exception):
    """An error that ends a test group before its comparisons."""


def _ordered_groups(groups: Sequence[RuleGroup], order: dict[str, int]) -> list[RuleGroup]:
    # Unlisted groups sort as 0, like promtool; file order breaks ties (promtool's is random).
    return sorted(groups, key=lambda g: order.get(g.name, 0))


def _run_group(test: TestGroup, spec: UnitTestFile, rule_files: list[str],
               order: dict[str, int]) -> list[str]:
    store = SeriesStore()
    try:
        loader = _loader(test, store)
    except _Abort as exc:
        return [str(exc)]
    try:
        ruleset = load_rule_files(rule_files)
    except UserError as exc:
        return exc.lines()
    interval = spec.evaluation_interval_ms
    # Subqueries without a step use the evaluation interval, as promtool's engine does.
    query_fn = store_query_fn(store, subquery_step_ms=interval)
    # -- SLOs (issue 4): each SLO's evaluator runs first at every step, its alert group
    # joins the other groups, so unit tests see fresh SLO series in the SLO alert rules.
    slo_evaluators = [SLOEvaluator(slo, store, interval_ms=interval, query_fn=query_fn)
                      for slo in ruleset.slos]
    groups = (*ruleset.groups, *slo_alert_groups(ruleset.slos, interval, ruleset.values),
              *generated_groups(ruleset, interval))
    # -- end SLOs ------------------------------------------------------------------------
    evaluators = [
        GroupEvaluator(g, store, external_labels=test.external_labels,
                       external_url=test.external_url, default_interval_ms=test.interval_ms,
                       query_fn=query_fn)
        for g in _ordered_groups(groups, order)
    ]
    for alert_test in test.alert_tests:
        if not alert_test.alertname:
            where = f" (in TestGroup {test.name})" if test.name else ""
            return [f"an item under alert_rule_test misses required attribute alertname "
                    f"at eval_time {model_duration(alert_test.eval_time_ms)}{where}"]
    by_time: dict[int, list[AlertTest]] = {}
    for alert_test in test.alert_tests:
        by_time.setdefault(alert_test.eval_time_ms, []).append(alert_test)
    alert_times = sorted(by_time)
    errors: list[str] = []
    current = 0
    max_t = test.max_eval_time_ms()
    for ts in range(0, max_t + 1, interval):
        loader.load_until(ts)
        eval_errors: list[str] = []
        for slo_ev in slo_evaluators:  # SLOs (issue 4)
            slo_result = slo_ev.evaluate(ts)
            if slo_result.error:
                eval_errors.append(f"    slo: {slo_ev.slo.name}, time: {go_duration(ts)}, "
                                   f"err: {slo_result.error}")
        for ev in evaluators:
            ev.evaluate(ts)
            for status in ev.statuses:
                if status.last_error:
                    eval_errors.append(f"    rule: {status.rule.name}, time: "
                                       f"{go_duration(ts)}, err: {status.last_error}")
        errors.extend(eval_errors)
        if eval_errors:
            return errors
        while current < len(alert_times) and ts <= alert_times[current] < ts + interval:
            t = alert_times[current]
            errors.extend(_check_alerts(test, by_time[t], evaluators, spec.fuzzy_compare))
            current += 1
    for expr_test in test.expr_tests:
        errors.extend(_check_expr(expr_test, query_fn, spec.fuzzy_compare))
    return errors


def _alert_key(labels: dict[str, str], annotations: dict[str, str]) -> AlertKey:
    # labels.FromMap keeps empty values, so an expected "" label can never match.
    return tuple(sorted(labels.items())), tuple(sorted(annotations.items()))


def _check_alerts(test: TestGroup, cases: list[AlertTest], evaluators: list[GroupEvaluator],
                  fuzzy: bool) -> list[str]:
    names = {c.alertname for c in cases}
    got: dict[str, list[AlertKey]] = {}
    for ev in evaluators:
        for state in ev.alert_states:
            if state is None or state.rule.name not in names:
                continue
            got.setdefault(state.rule.name, []).extend(
                (a.labels, a.annotations) for a in state.active_alerts() if a.state == FIRING
            )
    errors: list[str] = []
    for case in cases:
        got_alerts = sorted(got.get(case.alertname, []))
        exp_alerts = sorted(
            _alert_key({**a.labels, "alertname": case.alertname}, a.annotations)
            for a in case.exp_alerts
        )
        if exp_alerts == got_alerts:
            continue
        name = f"    name: {test.name},\n" if test.name else ""
        indent = "            "
        errors.append(
            f"{name}    alertname: {case.alertname}, time: {model_duration(case.eval_time_ms)}, "
            f"\n        exp:{_indent(_alerts_text(exp_alerts), indent)}, "
            f"\n        got:{_indent(_alerts_text(got_alerts), indent)}"
        )
    return errors


def _alerts_text(alerts: list[AlertKey]) -> str:
    if not alerts:
        return "[]"
    parts = []
    for i, (labels, notes) in enumerate(alerts):
        body = f"\nLabels:{go_labels(labels)}\nAnnotations:{go_labels(notes)}"
        parts.append(f"{i}:" + _indent(body, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"


def _indent(text: str, indent: str) -> str:
    return ("\n" + indent).join(text.split("\n"))


def _floats_equal(a: float, b: float, fuzzy: bool) -> bool:
    # go-cmp compares floats with ==, so an expected NaN never matches.
    if a == b:
        return True
    return fuzzy and (math.nextafter(a, -math.inf) == b or math.nextafter(a, math.inf) == b)


def _check_expr(case: ExprTest, query_fn: QueryFn, fuzzy: bool) -> list[str]:
    head = f"    expr: {go_quote(case.expr)}, time: {model_duration(case.eval_time_ms)}"
    try:
        got = query_fn(case.expr, case.eval_time_ms)
    except PromQLError as exc:
        return [f"{head}, err: {exc}"]
    got_samples = sorted((s.labels, s.value) for s in got)
    exp_samples: list[tuple[Labels, float]] = []
    for sample in case.exp_samples:
        try:
            labels = _parse_metric(sample.labels)
        except ScriptError as exc:
            return [f"{head}, err: labels {go_quote(sample.labels)}: {exc}"]
        if sample.histogram:
            return [f"{head}, err: labels {go_quote(sample.labels)}: "
                    "native histograms are not supported"]
        exp_samples.append((labels, sample.value))
    exp_samples.sort(key=lambda s: s[0])
    got_samples.sort(key=lambda s: s[0])
    same = len(exp_samples) == len(got_samples) and all(
        e[0] == g[0] and _floats_equal(e[1], g[1], fuzzy)
        for e, g in zip(exp_samples, got_samples, strict=True)
    )
    if same:
        return []
    return [f"{head},\n        exp: {_samples_text(exp_samples)}\n"
            f"        got: {_samples_text(got_samples)}"]


def _parse_metric(text: str) -> Labels:
    labels, points = parse_series_line(text, 1)
    if points:
        raise ScriptError(1, f"unexpected values after the metric in {text!r}")
    return make_labels(labels)


def _samples_text(samples: list[tuple[Labels, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{go_labels(labels)} {go_float_e(value)}" for labels, value in samples)
