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
# Alertmanager notifier (issue 6): Prometheus's prometheus_notifications_* with our prefix.
NOTIFICATIONS_SENT = PREFIX + "notifications_sent_total"
NOTIFICATIONS_ERRORS = PREFIX + "notifications_errors_total"
NOTIFICATIONS_DROPPED = PREFIX + "notifications_dropped_total"  # queue overflow, or all failed
NOTIFICATIONS_QUEUE_LENGTH = PREFIX + "notifications_queue_length"
NOTIFICATIONS_QUEUE_CAPACITY = PREFIX + "notifications_queue_capacity"
NOTIFICATIONS_ALERTMANAGERS = PREFIX + "notifications_alertmanagers_discovered"
NOTIFICATION_LATENCY = PREFIX + "notification_latency_seconds"
# Web endpoints (--web.config.file): refused credentials and failed TLS handshakes, by reason.
HTTP_AUTH_FAILURES = PREFIX + "http_auth_failures_total"
HTTP_TLS_HANDSHAKE_FAILURES = PREFIX + "http_tls_handshake_failures_total"

# Label names on the daemon's own metrics.
TARGET_LABEL = "target"
REASON_LABEL = "reason"
RULE_GROUP_LABEL = "rule_group"
RULE_LABEL = "rule"
ALERTMANAGER_LABEL = "alertmanager"  # the alerts endpoint URL

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

# -- service level objectives ------------------------------------------------------------------
# Every SLO series carries these labels (plus the SLO's group_by labels and its own labels).
SLO_LABEL = "slo"
SERVICE_LABEL = "service"


def slo_error_ratio(window: str) -> str:
    """Bad/total events over one alert window (`5m`, `1h`, `3d`): slo:sli_error:ratio_rate5m."""
    return f"slo:sli_error:ratio_rate{window}"


def slo_burn_rate(window: str) -> str:
    """Error ratio over one alert window divided by the error budget: slo:burn_rate:ratio_rate1h."""
    return f"slo:burn_rate:ratio_rate{window}"


SLO_ERROR_RATIO_PERIOD = "slo:sli_error:ratio_period"  # bad/total over the whole SLO window
SLO_SLI_PERIOD = "slo:sli:ratio_period"  # good/total over the whole SLO window
SLO_BURN_RATE_PERIOD = "slo:burn_rate:ratio_period"  # period error ratio / error budget
SLO_OBJECTIVE = "slo:objective:ratio"
SLO_ERROR_BUDGET = "slo:error_budget:ratio"  # 1 - objective
SLO_BUDGET_REMAINING = "slo:error_budget_remaining:ratio"  # 1 - used share; below 0 = overspent
SLO_BUDGET_REMAINING_EVENTS = "slo:error_budget_remaining:events"
SLO_BUDGET_EXHAUSTED_IN = "slo:error_budget_exhausted_in:seconds"  # at the current burn rate
SLO_PERIOD_START = "slo:period_start:timestamp_seconds"  # start of the current SLO window
SLO_PERIOD_LENGTH = "slo:period_length:seconds"  # the SLO window's length (calendar: this period's)
SLO_EVENTS = "slo:events:total"  # monotonic, for summing sidecars in Prometheus
SLO_GOOD_EVENTS = "slo:good_events:total"
SLO_INFO = "slo:info"  # 1, with owner, window, budgeting and objective as labels
SLO_DATA_GAP = PREFIX + "slo_data_gap_seconds_total"  # sidecar downtime inside SLO windows
SLO_SERIES_DROPPED = PREFIX + "slo_series_dropped_total"  # group_by values over series_limit

# -- business value ----------------------------------------------------------------------------
# `{cur}` is the lower-case ISO-4217 currency, `{w}` the window part (`1h` or `_window`).
VALUE_GROUP = "value:metrics"  # the rule group value metrics are recorded in
VALUE_INFO = "value:info"  # 1 per value metric, with metric, owner and unit labels
PARAMETER_PREFIX = "parameter:"  # metric-backed parameters: parameter:<name>
DOWNTIME_RATIO = "slo:downtime:ratio_interval"  # each interval's share of bad events
REVENUE_AT_RISK = ("slo:revenue_at_risk_{cur}:increase1h", "slo:revenue_at_risk_{cur}:period")
VALUE_DELIVERED = ("slo:value_delivered_{cur}:increase1h", "slo:value_delivered_{cur}:period")
BUDGET_VALUE = "slo:error_budget_remaining_{cur}:period"
DOWNTIME_COST = "slo:downtime_cost_{cur}:increase1h"

JOURNEY_ATTEMPTS = "journey:stage_attempts:increase{w}"
JOURNEY_SUCCESSES = "journey:stage_successes:increase{w}"
JOURNEY_STAGE_SUCCESS = "journey:stage_success:ratio_{w}"
JOURNEY_STAGE_DROPOFF = "journey:stage_dropoff:ratio_{w}"
JOURNEY_STAGE_VALUE = "journey:stage_value_realized_{cur}:increase{w}"
JOURNEY_CONVERSION = "journey:conversion:ratio_{w}"
JOURNEY_VALUE = "journey:value_realized_{cur}:increase{w}"
JOURNEY_STAGE_INFO = "journey:stage:info"
JOURNEY_STAGE_SLO_INFO = "journey:stage_slo:info"  # which SLOs sit behind a customer step

IMPROVEMENT_LABEL = "improvement"
IMPROVEMENT_CURRENT = "improvement:current:value"
IMPROVEMENT_BASELINE = "improvement:baseline:value"
IMPROVEMENT_BASELINE_PERSISTED = "improvement:baseline_persisted:value"
IMPROVEMENT_TARGET = "improvement:target:value"
IMPROVEMENT_PROGRESS = "improvement:progress:ratio"
IMPROVEMENT_PROGRESS_EXPECTED = "improvement:progress_expected:ratio"
IMPROVEMENT_ON_TRACK = "improvement:on_track:bool"
IMPROVEMENT_DAYS_LEFT = "improvement:days_left:days"
IMPROVEMENT_INFO = "improvement:info"
