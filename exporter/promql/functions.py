"""The PromQL function table the evaluator calls: `FUNCTIONS[name](args, ctx)`."""

from __future__ import annotations

from exporter.promql.functions_common import Function
from exporter.promql.functions_labels import LABEL_FUNCTIONS
from exporter.promql.functions_math import MATH_FUNCTIONS
from exporter.promql.functions_range import RANGE_FUNCTIONS
from exporter.promql.histogram import HISTOGRAM_FUNCTIONS

__all__ = ["EXPERIMENTAL", "FUNCTIONS", "Function"]

FUNCTIONS: dict[str, Function] = {
    **MATH_FUNCTIONS,
    **RANGE_FUNCTIONS,
    **LABEL_FUNCTIONS,
    **HISTOGRAM_FUNCTIONS,
}

# Functions Prometheus 3.5 only parses with --enable-feature=promql-experimental-functions.
# They are implemented here; the engine decides whether to accept them.
EXPERIMENTAL: frozenset[str] = frozenset(
    {
        "double_exponential_smoothing",
        "mad_over_time",
        "sort_by_label",
        "sort_by_label_desc",
        "ts_of_last_over_time",
        "ts_of_max_over_time",
        "ts_of_min_over_time",
    }
)
