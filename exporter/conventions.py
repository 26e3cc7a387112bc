"""Every metric and label name value-exporter emits, in one place (dashboards and docs use them)."""

from __future__ import annotations

PREFIX = "value_exporter_"

# -- series written into the store, as Prometheus writes them --------------------------
UP = "up"
SCRAPE_DURATION = "scrape_duration_seconds"
SCRAPE_SAMPLES_SCRAPED = "scrape_samples_scraped"
SCRAPE_SAMPLES_POST_RELABELING = "scrape_samples_post_metric_relabeling"
SCRAPE_SERIES_ADDED = "scrape_series_added"
ALERTS = "ALERTS"
ALERTS_FOR_STATE = "ALERTS_FOR_STATE"
ALERT_NAME_LABEL = "alertname"
ALERT_STATE_LABEL = "alertstate"

# -- the daemon's own metrics on /metrics --------------------------------------------------
BUILD_INFO = PREFIX + "build_info"
READY = PREFIX + "ready"
SCRAPES = PREFIX + "scrapes_total"
SCRAPE_FAILURES = PREFIX + "scrape_failures_total"
SCRAPE_DURATION_HISTOGRAM = PREFIX + "scrape_duration_seconds"
SCRAPE_ITERATIONS_MISSED = PREFIX + "scrape_iterations_missed_total"
TARGET_UP = PREFIX + "target_up"
RULE_GROUP_ITERATIONS = PREFIX + "rule_group_iterations_total"
RULE_GROUP_ITERATIONS_MISSED = PREFIX + "rule_group_iterations_missed_total"
RULE_GROUP_DURATION = PREFIX + "rule_group_duration_seconds"
RULE_GROUP_LAST_DURATION = PREFIX + "rule_group_last_duration_seconds"
RULE_GROUP_LAST_EVALUATION = PREFIX + "rule_group_last_evaluation_timestamp_seconds"
RULE_GROUP_RULES = PREFIX + "rule_group_rules"
RULE_EVALUATION_FAILURES = PREFIX + "rule_evaluation_failures_total"
STORE_SERIES = PREFIX + "store_series"
STORE_SAMPLES = PREFIX + "store_samples"
CONFIG_LAST_RELOAD_SUCCESSFUL = PREFIX + "config_last_reload_successful"
CONFIG_LAST_RELOAD_SUCCESS_TIME = PREFIX + "config_last_reload_success_timestamp_seconds"

# Label names on the daemon's own metrics.
TARGET_LABEL = "target"
REASON_LABEL = "reason"
RULE_GROUP_LABEL = "rule_group"
RULE_LABEL = "rule"

# Why a scrape failed: the values of the `reason` label, a closed set so alerts can match.
SCRAPE_FAILURE_REASONS = (
    "refused",  # connection refused or reset, DNS failure
    "timeout",  # connect or read timeout, including a slow drip past the scrape timeout
    "tls",  # certificate or handshake failure
    "http_status",  # a status other than 200
    "too_large",  # body over body_size_limit
    "content_type",  # missing or unsupported Content-Type and no fallback protocol
    "parse_error",  # the body is not a valid exposition
    "sample_limit",  # more samples than sample_limit after relabelling
    "label_limit",  # a series over label_limit / label name or value length limits
    "other",
)
