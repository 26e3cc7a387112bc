"""Conformance: Prometheus's own promqltest scripts run through our runner and engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.promql.promqltest import EvalResult, run_file
from exporter.promql.promqltest_parse import EvalCmd, parse_script
from tests.shared_data import require_shared

# Files whose subject value-exporter implements.
IN_SCOPE = (
    "aggregators.test",
    "at_modifier.test",
    "collision.test",
    "functions.test",
    "histograms.test",
    "literals.test",
    "operators.test",
    "range_queries.test",
    "selectors.test",
    "staleness.test",
    "subquery.test",
    "trig_functions.test",
)

# Files skipped whole, with the reason.
OUT_OF_SCOPE = {
    "native_histograms.test": "native histograms are out of scope",
    "info.test": "the experimental info() function is out of scope",
    "fill-modifier.test": "binary operator fill modifiers are newer than Prometheus 3.5",
    "extended_vectors.test": "extended range selectors (anchored/smoothed) are newer than 3.5",
    "duration_expression.test": "duration expressions are experimental",
    "type_and_unit.test": "type-and-unit labels are experimental",
    "start_timestamps.test": "start timestamps (@st) are newer than Prometheus 3.5",
    "limit.test": "limitk/limit_ratio are optional for value-exporter",
    "name_label_dropping.test": "expectations assume delayed __name__ removal (optional)",
}

PASS_BAR = 0.95

# Reasons for skipping single evals of in-scope files. Only genuinely out-of-scope evals
# belong here, never engine bugs.
NATIVE = "native histogram data"
NHCB = "reads the native histogram (NHCB) series that load_with_nhcb adds"
NEWER = "function added after Prometheus 3.5"
POST35_NAN_PARAM = "error for a NaN k on an empty vector was added after 3.5 (44ee5e2ad6)"
POST35_FILTER_CARDINALITY = "cardinality check of filter ops was added after 3.5 (4cad87cae8)"
POST35_FRACTION_FIRST_BUCKET = (
    "classic histogram_fraction in the first bucket changed after 3.5 (0f5f1955e5); 3.5 gives NaN"
)
POST35_MAD_NAN = "mad_over_time (experimental in 3.5) NaN handling changed after 3.5"
LIMIT_RATIO = "limit_ratio is optional (limit.test scope)"
PARSER_BYTE_ESCAPE = (
    "promql_parser reads \\xNN escapes as code points, so invalid UTF-8 names cannot occur"
)

# (file, line of the eval, start of its expression, reason)
SKIPS: list[tuple[str, int, str, str]] = [
    ("aggregators.test", 422, "topk(NaN, non_existent)", POST35_NAN_PARAM),
    ("aggregators.test", 425, "limitk(NaN, non_existent)", POST35_NAN_PARAM),
    ("aggregators.test", 428, "limit_ratio(NaN, non_existent)", LIMIT_RATIO),
    ("aggregators.test", 447, 'count_values("version", version)', NATIVE),
    ("aggregators.test", 453, 'count_values(((("version"))), version)', NATIVE),
    ("aggregators.test", 459, 'count_values without (instance)("version", version)', NATIVE),
    ("aggregators.test", 467, 'count_values without (instance)("job", version)', NATIVE),
    ("aggregators.test", 474, 'count_values by (job, group)("job", version)', NATIVE),
    ("aggregators.test", 481, 'count_values("a\\xc5z", version)', PARSER_BYTE_ESCAPE),
    ("aggregators.test", 573, "group without(point)(data)", NATIVE),
    ("at_modifier.test", 265, 'first_over_time({__name__="up"}[1h:1m] @ 1111111)', NEWER),
    ("functions.test", 47, "resets(http_requests_histogram[6m])", NATIVE),
    ("functions.test", 52, "resets(http_requests_histogram[60m])", NATIVE),
    ("functions.test", 92, "changes(http_requests_histogram[6m])", NATIVE),
    ("functions.test", 97, "changes(http_requests_histogram[60m])", NATIVE),
    ("functions.test", 245, 'irate(http_requests_histogram{path="/a"}[20m])', NATIVE),
    ("functions.test", 249, 'irate(http_requests_histogram{path="/b"}[20m])', NATIVE),
    ("functions.test", 256, 'irate(http_requests_histogram{path="/c"}[20m])', NATIVE),
    ("functions.test", 260, 'irate(http_requests_histogram{path="/d"}[20m])', NATIVE),
    ("functions.test", 264, 'irate(http_requests_histogram{path="/e"}[20m])', NATIVE),
    ("functions.test", 267, 'irate(http_requests_histogram{path="/f"}[20m])', NATIVE),
    ("functions.test", 271, 'irate(http_requests_histogram{path="/g"}[20m])', NATIVE),
    ("functions.test", 290, "delta(http_requests_gauge[20m])", NATIVE),
    ("functions.test", 295, "delta(http_requests_counter[20m])", NATIVE),
    ("functions.test", 300, "delta(http_requests_mix[20m])", NATIVE),
    ("functions.test", 328, 'idelta(http_requests_histogram{path="/a"}[20m])', NATIVE),
    ("functions.test", 332, 'idelta(http_requests_histogram{path="/b"}[20m])', NATIVE),
    ("functions.test", 339, 'idelta(http_requests_histogram{path="/c"}[20m])', NATIVE),
    ("functions.test", 343, 'idelta(http_requests_histogram{path="/d"}[20m])', NATIVE),
    ("functions.test", 347, 'idelta(http_requests_histogram{path="/e"}[20m])', NATIVE),
    ("functions.test", 353, 'idelta(http_requests_histogram{path="/g"}[20m])', NATIVE),
    (
        "functions.test",
        523,
        'label_replace(testmetric, "\\xff", "", "src", "(.*)")',
        PARSER_BYTE_ESCAPE,
    ),
    ("functions.test", 551, "timestamp(metric)", NATIVE),
    ("functions.test", 660, "clamp(mixed_metric, 2, 5)", NATIVE),
    ("functions.test", 663, "clamp_min(mixed_metric, 2)", NATIVE),
    ("functions.test", 666, "clamp_max(mixed_metric, 2)", NATIVE),
    ("functions.test", 1061, "sum_over_time(metric12[1m])", NATIVE),
    ("functions.test", 1065, "avg_over_time(metric12[1m])", NATIVE),
    ("functions.test", 1070, "sum_over_time(metric13[1m])", NATIVE),
    ("functions.test", 1073, "avg_over_time(metric13[1m])", NATIVE),
    ("functions.test", 1076, "sum_over_time(metric13[1m])/count_over_time(metric13[1m])", NATIVE),
    ("functions.test", 1307, "mad_over_time(metric_nan[40s])", POST35_MAD_NAN),
    (
        "functions.test",
        1343,
        'ts_of_last_over_time(metric_histogram{type="only_histogram"}',
        NATIVE,
    ),
    ("functions.test", 1356, "ts_of_first_over_time(metric[90s])", NEWER),
    ("functions.test", 1359, "ts_of_first_over_time(metric[90s])", NEWER),
    ("functions.test", 1362, "ts_of_first_over_time(metric[90s])", NEWER),
    ("functions.test", 1365, 'ts_of_first_over_time(metric_histogram{type="only_histogram"', NEWER),
    ("functions.test", 1368, 'ts_of_first_over_time(metric_histogram{type="mix"}[90s])', NEWER),
    (
        "functions.test",
        1625,
        'last_over_time({__name__=~"data(_histogram|_sparse|_empty)?"',
        NATIVE,
    ),
    ("functions.test", 1637, 'first_over_time({__name__=~"data(_histogram|_sparse|_empty)?', NEWER),
    (
        "functions.test",
        1649,
        'count_over_time({__name__=~"data(_histogram|_sparse|_empty)?',
        NATIVE,
    ),
    ("functions.test", 1750, "absent(http_requests_histogram)", NATIVE),
    ("functions.test", 1752, "absent(sum(http_requests_histogram))", NATIVE),
    ("functions.test", 1845, "absent_over_time(http_requests_histogram[5m])", NATIVE),
    ("functions.test", 1847, "absent_over_time(rate(http_requests_histogram[5m])[5m:1m])", NATIVE),
    ("functions.test", 2020, "round(mixed_metric)", NATIVE),
    ("functions.test", 2081, "step()", NEWER),
    ("functions.test", 2084, "step()", NEWER),
    ("functions.test", 2087, "step()", NEWER),
    ("functions.test", 2091, "range()", NEWER),
    ("functions.test", 2094, "range()", NEWER),
    ("functions.test", 2097, "range()", NEWER),
    ("functions.test", 2101, "step()", NEWER),
    ("functions.test", 2105, "range()", NEWER),
    ("functions.test", 2108, "range()", NEWER),
    ("functions.test", 2112, "vector(step())", NEWER),
    ("functions.test", 2115, "vector(range())", NEWER),
    ("functions.test", 2122, "metric * step()", NEWER),
    ("functions.test", 2125, "metric + range()", NEWER),
    ("functions.test", 2129, "step()", NEWER),
    ("functions.test", 2133, "range()", NEWER),
    ("functions.test", 2140, "start()", NEWER),
    ("functions.test", 2143, "start()", NEWER),
    ("functions.test", 2146, "start()", NEWER),
    ("functions.test", 2150, "end()", NEWER),
    ("functions.test", 2153, "end()", NEWER),
    ("functions.test", 2156, "end()", NEWER),
    ("functions.test", 2160, "start()", NEWER),
    ("functions.test", 2163, "start()", NEWER),
    ("functions.test", 2167, "end()", NEWER),
    ("functions.test", 2170, "end()", NEWER),
    ("functions.test", 2174, "vector(start())", NEWER),
    ("functions.test", 2177, "vector(end())", NEWER),
    ("functions.test", 2181, "start()", NEWER),
    ("functions.test", 2184, "end()", NEWER),
    ("functions.test", 2188, "end() - start()", NEWER),
    ("functions.test", 2191, "(end() + start()) / 2", NEWER),
    ("functions.test", 2195, "start() + range()", NEWER),
    ("functions.test", 2198, "end() - range()", NEWER),
    ("functions.test", 2221, "min_of(3, 5)", NEWER),
    ("functions.test", 2224, "min_of(5, 3)", NEWER),
    ("functions.test", 2227, "max_of(3, 5)", NEWER),
    ("functions.test", 2230, "max_of(5, 3)", NEWER),
    ("functions.test", 2234, "min_of(4, 4)", NEWER),
    ("functions.test", 2237, "max_of(4, 4)", NEWER),
    ("functions.test", 2241, "min_of(-2, -5)", NEWER),
    ("functions.test", 2244, "max_of(-2, -5)", NEWER),
    ("functions.test", 2248, "min_of(0, 1)", NEWER),
    ("functions.test", 2251, "max_of(0, 1)", NEWER),
    ("functions.test", 2255, "min_of(NaN, 3)", NEWER),
    ("functions.test", 2258, "min_of(3, NaN)", NEWER),
    ("functions.test", 2261, "max_of(NaN, 3)", NEWER),
    ("functions.test", 2264, "max_of(3, NaN)", NEWER),
    ("histograms.test", 72, "histogram_count(testhistogram3)", NHCB),
    ("histograms.test", 84, "histogram_sum(testhistogram3)", NHCB),
    ("histograms.test", 96, "histogram_avg(testhistogram3)", NHCB),
    ("histograms.test", 102, "histogram_stddev(testhistogram3)", NHCB),
    ("histograms.test", 108, "histogram_stdvar(testhistogram3)", NHCB),
    ("histograms.test", 115, "histogram_fraction(0, 4, testhistogram2)", NHCB),
    ("histograms.test", 123, "histogram_fraction(0, 6, testhistogram2)", NHCB),
    ("histograms.test", 131, "histogram_fraction(0, 3.5, testhistogram2)", NHCB),
    ("histograms.test", 140, "histogram_fraction(0, 0.2, testhistogram3)", NHCB),
    ("histograms.test", 150, "histogram_fraction(0, 0.2, rate(testhistogram3[10m]))", NHCB),
    (
        "histograms.test",
        172,
        "histogram_fraction(0, 1.5, positive_buckets_lower_falls_in_t",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 176, "histogram_fraction(0, 1.5, positive_buckets_lower_falls_in_t", NHCB),
    (
        "histograms.test",
        191,
        "histogram_fraction(-4, -2, negative_buckets_lower_falls_in_t",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 195, "histogram_fraction(-4, -2, negative_buckets_lower_falls_in_t", NHCB),
    ("histograms.test", 215, "histogram_fraction(-Inf, -1.5, lower_is_negative_Inf)", NHCB),
    ("histograms.test", 232, "histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upp", NHCB),
    ("histograms.test", 249, "histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upp", NHCB),
    ("histograms.test", 267, "histogram_fraction(4, 5, lower_and_upper_fall_in_last_bucket", NHCB),
    ("histograms.test", 285, "histogram_fraction(0, 1, lower_and_upper_fall_in_last_bucket", NHCB),
    ("histograms.test", 304, "histogram_fraction(2, 5, upper_falls_in_last_bucket)", NHCB),
    ("histograms.test", 322, "histogram_fraction(400, +Inf, upper_is_positive_Inf)", NHCB),
    ("histograms.test", 339, "histogram_fraction(2, 2, lower_equals_upper)", NHCB),
    ("histograms.test", 354, "histogram_fraction(3, 2, lower_greater_than_upper)", NHCB),
    (
        "histograms.test",
        365,
        "histogram_fraction(0, 1, single_bucket_bucket)",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 369, "histogram_fraction(0, 1, single_bucket)", NHCB),
    ("histograms.test", 384, "histogram_fraction(0, 5, all_zero_counts)", NHCB),
    ("histograms.test", 403, "histogram_fraction(2, 3.5, lower_exactly_on_bucket_boundary)", NHCB),
    (
        "histograms.test",
        418,
        "histogram_fraction(0.5, 2, upper_exactly_on_bucket_boundary_",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 422, "histogram_fraction(0.5, 2, upper_exactly_on_bucket_boundary)", NHCB),
    ("histograms.test", 441, "histogram_fraction(1, 3, both_bounds_exactly_on_bucket_bound", NHCB),
    (
        "histograms.test",
        455,
        "histogram_fraction(0.1, 0.75, fractional_bucket_bounds_bucke",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 459, "histogram_fraction(0.1, 0.75, fractional_bucket_bounds)", NHCB),
    ("histograms.test", 479, "histogram_fraction(-1, 1, range_crosses_zero)", NHCB),
    ("histograms.test", 492, "histogram_fraction(NaN, 1, lower_is_NaN)", NHCB),
    ("histograms.test", 505, "histogram_fraction(0, NaN, upper_is_NaN)", NHCB),
    (
        "histograms.test",
        515,
        "histogram_fraction(-10, -5, range_entirely_below_all_buckets",
        POST35_FRACTION_FIRST_BUCKET,
    ),
    ("histograms.test", 519, "histogram_fraction(-10, -5, range_entirely_below_all_buckets", NHCB),
    ("histograms.test", 533, "histogram_fraction(5, 10, range_entirely_above_all_buckets)", NHCB),
    ("histograms.test", 551, "histogram_quantile(0, testhistogram3)", NHCB),
    ("histograms.test", 561, "histogram_quantile(0.25, testhistogram3)", NHCB),
    ("histograms.test", 571, "histogram_quantile(0.5, testhistogram3)", NHCB),
    ("histograms.test", 581, "histogram_quantile(0.75, testhistogram3)", NHCB),
    ("histograms.test", 591, "histogram_quantile(1, testhistogram3)", NHCB),
    ("histograms.test", 601, 'histogram_quantiles(testhistogram3, "q", 0, 0.25, 0.5, 0.75,', NEWER),
    ("histograms.test", 614, 'histogram_quantiles(testhistogram3_bucket, "q", 0, 0.25, 0.5', NEWER),
    ("histograms.test", 637, "histogram_quantile(-0.1, testhistogram)", NHCB),
    ("histograms.test", 647, 'histogram_quantiles(testhistogram, "q", -0.1)', NEWER),
    ("histograms.test", 652, 'histogram_quantiles(testhistogram_bucket, "q", -0.1)', NEWER),
    ("histograms.test", 659, "histogram_quantile(1.01, testhistogram)", NHCB),
    ("histograms.test", 669, 'histogram_quantiles(testhistogram, "q", 1.01)', NEWER),
    ("histograms.test", 674, 'histogram_quantiles(testhistogram_bucket, "q", 1.01)', NEWER),
    ("histograms.test", 681, "histogram_quantile(NaN, testhistogram)", NHCB),
    ("histograms.test", 691, 'histogram_quantiles(testhistogram, "q", NaN)', NEWER),
    ("histograms.test", 696, 'histogram_quantiles(testhistogram_bucket, "q", NaN)', NEWER),
    ("histograms.test", 704, 'histogram_quantiles(non_existent, "q", NaN)', NEWER),
    ("histograms.test", 709, "histogram_quantile(0, testhistogram)", NHCB),
    ("histograms.test", 721, "histogram_quantile(1, testhistogram)", NHCB),
    ("histograms.test", 733, "histogram_quantile(0.2, testhistogram)", NHCB),
    ("histograms.test", 743, "histogram_quantile(0.5, testhistogram)", NHCB),
    ("histograms.test", 753, "histogram_quantile(0.8, testhistogram)", NHCB),
    ("histograms.test", 764, "histogram_quantile(0.2, rate(testhistogram[10m]))", NHCB),
    ("histograms.test", 774, "histogram_quantile(0.5, rate(testhistogram[10m]))", NHCB),
    ("histograms.test", 784, "histogram_quantile(0.8, rate(testhistogram[10m]))", NHCB),
    ("histograms.test", 796, "histogram_quantile(1./6., testhistogram2)", NHCB),
    ("histograms.test", 804, "histogram_quantile(0.5, testhistogram2)", NHCB),
    ("histograms.test", 812, "histogram_quantile(5./6., testhistogram2)", NHCB),
    ("histograms.test", 820, "histogram_quantile(1./6., rate(testhistogram2[15m]))", NHCB),
    ("histograms.test", 828, "histogram_quantile(0.5, rate(testhistogram2[15m]))", NHCB),
    ("histograms.test", 836, "histogram_quantile(5./6., rate(testhistogram2[15m]))", NHCB),
    ("histograms.test", 847, "histogram_quantile(0.3, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 855, "histogram_quantile(0.5, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 865, "histogram_quantile(0.3, avg(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 873, "histogram_quantile(0.5, avg(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 883, "histogram_quantile(0.3, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 893, "histogram_quantile(0.5, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 904, "histogram_quantile(0.3, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 914, "histogram_quantile(0.5, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 925, "histogram_quantile(0.3, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 939, "histogram_quantile(0.5, sum(rate(request_duration_seconds[10", NHCB),
    ("histograms.test", 954, "histogram_quantile(0.3, rate(request_duration_seconds[10m]))", NHCB),
    ("histograms.test", 968, "histogram_quantile(0.5, rate(request_duration_seconds[10m]))", NHCB),
    ("histograms.test", 983, "sum(request_duration_seconds)", NATIVE),
    (
        "histograms.test",
        987,
        'sum(request_duration_seconds{job="job1",instance="ins1"} + i',
        NATIVE,
    ),
    ("histograms.test", 991, "avg(request_duration_seconds)", NATIVE),
    ("histograms.test", 1008, "count(request_duration_seconds)", NHCB),
    (
        "histograms.test",
        1037,
        'histogram_quantiles(nonmonotonic_bucket, "q", 0.01, 0.5, 0.9',
        NEWER,
    ),
    ("histograms.test", 1048, "histogram_quantile(0.5, rate(mixed[10m]))", NHCB),
    ("histograms.test", 1081, 'histogram_quantile(0.99, {__name__=~"request_duration_second', NHCB),
    ("histograms.test", 1102, "rate(const_histogram[5m])", NATIVE),
    ("histograms.test", 1110, "histogram_quantile(1.0, sum(rate(const_histogram[5m])))", NHCB),
    ("histograms.test", 1120, "sum_over_time(histogram_over_time[4m:1m])", NATIVE),
    ("histograms.test", 1123, "avg_over_time(histogram_over_time[4m:1m])", NATIVE),
    ("histograms.test", 1134, "increase(histogram_with_reset[15m])", NATIVE),
    ("histograms.test", 1137, "resets(histogram_with_reset[15m])", NHCB),
    ("histograms.test", 1140, "histogram_count(increase(histogram_with_reset[15m]))", NHCB),
    ("histograms.test", 1143, "histogram_sum(increase(histogram_with_reset[15m]))", NHCB),
    ("histograms.test", 1158, "histogram_quantile(0.8, series)", NATIVE),
    ("histograms.test", 1163, 'histogram_quantiles(series, "q", 0.1, 0.2)', NEWER),
    ("histograms.test", 1168, "histogram_fraction(-Inf, 1, series)", NATIVE),
    ("histograms.test", 1184, 'histogram_quantiles(series, "q", 0.1, 0.2)', NEWER),
    ("histograms.test", 1205, 'histogram_quantiles(series, "q", 0.1, 0.2)', NEWER),
    ("histograms.test", 1223, "histogram_quantile(0.8, series)", NATIVE),
    ("histograms.test", 1228, 'histogram_quantiles(series, "q", 0.1, 0.2)', NEWER),
    ("histograms.test", 1233, "histogram_fraction(-Inf, 1, series)", NATIVE),
    ("operators.test", 312, "http_requests_histogram == http_requests_histogram", NATIVE),
    ("operators.test", 329, "many_side > on(job) one_side", POST35_FILTER_CARDINALITY),
    ("operators.test", 333, "many_side >= on(job) one_side", POST35_FILTER_CARDINALITY),
    ("operators.test", 564, "left_histograms == right_histograms", NATIVE),
    ("operators.test", 568, "left_histograms == bool right_histograms", NATIVE),
    ("operators.test", 588, "left_histograms != right_histograms", NATIVE),
    ("operators.test", 592, "left_histograms != bool right_histograms", NATIVE),
    ("operators.test", 969, "(testhistogram) and on() (vector(1) == 1)", NATIVE),
    ("operators.test", 973, "(testhistogram) and on() (vector(1) == 1)", NATIVE),
    ("range_queries.test", 93, "some_metric[2m]", NATIVE),
    ("subquery.test", 146, "increase(native_histogram[10m:3m])", NATIVE),
    ("subquery.test", 151, "increase(native_histogram[10m:15s])", NATIVE),
]

_SKIP_INDEX = {(f, line): reason for f, line, _expr, reason in SKIPS}


def _conformance_dir() -> Path:
    return require_shared(
        "conformance/promql",
        "Prometheus's PromQL test scripts",
        "prometheus/prometheus promql/promqltest/testdata",
    )


@pytest.fixture(scope="module")
def results() -> dict[str, list[EvalResult]]:
    """Every in-scope file's eval results, with the skip list applied."""
    folder = _conformance_dir()
    out: dict[str, list[EvalResult]] = {}
    for name in IN_SCOPE:

        def skip(cmd: EvalCmd, name: str = name) -> bool:
            return (name, cmd.line) in _SKIP_INDEX

        out[name] = run_file(folder / name, skip=skip)
    return out


def test_every_file_is_classified() -> None:
    """Each upstream script is either in scope or skipped whole with a reason."""
    names = {p.name for p in _conformance_dir().glob("*.test")}
    assert names == set(IN_SCOPE) | set(OUT_OF_SCOPE)


def test_pass_rate(results: dict[str, list[EvalResult]]) -> None:
    """At least 95% of the in-scope evals not on the skip list pass."""
    total_passed = total = 0
    print()
    print(f"{'file':24} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for name, res in results.items():
        passed = sum(r.passed for r in res)
        skipped = sum(1 for f, _line in _SKIP_INDEX if f == name)
        print(f"{name:24} {passed:7} {len(res) - passed:7} {skipped:8}")
        for r in res:
            if not r.passed:
                print(f"    {name}:{r.line}: {r.expr}: {r.message[:200]}")
        total_passed += passed
        total += len(res)
    rate = total_passed / total
    print(f"{'total':24} {total_passed:7} {total - total_passed:7} {len(SKIPS):8}  ({rate:.1%})")
    for name, reason in sorted(OUT_OF_SCOPE.items()):
        print(f"skipped whole: {name}: {reason}")
    assert rate >= PASS_BAR, f"{total_passed}/{total} evals pass, below {PASS_BAR:.0%}"


def test_skip_list_entries_exist() -> None:
    """Every skip-list entry names an eval that still exists with that expression."""
    folder = _conformance_dir()
    evals: dict[tuple[str, int], str] = {}
    for name in IN_SCOPE:
        for cmd in parse_script((folder / name).read_text(encoding="utf-8")):
            if isinstance(cmd, EvalCmd):
                evals[(name, cmd.line)] = cmd.expr
    stale = [
        (f, line, expr)
        for f, line, expr, _reason in SKIPS
        if not evals.get((f, line), "\0").startswith(expr)
    ]
    assert not stale, f"skip-list entries that no longer match an eval: {stale}"
    assert len(_SKIP_INDEX) == len(SKIPS), "duplicate skip-list entries"
