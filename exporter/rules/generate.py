"""Generated rule groups: the business-value sections as recording rules, for every engine.

The daemon, `value-exporter test` and `compile` all take the groups a rule set generates
from here, so the sidecar and Prometheus evaluate the same PromQL. The groups follow the
file's own groups and the SLO groups.
"""

from __future__ import annotations

from exporter.journeys import journey_and_improvement_groups
from exporter.rules.model import RuleGroup, RuleSet
from exporter.value import value_groups
from exporter.value_alerts import value_alert_groups


def generated_groups(ruleset: RuleSet, interval_ms: int,
                     file: str | None = None) -> list[RuleGroup]:
    """Groups generated from `parameters`, `value` (recording, then threshold alerts),
    `journeys` and `improvements` (all files,
    or only those defined in `file`), in a stable order."""
    return [*value_groups(ruleset, interval_ms, file),
            *value_alert_groups(ruleset, interval_ms, file),
            *journey_and_improvement_groups(ruleset, file)]
