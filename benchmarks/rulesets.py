"""Benchmark rule sets: realistic recording rules over a generated target's families.

Rates, sums by label, error ratios, histogram quantiles, latency SLIs and SLO-style error
budget ratios, each over a family of the target; a rule set of n rules reads the families of a
fixed-seed 5% sample of the target's families, round robin, so the sidecar's scrape filter keeps
about 5% of the series (less for small rule sets on big targets).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import yaml

from benchmarks.generate import Exposition

Rule = tuple[str, str]
Template = Callable[[str, str, str], list[Rule]]
# Multi-window SLO rule sets read the same series over several windows.
WINDOWS = ("5m", "1h", "30m", "1m", "10m", "2h")


def _counter(fam: str, tag: str, w: str) -> list[Rule]:
    c = f"{fam}_total"
    return [
        (f"instance:{tag}_requests:rate{w}", f"sum by (instance) (rate({c}[{w}]))"),
        (f"status:{tag}_requests:rate{w}", f"sum by (status) (rate({c}[{w}]))"),
        (f"{tag}:error_ratio:rate{w}",
         f'sum(rate({c}{{status=~"5.."}}[{w}])) / sum(rate({c}[{w}]))'),
        # SLO style: how fast the 99.9% objective's error budget burns, from the series above.
        (f"{tag}:error_budget_burn:rate{w}", f"{tag}:error_ratio:rate{w} / (1 - 0.999)"),
    ]


def _histogram(fam: str, tag: str, w: str) -> list[Rule]:
    return [
        (f"{tag}:latency_seconds:p99_{w}",
         f"histogram_quantile(0.99, sum by (le) (rate({fam}_bucket[{w}])))"),
        (f"route:{tag}:latency_seconds:p50_{w}",
         f"histogram_quantile(0.5, sum by (le, route) (rate({fam}_bucket[{w}])))"),
        (f"{tag}:fast_ratio:rate{w}",
         f'sum(rate({fam}_bucket{{le="0.25"}}[{w}])) / sum(rate({fam}_count[{w}]))'),
        (f"instance:{tag}:latency_seconds:mean{w}",
         f"sum by (instance) (rate({fam}_sum[{w}])) / sum by (instance) (rate({fam}_count[{w}]))"),
    ]


def _summary(fam: str, tag: str, w: str) -> list[Rule]:
    return [
        (f"instance:{tag}:seconds:mean{w}",
         f"sum by (instance) (rate({fam}_sum[{w}])) / sum by (instance) (rate({fam}_count[{w}]))"),
        (f"{tag}:seconds:max_p99_{w}", f'max(max_over_time({fam}{{quantile="0.99"}}[{w}]))'),
    ]


def _gauge(fam: str, tag: str, w: str) -> list[Rule]:
    return [
        (f"instance:{tag}:max_over_time{w}", f"max by (instance) (max_over_time({fam}[{w}]))"),
        (f"instance:{tag}:avg_over_time{w}", f"sum by (instance) (avg_over_time({fam}[{w}]))"),
    ]


def _template(fam: str, samples: tuple[str, ...]) -> Template | None:
    if "." in fam:
        return None  # quoted UTF-8 names: legal, but rare in rule files
    if samples == (f"{fam}_total",):
        return _counter
    if samples[0].endswith("_bucket"):
        return _histogram
    if len(samples) == 3:
        return _summary
    return _gauge


def rule_set(expo: Exposition, n_rules: int, fraction: float = 0.05, seed: int = 7) -> list[Rule]:
    """`n_rules` recording rules over a `fraction` sample of the exposition's families."""
    rng = random.Random(seed)
    usable = sorted(f for f, s in expo.families.items() if _template(f, s) is not None)
    rng.shuffle(usable)
    wanted = max(1, round(len(expo.families) * fraction))
    rules: list[Rule] = []
    # Round robin over the first `wanted` families, each family's rules window by window;
    # a small target whose sample cannot fill the set lends its next families.
    while len(rules) < n_rules and usable:
        chosen, usable = usable[:wanted], usable[wanted:]
        pending: list[list[Rule]] = []
        for fam in chosen:
            template = _template(fam, expo.families[fam])
            assert template is not None
            tag = f"f{len(rules) + len(pending)}"
            pending.append([r for w in WINDOWS for r in template(fam, tag, w)])
        depth = 0
        while len(rules) < n_rules and any(depth < len(p) for p in pending):
            rules += [p[depth] for p in pending if depth < len(p)]
            depth += 1
    return rules[:n_rules]


def rule_file(rules: list[Rule], interval: str) -> str:
    """A plain Prometheus rules file (one group), which both engines load unchanged."""
    group = {"name": "bench", "interval": interval,
             "rules": [{"record": name, "expr": expr} for name, expr in rules]}
    return yaml.safe_dump({"groups": [group]}, sort_keys=False, width=200)
