"""Demo shop model: what one interval of shop traffic adds to every counter (no I/O, no clock)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Outcomes spread evenly over time in random mode: a name for the running tally and the index
# of the first weight that belongs to the rare outcome (see RandomSampler.split).
Even = tuple[str, int]
# A sample is keyed by its exposed sample name and its label pairs (spec order, no `le` for
# non-bucket samples), so the deterministic driver can treat all counters as one flat vector.
LabelPairs = tuple[tuple[str, str], ...]
SampleKey = tuple[str, LabelPairs]
Counts = dict[SampleKey, float]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
)
# The first bucket above the latency SLO's 0.3 s bound, as an index into per-bucket weights.
SLOW_BUCKET_INDEX = LATENCY_BUCKETS.index(0.3) + 1
RESTORE_BUCKETS: tuple[float, ...] = (
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
)

# Cumulative fraction of observations at or below each bucket bound. Binary fractions keep the
# deterministic rates exact in floating point. Calm, 1/64 of checkouts take longer than 0.3 s,
# a third of the latency SLO's 5 % budget; the burst profile pushes checkout and payment far
# over it (3/8).
LATENCY_PROFILES: dict[str, tuple[float, ...]] = {
    "fast": (1 / 8, 1 / 4, 1 / 2, 3 / 4, 7 / 8, 63 / 64, 127 / 128, 255 / 256, 1, 1, 1, 1),
    "slow": (0, 1 / 64, 1 / 16, 1 / 8, 3 / 8, 7 / 8, 63 / 64, 127 / 128, 255 / 256, 511 / 512,
             1, 1),
    "degraded": (0, 0, 1 / 64, 1 / 32, 1 / 8, 1 / 2, 5 / 8, 3 / 4, 7 / 8, 15 / 16, 31 / 32, 1),
}
RESTORE_PROFILES: dict[str, tuple[float, ...]] = {
    "critical": (1 / 8, 3 / 8, 5 / 8, 7 / 8, 15 / 16, 1, 1, 1),
    "major": (1 / 16, 1 / 4, 1 / 2, 3 / 4, 7 / 8, 15 / 16, 1, 1),
    "minor": (0, 1 / 16, 1 / 8, 3 / 8, 5 / 8, 3 / 4, 7 / 8, 1),
}

# Requests per second at traffic factor 1, by (route, method). Payment and order-creation
# traffic is not listed: it follows from successful checkouts.
ROUTE_RATES: dict[tuple[str, str], float] = {
    ("/", "GET"): 4.0,
    ("/search", "GET"): 3.0,
    ("/product/{id}", "GET"): 6.0,
    ("/cart", "GET"): 1.0,
    ("/cart", "POST"): 1.0,
    ("/checkout", "POST"): 0.5,
    ("/api/orders", "GET"): 0.5,
}
ROUTE_PROFILES: dict[str, str] = {
    "/": "fast", "/search": "slow", "/product/{id}": "fast", "/cart": "fast",
    "/checkout": "slow", "/payment": "slow", "/api/orders": "fast",
}
ROUTES: tuple[str, ...] = tuple(ROUTE_PROFILES)
SESSIONS_PER_SECOND = 2.0
SESSION_DURATION_SECONDS = 300.0
SERVER_ERROR_RATIO = 1 / 512  # background 5xx on every route
PRODUCT_NOT_FOUND_RATIO = 1 / 32
# A calm shop is healthy: each SLO in rules/shop-slos.yaml burns its budget at about a third
# of the allowed rate (checkout 1/512 against 0.5 %: 0.39x; payments 1/256 against 1 %: 0.39x),
# so only a burst (or a random one) turns the overview red and pages.
CHECKOUT_ERROR_RATIO = 1 / 512
PAYMENT_ERROR_RATIO = 1 / 256
PAYMENT_DECLINE_RATIO = 1 / 16  # of payments that reach the provider without error
CHECKOUT_ABANDON_RATIO = 1 / 8  # of started checkouts that never reach payment
PAYMENT_PROVIDERS: dict[str, float] = {"card": 3 / 4, "wallet": 1 / 4}
AVERAGE_ORDER_VALUE_EUR = 42.5
ORDER_VALUE_CV = 0.6
INCIDENT_RATES: dict[str, float] = {"critical": 1 / 16384, "major": 1 / 4096, "minor": 1 / 1024}
CHANGES_DEPLOYED_PER_SECOND = 1 / 256
CHANGE_FAILURE_RATIO = 1 / 8
JOURNEY_STAGES: tuple[str, ...] = (
    "session_started", "product_viewed", "cart_added", "checkout_started", "order_paid",
)
QUEUES: tuple[str, ...] = ("order_fulfilment", "email", "payment_retry")
DEPENDENCIES: tuple[str, ...] = ("database", "payment_gateway", "search_index")


@dataclass(frozen=True)
class Conditions:
    """What drives one interval: traffic level and the burst's error ratio (0 when calm)."""

    traffic: float = 1.0
    burst_error_ratio: float = 0.0

    @property
    def in_burst(self) -> bool:
        return self.burst_error_ratio > 0


class Sampler(Protocol):
    """Turns expectations into amounts: exactly (deterministic) or with noise (random)."""

    def count(self, expected: float) -> float: ...

    def split(self, n: float, weights: Sequence[float], even: Even | None = None) -> list[float]:
        ...

    def amount(self, n: float, mean: float, cv: float) -> float: ...


class ExactSampler:
    """Expectations as they are, so every counter is rate x time."""

    def count(self, expected: float) -> float:
        return expected

    def split(self, n: float, weights: Sequence[float], even: Even | None = None) -> list[float]:
        return [n * w for w in weights]

    def amount(self, n: float, mean: float, cv: float) -> float:
        return n * mean


class RandomSampler:
    """Integer event counts with Poisson arrivals and binomial splits, from a seeded generator.

    Outcomes an SLO counts as bad (5xx, payment errors, slow requests) are spread evenly
    instead: by chance alone, 1 error in the first 37 payments (of 1 in 256) is a 13 % event,
    and it would spend the whole budget of a sidecar that has just started. The traffic they
    ride on stays random, and so do bursts.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._expected: dict[str, float] = {}  # per Even name: rare events due so far
        self._emitted: dict[str, float] = {}  # and those counted

    def count(self, expected: float) -> float:
        if expected <= 0:
            return 0.0
        if expected > 30:  # normal approximation keeps long catch-up steps cheap
            return float(max(0, round(self.rng.gauss(expected, math.sqrt(expected)))))
        limit, k, p = math.exp(-expected), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return float(k)

    def split(self, n: float, weights: Sequence[float], even: Even | None = None) -> list[float]:
        if even is not None:
            name, first = even
            total = sum(weights)
            rare = self._evenly(name, n, sum(weights[first:]) / total if total > 0 else 0.0)
            return self.split(n - rare, weights[:first]) + self.split(rare, weights[first:])
        parts: list[float] = []
        remaining, weight_left = int(n), sum(weights)
        for w in weights:
            p = 0.0 if weight_left <= 0 else min(1.0, w / weight_left)
            k = self._binomial(remaining, p)
            parts.append(float(k))
            remaining -= k
            weight_left -= w
        if parts:
            parts[-1] += remaining  # rounding of weights must not lose events
        return parts

    def _evenly(self, name: str, n: float, p: float) -> float:
        """Rare events among n so that their running total is the nearest whole number to the
        running expectation (never more than n)."""
        expected = self._expected.get(name, 0.0) + n * p
        emitted = self._emitted.get(name, 0.0)
        k = float(min(int(n), max(0, math.floor(expected + 0.5) - int(emitted))))
        self._expected[name], self._emitted[name] = expected, emitted + k
        return k

    def amount(self, n: float, mean: float, cv: float) -> float:
        if n <= 0:
            return 0.0
        return max(0.0, self.rng.gauss(n * mean, math.sqrt(n) * mean * cv))

    def _binomial(self, n: int, p: float) -> int:
        if n <= 0 or p <= 0:
            return 0
        if p >= 1:
            return n
        if n <= 25:
            return sum(1 for _ in range(n) if self.rng.random() < p)
        mean, sd = n * p, math.sqrt(n * p * (1 - p))
        return min(n, max(0, round(self.rng.gauss(mean, sd))))


def sample_key(name: str, **labels: str) -> SampleKey:
    """The key of one sample; label order follows the keyword order."""
    return (name, tuple(labels.items()))


def format_le(bound: float) -> str:
    """A bucket bound as prometheus-client writes it (`1.0`, `0.3`), canonical for OpenMetrics."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def add(counts: Counts, key: SampleKey, value: float) -> None:
    counts[key] = counts.get(key, 0.0) + value


def profile_weights(cumulative: Sequence[float]) -> list[float]:
    """Per-bucket fractions from cumulative ones, with the overflow (+Inf) share last."""
    weights, previous = [], 0.0
    for c in [*cumulative, 1.0]:
        weights.append(c - previous)
        previous = c
    return weights


def profile_mean(bounds: Sequence[float], cumulative: Sequence[float]) -> float:
    """Mean observation of a profile, taking each bucket's midpoint (overflow at 1.5 x top)."""
    lowers = [0.0, *bounds]
    mids = [(lo + hi) / 2 for lo, hi in zip(lowers, bounds, strict=False)] + [bounds[-1] * 1.5]
    return sum(w * m for w, m in zip(profile_weights(cumulative), mids, strict=True))


def observe(
    counts: Counts,
    family: str,
    labels: LabelPairs,
    bounds: Sequence[float],
    parts: Sequence[float],
    total: float,
) -> None:
    """Add per-bucket observation counts (overflow last) and their sum to a classic histogram."""
    running = 0.0
    for bound, part in zip(bounds, parts, strict=False):
        running += part
        add(counts, (f"{family}_bucket", (*labels, ("le", format_le(bound)))), running)
    running += parts[-1]
    add(counts, (f"{family}_bucket", (*labels, ("le", "+Inf"))), running)
    add(counts, (f"{family}_count", labels), running)
    add(counts, (f"{family}_sum", labels), total)


def _requests(
    counts: Counts, sampler: Sampler, route: str, method: str, codes: dict[str, float], n: float,
    profile: str,
) -> list[float]:
    """Record n requests split into status codes; returns the per-code counts in dict order."""
    # The last code (500 where there is one) is the rare outcome.
    parts = sampler.split(n, list(codes.values()), (f"{route} {method} code", len(codes) - 1))
    for code, part in zip(codes, parts, strict=True):
        add(counts, sample_key("shop_http_requests_total", route=route, method=method, code=code),
            part)
    cumulative = LATENCY_PROFILES[profile]
    buckets = sampler.split(n, profile_weights(cumulative), (f"{route} slow", SLOW_BUCKET_INDEX))
    mean = profile_mean(LATENCY_BUCKETS, cumulative)
    observe(counts, "shop_http_request_duration_seconds", (("route", route),), LATENCY_BUCKETS,
            buckets, sampler.amount(sum(buckets), mean, 0.3))
    return parts


def simulate_shop(counts: Counts, dt: float, cond: Conditions, sampler: Sampler) -> None:
    """Add dt seconds of shop traffic under the given conditions to the counters."""
    ok_codes = {"200": 1 - SERVER_ERROR_RATIO, "500": SERVER_ERROR_RATIO}
    for (route, method), rate in ROUTE_RATES.items():
        if route in ("/checkout", "/product/{id}") or (route, method) == ("/cart", "POST"):
            continue
        _requests(counts, sampler, route, method, ok_codes, sampler.count(rate * cond.traffic * dt),
                  ROUTE_PROFILES[route])
    sessions = sampler.count(SESSIONS_PER_SECOND * cond.traffic * dt)

    views = sampler.count(ROUTE_RATES["/product/{id}", "GET"] * cond.traffic * dt)
    view_codes = {
        "200": 1 - PRODUCT_NOT_FOUND_RATIO - SERVER_ERROR_RATIO,
        "404": PRODUCT_NOT_FOUND_RATIO,
        "500": SERVER_ERROR_RATIO,
    }
    viewed = _requests(counts, sampler, "/product/{id}", "GET", view_codes, views, "fast")[0]
    adds = sampler.count(ROUTE_RATES["/cart", "POST"] * cond.traffic * dt)
    added = _requests(counts, sampler, "/cart", "POST", ok_codes, adds, "fast")[0]

    checkout_error = max(CHECKOUT_ERROR_RATIO, cond.burst_error_ratio)
    slow = "degraded" if cond.in_burst else "slow"
    checkouts = sampler.count(ROUTE_RATES["/checkout", "POST"] * cond.traffic * dt)
    started, checkout_failed = _requests(
        counts, sampler, "/checkout", "POST",
        {"200": 1 - checkout_error, "500": checkout_error}, checkouts, slow,
    )
    abandon = [CHECKOUT_ABANDON_RATIO, 1 - CHECKOUT_ABANDON_RATIO]
    abandoned, attempts = sampler.split(started, abandon)

    payment_error = max(PAYMENT_ERROR_RATIO, cond.burst_error_ratio)
    outcomes = {
        "success": (1 - payment_error) * (1 - PAYMENT_DECLINE_RATIO),
        "declined": (1 - payment_error) * PAYMENT_DECLINE_RATIO,
        "error": payment_error,
    }
    codes = {"success": "200", "declined": "402", "error": "502"}
    by_provider = sampler.split(attempts, list(PAYMENT_PROVIDERS.values()))
    totals = dict.fromkeys(outcomes, 0.0)
    for provider, n in zip(PAYMENT_PROVIDERS, by_provider, strict=True):
        error_last = (f"payment {provider} error", len(outcomes) - 1)
        parts = sampler.split(n, list(outcomes.values()), error_last)
        for outcome, part in zip(outcomes, parts, strict=True):
            add(counts, sample_key("shop_payments_total", provider=provider, outcome=outcome), part)
            totals[outcome] += part
    for outcome, code in codes.items():
        add(counts, sample_key("shop_http_requests_total", route="/payment", method="POST",
                               code=code), totals[outcome])
    payment_latency = LATENCY_PROFILES[slow]
    buckets = sampler.split(attempts, profile_weights(payment_latency),
                            ("/payment slow", SLOW_BUCKET_INDEX))
    observe(counts, "shop_http_request_duration_seconds", (("route", "/payment"),), LATENCY_BUCKETS,
            buckets, sampler.amount(attempts, profile_mean(LATENCY_BUCKETS, payment_latency), 0.3))

    paid = totals["success"]
    # Every paid order is created through the order API.
    _requests(counts, sampler, "/api/orders", "POST", {"201": 1.0}, paid, "fast")
    failed = totals["declined"] + totals["error"] + checkout_failed
    for status, n in (("completed", paid), ("failed", failed), ("abandoned", abandoned)):
        add(counts, sample_key("shop_orders_total", status=status), n)
    add(counts, sample_key("shop_order_value_eur_total"),
        sampler.amount(paid, AVERAGE_ORDER_VALUE_EUR, ORDER_VALUE_CV))
    for stage, n in zip(JOURNEY_STAGES, (sessions, viewed, added, started, paid), strict=True):
        add(counts, sample_key("shop_journey_events_total", stage=stage), n)


def simulate_itsm(counts: Counts, dt: float, sampler: Sampler) -> dict[str, float]:
    """Add dt seconds of change and incident activity; returns incidents opened by severity."""
    deployed = sampler.count(CHANGES_DEPLOYED_PER_SECOND * dt)
    failed = sampler.split(deployed, [CHANGE_FAILURE_RATIO, 1 - CHANGE_FAILURE_RATIO])[0]
    add(counts, sample_key("itsm_changes_deployed_total"), deployed)
    add(counts, sample_key("itsm_changes_failed_total"), failed)
    opened: dict[str, float] = {}
    for severity, rate in INCIDENT_RATES.items():
        opened[severity] = sampler.count(rate * dt)
        add(counts, sample_key("itsm_incidents_opened_total", severity=severity), opened[severity])
    return opened


def resolve_incidents_exactly(counts: Counts, dt: float) -> None:
    """Steady state for the deterministic shop: incidents are restored as fast as they open."""
    exact = ExactSampler()
    for severity, rate in INCIDENT_RATES.items():
        observe_restore(counts, severity, exact.split(rate * dt, profile_weights(
            RESTORE_PROFILES[severity])), rate * dt * mean_restore_seconds(severity))


def observe_restore(counts: Counts, severity: str, parts: Sequence[float], total: float) -> None:
    labels: LabelPairs = (("severity", severity),)
    add(counts, sample_key("itsm_incidents_resolved_total", severity=severity), sum(parts))
    observe(counts, "itsm_incident_time_to_restore_seconds", labels, RESTORE_BUCKETS, parts, total)


def mean_restore_seconds(severity: str) -> float:
    return profile_mean(RESTORE_BUCKETS, RESTORE_PROFILES[severity])


def restore_parts(seconds: float) -> list[float]:
    """One restore observation as per-bucket counts (overflow last)."""
    index = next((i for i, b in enumerate(RESTORE_BUCKETS) if seconds <= b), len(RESTORE_BUCKETS))
    return [1.0 if i == index else 0.0 for i in range(len(RESTORE_BUCKETS) + 1)]


def expected_gauges(cond: Conditions) -> Counts:
    """Gauge values the shop settles at under the given conditions (Little's law where it fits)."""
    gauges: Counts = {}
    depths = {
        "order_fulfilment": 4.0 * cond.traffic,
        "email": 12.0 * cond.traffic,
        "payment_retry": 40.0 * cond.burst_error_ratio if cond.in_burst else 1.0,
    }
    for queue in QUEUES:
        gauges[sample_key("shop_queue_depth", queue=queue)] = depths[queue]
    for dependency in DEPENDENCIES:
        down = dependency == "payment_gateway" and cond.burst_error_ratio >= 0.5
        gauges[sample_key("shop_dependency_up", dependency=dependency)] = 0.0 if down else 1.0
    gauges[sample_key("shop_sessions_active")] = (
        SESSIONS_PER_SECOND * cond.traffic * SESSION_DURATION_SECONDS
    )
    for severity, rate in INCIDENT_RATES.items():
        gauges[sample_key("itsm_incidents_open", severity=severity)] = float(
            round(rate * mean_restore_seconds(severity))
        )
    return gauges
