"""PromQL engine: parse with promql-parser, evaluate over the series store with Prometheus 3 semantics."""
