"""Benchmark input for the parse stage (scrape -> parse -> store): a realistic exposition.

A fixed seed makes every run parse the same bytes: request counters and latency histograms by
method/route/status/instance, summaries, gauges, a few escaped label values and quoted
UTF-8 metric names, in Prometheus text format 0.0.4.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
STATUSES = ("200", "201", "204", "301", "400", "401", "403", "404", "429", "500", "502", "503")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
QUANTILES = ("0.5", "0.9", "0.99")
SERVICES = ("checkout", "cart", "catalog", "payment", "shipping", "search", "auth", "users")


@dataclass(frozen=True)
class Exposition:
    """The generated text and the sample names of every family, by family."""

    text: str
    series: int
    families: dict[str, tuple[str, ...]]


def _routes(rng: random.Random, n: int) -> list[str]:
    parts = ("api", "v1", "v2", "orders", "items", "users", "{id}", "cart", "search", "health")
    routes: list[str] = []
    while len(routes) < n:
        route = "/" + "/".join(rng.choice(parts) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.05:
            route += '?q="x"\\n'  # some values need escaping: quote, backslash
        if route not in routes:
            routes.append(route)
    return routes


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def generate(series: int = 100_000, seed: int = 42, *, utf8_names: bool = True) -> Exposition:
    """An exposition of about `series` sample lines (never fewer).

    Without utf8_names the cache families get legacy names (same values, same series count).
    """
    rng = random.Random(seed)
    lines: list[str] = []
    families: dict[str, tuple[str, ...]] = {}
    count = 0
    index = 0
    while count < series:
        index += 1
        service = rng.choice(SERVICES)
        instances = sorted({f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                            f":8080" for _ in range(rng.randint(1, 4))})
        routes = _routes(rng, rng.randint(2, 6))
        kind = rng.random()
        if kind < 0.35:
            name = f"{service}_http_requests_{index}_total"
            fam = name[: -len("_total")]
            lines += [f"# HELP {fam} Total HTTP requests.", f"# TYPE {fam} counter"]
            families[fam] = (name,)
            for inst in instances:
                for route in routes:
                    for method in rng.sample(METHODS, 2):
                        for status in rng.sample(STATUSES, 3):
                            lines.append(
                                f'{name}{{instance="{inst}",method="{method}",'
                                f'route="{_esc(route)}",status="{status}"}} {rng.randint(0, 10**7)}'
                            )
                            count += 1
        elif kind < 0.6:
            fam = f"{service}_http_request_duration_{index}_seconds"
            lines += [f"# HELP {fam} Request latency.", f"# TYPE {fam} histogram"]
            families[fam] = (f"{fam}_bucket", f"{fam}_sum", f"{fam}_count")
            for inst in instances:
                for route in routes[:3]:
                    method = rng.choice(METHODS)
                    base = f'instance="{inst}",method="{method}",route="{_esc(route)}"'
                    total = 0
                    for le in BUCKETS:
                        total += rng.randint(0, 500)
                        lines.append(f'{fam}_bucket{{{base},le="{le}"}} {total}')
                    lines.append(f"{fam}_sum{{{base}}} {rng.uniform(0, 1e4):.6f}")
                    lines.append(f"{fam}_count{{{base}}} {total}")
                    count += len(BUCKETS) + 2
        elif kind < 0.75:
            fam = f"{service}_rpc_latency_{index}_seconds"
            lines += [f"# HELP {fam} RPC latency.", f"# TYPE {fam} summary"]
            families[fam] = (fam, f"{fam}_sum", f"{fam}_count")
            for inst in instances:
                base = f'instance="{inst}",service="{service}"'
                for q in QUANTILES:
                    lines.append(f'{fam}{{{base},quantile="{q}"}} {rng.uniform(0, 2):.9g}')
                lines.append(f"{fam}_sum{{{base}}} {rng.uniform(0, 1e5):.3f}")
                lines.append(f"{fam}_count{{{base}}} {rng.randint(0, 10**6)}")
                count += len(QUANTILES) + 2
        elif kind < 0.97:
            fam = f"{service}_queue_depth_{index}"
            lines += [f"# HELP {fam} Items waiting.", f"# TYPE {fam} gauge"]
            families[fam] = (fam,)
            for inst in instances:
                for shard in range(rng.randint(1, 8)):
                    value = rng.randint(0, 999)
                    lines.append(f'{fam}{{instance="{inst}",shard="{shard}"}} {value}')
                    count += 1
        elif utf8_names:
            fam = f"{service}.cache.hits.{index}"  # a UTF-8 name needs quoting
            lines += [f'# HELP "{fam}" Cache hits.', f'# TYPE "{fam}" gauge']
            families[fam] = (fam,)
            for inst in instances:
                value = rng.randint(0, 99)
                lines.append(f'{{"{fam}",instance="{inst}","cache.tier"="l1"}} {value}')
                count += 1
        else:
            fam = f"{service}_cache_hits_{index}"
            lines += [f"# HELP {fam} Cache hits.", f"# TYPE {fam} gauge"]
            families[fam] = (fam,)
            for inst in instances:
                value = rng.randint(0, 99)
                lines.append(f'{fam}{{instance="{inst}",cache_tier="l1"}} {value}')
                count += 1
    return Exposition("\n".join(lines) + "\n", count, families)


def pick_families(expo: Exposition, fraction: float, seed: int = 7) -> set[str]:
    """Sample names of a random `fraction` of the families (what a rule set would read)."""
    rng = random.Random(seed)
    names = sorted(expo.families)
    chosen = rng.sample(names, max(1, round(len(names) * fraction)))
    return {sample for fam in chosen for sample in expo.families[fam]}
