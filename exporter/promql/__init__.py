"""PromQL engine: parse (promql-parser), evaluate over the store with Prometheus 3 semantics."""
