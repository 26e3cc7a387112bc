"""Config and rules → one loaded generation (evaluators, families, keep-list, retention).

A reload builds a new generation beside the running one and `carry_over` moves the running
evaluators' state into it, so the daemon swaps configurations as a whole or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from exporter.config import Config, apply_environment, load_config
from exporter.errors import Problem
from exporter.evaluate import GroupEvaluator
from exporter.export import ExportedFamily
from exporter.improvements import MeasuredBaselines, measured_group_keys
from exporter.promql.analysis import retention_by_name_ms, selected_metric_names
from exporter.rules.generate import generated_groups
from exporter.rules.load import load_rule_files
from exporter.rules.model import RecordingRule, RuleSet
from exporter.slo import SLOEvaluator
from exporter.slo_events import sli_exprs
from exporter.slo_rules import slo_alert_groups
from exporter.store import SeriesStore
from exporter.web_config import WebConfig, load_web_config

log = logging.getLogger("value_exporter")

# Synthetic series every scrape writes; rules may read them even if no family has the name.
SCRAPE_SERIES = frozenset({
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
})


@dataclass
class Loaded:
    """A configuration with its rules: what a reload swaps in as a whole, or not at all."""

    config: Config
    rules: RuleSet
    evaluators: dict[tuple[str, str], GroupEvaluator]
    families: list[ExportedFamily]
    keep_names: frozenset[str] | None
    retention_ms: int
    # SLOs (issue 4): evaluators by SLO name; the alert group (key) whose job runs each first.
    slo_evaluators: dict[str, SLOEvaluator] = field(default_factory=dict)
    slo_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    # Improvements (issue 5): measured baselines, and the generated group (key) of each.
    baselines: MeasuredBaselines | None = None
    baseline_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    # Names read back further than a day (a journey's long window, summed from its hourly
    # series) keep their samples this long on their own; the rest keep `retention_ms`.
    retention_by_name_ms: dict[str, int] = field(default_factory=dict)
    # --web.config.file: TLS and basic auth for the endpoints, reloaded with the rest.
    web: WebConfig = field(default_factory=WebConfig)


def load(config_path: str, web_config_file: str | None, store: SeriesStore) -> Loaded:
    """Read the config, web config and rule files into a new generation (raises UserError)."""
    web = load_web_config(web_config_file)
    config = apply_environment(load_config(config_path))
    for warning in config.warnings:
        log.warning("event=config_warning %s", warning)
    rule_warnings: list[Problem] = []
    rules = load_rule_files(list(config.rule_files), rule_warnings)
    for warning in rule_warnings:
        log.warning("event=rules_warning %s", warning)
    # SLOs (issue 4): each SLO's alert group is scheduled like any rule group, and the SLI's
    # own selectors join the keep-list and the raw-sample retention.
    interval = int(config.evaluation_interval)
    slo_groups = slo_alert_groups(rules.slos, interval, rules.values)
    rules = replace(rules, groups=(*rules.groups, *slo_groups,
                                   *generated_groups(rules, interval)))
    exprs = [rule.expr for group in rules.groups for rule in group.rules]
    exprs += [e for slo in rules.slos for e in sli_exprs(slo, interval)]
    keep = None if config.keep_all_series else selected_metric_names(exprs)
    if keep is not None:
        keep = keep | SCRAPE_SERIES
    evaluators = {
        group.key: GroupEvaluator(
            group, store, external_labels=config.external_labels,
            default_interval_ms=interval, resend_delay_ms=int(config.resend_delay),
            max_samples=config.query_max_samples,
        )
        for group in rules.groups
    }
    families: dict[str, ExportedFamily] = {}
    for group in rules.groups:
        for rule in group.rules:
            if isinstance(rule, RecordingRule) and rule.name not in families:
                families[rule.name] = ExportedFamily(
                    rule.name, f"Recorded by rule group {group.name!r}: {rule.expr}"
                )
    # SLOs (issue 4): one evaluator per SLO, its series exported on /metrics.
    slo_evaluators = {slo.name: SLOEvaluator(slo, store, interval_ms=interval)
                      for slo in rules.slos}
    for slo_evaluator in slo_evaluators.values():
        for name, kind, help_text in slo_evaluator.series_families():
            families.setdefault(name, ExportedFamily(name, help_text, kind))
    slo_group_names = {g.key: slo.name for slo, g in zip(rules.slos, slo_groups, strict=True)}
    retention, longer = retention_by_name_ms(exprs, store.lookback_ms)
    retention += 2 * interval
    return Loaded(config, rules, evaluators, list(families.values()), keep, retention,
                  slo_evaluators, slo_group_names,
                  MeasuredBaselines(rules.improvements, store), measured_group_keys(rules),
                  {name: ms + 2 * interval for name, ms in longer.items()}, web=web)


def carry_over(old: Loaded, new: Loaded) -> None:
    """Move the running generation's state into `new` before it is swapped in."""
    # Groups whose definition did not change keep their evaluator (alert state), but query
    # with the new generation's engine settings (`query_max_samples` may be all that changed).
    for key, evaluator in new.evaluators.items():
        previous = old.evaluators.get(key)
        if previous is not None and previous.group == evaluator.group:
            previous.query = evaluator.query
            new.evaluators[key] = previous
    # SLOs (issue 4): an unchanged SLO keeps its evaluator; a changed one takes over the old
    # buckets through its state (whatever still fits the new definition).
    for slo_name, slo_evaluator in new.slo_evaluators.items():
        before = old.slo_evaluators.get(slo_name)
        if before is None:
            continue
        if before.slo == slo_evaluator.slo and before.interval_ms == slo_evaluator.interval_ms:
            new.slo_evaluators[slo_name] = before
        else:
            slo_evaluator.from_state(before.to_state())
