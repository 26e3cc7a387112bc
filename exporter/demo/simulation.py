"""Demo shop simulation: advances the shop model with a clock, deterministically or at random."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from exporter.demo.model import (
    INCIDENT_RATES,
    RESTORE_BUCKETS,
    RESTORE_PROFILES,
    Conditions,
    Counts,
    ExactSampler,
    RandomSampler,
    expected_gauges,
    observe_restore,
    profile_weights,
    resolve_incidents_exactly,
    restore_parts,
    sample_key,
    simulate_itsm,
    simulate_shop,
)

Clock = Callable[[], float]
DEFAULT_SEED = 20240601
TICK_SECONDS = 1.0
MAX_TICKS_PER_ADVANCE = 900  # a long gap between scrapes is caught up in coarser steps
AUTO_BURST_MEAN_INTERVAL_SECONDS = 45 * 60.0
AUTO_BURST_SECONDS = (120.0, 480.0)
AUTO_BURST_ERROR_RATIO = (0.1, 0.6)
# OpenMetrics requires whole numbers in histogram buckets and counts, so in OpenMetrics the
# deterministic shop exposes whole observations (see whole_observations). The text format has
# no such rule and gets rate x elapsed exactly, so rates computed from it are exact at any
# scrape time.
INTEGER_SUFFIXES = ("_bucket", "_count")


@dataclass(frozen=True)
class Burst:
    """An error burst: checkout and payment errors at `error_ratio` until `until`."""

    started: float
    until: float
    error_ratio: float
    requested: bool  # through the control endpoint, as opposed to a random one


@dataclass(frozen=True)
class Snapshot:
    """Every sample's value at one instant."""

    time: float
    start_time: float
    deterministic: bool
    counters: Counts
    gauges: Counts
    burst: Burst | None


def deterministic_rates(cond: Conditions) -> Counts:
    """Per-second growth of every counter in deterministic mode under the given conditions."""
    rates: Counts = {}
    exact = ExactSampler()
    simulate_shop(rates, 1.0, cond, exact)
    simulate_itsm(rates, 1.0, exact)
    resolve_incidents_exactly(rates, 1.0)
    return rates


def whole_observations(rates: Counts, dt: float) -> Counts:
    """Histogram buckets and counts after dt seconds at `rates`, in whole observations.

    The count is floor(rate x dt). Flooring each bucket on its own would make the first 30 s
    of a 1/64 share over a bound look like 1/15 (15 requests, floor(14.77) = 14 within it);
    instead the observations over each bound are the whole number nearest count x share, as if
    slow requests were spread evenly (one in 64: the 32nd, the 96th, ...). Buckets then never
    decrease, over time or by bound, and stay within half an observation of count x share.
    """
    whole: Counts = {}
    for key, rate in rates.items():
        name, labels = key
        if name.endswith("_count"):
            whole[key] = float(math.floor(rate * dt))
        elif name.endswith("_bucket"):
            count_rate = rates.get((name[: -len("_bucket")] + "_count", labels[:-1]), 0.0)
            n = math.floor(count_rate * dt)
            above = (count_rate - rate) / count_rate if count_rate > 0 else 0.0
            whole[key] = float(n - math.floor(n * above + 0.5))
    return whole


def traffic_factor(t: float) -> float:
    """Daily shape peaking at 20:00 UTC, with a 15-minute swell so short demos show movement."""
    hour = (t % 86400.0) / 3600.0
    daily = 1.0 + 0.45 * math.cos(2 * math.pi * (hour - 20.0) / 24.0)
    return daily * (1.0 + 0.1 * math.sin(2 * math.pi * t / 900.0))


class Simulation:
    """The shop's state; thread-safe, advanced lazily whenever it is read or steered."""

    def __init__(self, *, deterministic: bool, clock: Clock, seed: int = DEFAULT_SEED) -> None:
        self.deterministic = deterministic
        self.clock = clock
        self.start_time = clock()
        self._lock = threading.Lock()
        self._burst: Burst | None = None
        # Deterministic: values are exactly acc + rate x (t - segment start); a segment ends
        # whenever a burst starts or ends, so counters stay continuous and predictable.
        self._segment_start = self.start_time
        self._rates = deterministic_rates(Conditions())
        self._acc: Counts = dict.fromkeys(deterministic_rates(Conditions(1.0, 0.5)), 0.0)
        self._acc_whole: Counts = {}  # whole observations of closed segments (OpenMetrics)
        # Random: integer counts advanced in ticks from the start time.
        self._rng = random.Random(seed)
        self._sampler = RandomSampler(self._rng)
        self._sim_time = self.start_time
        self._gauges = expected_gauges(Conditions())
        self._open_incidents: list[tuple[float, str, float]] = []  # (resolve at, severity, opened)

    def snapshot(self, whole_buckets: bool = True) -> Snapshot:
        """Advance to the clock's now and return all values (see INTEGER_SUFFIXES)."""
        with self._lock:
            now = self._advance()
            if self.deterministic:
                dt = now - self._segment_start
                counters = {k: v + self._rates.get(k, 0.0) * dt for k, v in self._acc.items()}
                if whole_buckets:
                    whole = whole_observations(self._rates, dt)
                    for k in counters:
                        if k[0].endswith(INTEGER_SUFFIXES):
                            counters[k] = self._acc_whole.get(k, 0.0) + whole.get(k, 0.0)
                gauges = expected_gauges(self._conditions(now))
            else:
                counters = dict(self._acc)
                gauges = dict(self._gauges)
                for severity in INCIDENT_RATES:
                    gauges[sample_key("itsm_incidents_open", severity=severity)] = float(
                        sum(1 for _, s, _ in self._open_incidents if s == severity)
                    )
            return Snapshot(now, self.start_time, self.deterministic, counters, gauges, self._burst)

    def start_burst(self, seconds: float, error_ratio: float) -> Burst:
        """Raise checkout and payment errors to error_ratio for the next `seconds`."""
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a positive number, got {seconds}")
        if not 0 < error_ratio <= 1:
            raise ValueError(f"error_ratio must be in (0, 1], got {error_ratio}")
        with self._lock:
            now = self._advance()
            self._set_burst(now, Burst(now, now + seconds, error_ratio, requested=True))
            assert self._burst is not None
            return self._burst

    def stop_burst(self) -> None:
        """End the current burst, whichever started it."""
        with self._lock:
            now = self._advance()
            if self._burst is not None:
                self._set_burst(now, None)

    def current_burst(self) -> Burst | None:
        with self._lock:
            self._advance()
            return self._burst

    def _conditions(self, t: float) -> Conditions:
        ratio = self._burst.error_ratio if self._burst is not None else 0.0
        return Conditions(1.0 if self.deterministic else traffic_factor(t), ratio)

    def _set_burst(self, now: float, burst: Burst | None) -> None:
        if self.deterministic:
            self._close_segment(now)
        elif burst is not None:
            self._open_burst_incident(now, burst)
        self._burst = burst
        if self.deterministic:
            self._rates = deterministic_rates(self._conditions(now))

    def _advance(self) -> float:
        """Bring the state up to now (never backwards) and return now."""
        now = self.clock()
        if self.deterministic:
            now = max(now, self._segment_start)
            if self._burst is not None and self._burst.until <= now:
                self._set_burst(self._burst.until, None)
            return now
        gap = now - self._sim_time
        if gap < TICK_SECONDS:
            return max(now, self._sim_time)
        step = max(TICK_SECONDS, gap / MAX_TICKS_PER_ADVANCE)
        while self._sim_time + step <= now:
            self._tick(self._sim_time, step)
            self._sim_time += step
        return now

    def _close_segment(self, t: float) -> None:
        dt = t - self._segment_start
        for k, rate in self._rates.items():
            self._acc[k] = self._acc.get(k, 0.0) + rate * dt
        for k, n in whole_observations(self._rates, dt).items():
            self._acc_whole[k] = self._acc_whole.get(k, 0.0) + n
        self._segment_start = t

    def _tick(self, t: float, dt: float) -> None:
        if self._burst is not None and self._burst.until <= t:
            self._burst = None
        if self._burst is None and self._rng.random() < dt / AUTO_BURST_MEAN_INTERVAL_SECONDS:
            seconds = self._rng.uniform(*AUTO_BURST_SECONDS)
            self._set_burst(t, Burst(t, t + seconds, self._rng.uniform(*AUTO_BURST_ERROR_RATIO),
                                     requested=False))
        cond = self._conditions(t)
        simulate_shop(self._acc, dt, cond, self._sampler)
        opened = simulate_itsm(self._acc, dt, self._sampler)
        for severity, n in opened.items():
            for _ in range(int(n)):
                self._open_incident(t, severity, self._restore_seconds(severity))
        self._resolve_due_incidents(t + dt)
        self._walk_gauges(expected_gauges(cond))

    def _restore_seconds(self, severity: str) -> float:
        """A time to restore drawn from the severity's profile, uniform within its bucket."""
        weights = profile_weights(RESTORE_PROFILES[severity])
        index = self._rng.choices(range(len(weights)), weights=weights)[0]
        lowers = [0.0, *RESTORE_BUCKETS]
        upper = RESTORE_BUCKETS[index] if index < len(RESTORE_BUCKETS) else lowers[index] * 2
        return self._rng.uniform(lowers[index], upper)

    def _open_incident(self, t: float, severity: str, restore_seconds: float) -> None:
        self._open_incidents.append((t + restore_seconds, severity, t))

    def _open_burst_incident(self, t: float, burst: Burst) -> None:
        """A burst pages someone: one incident, restored a little after the burst ends."""
        severity = "critical" if burst.error_ratio >= 0.5 else "major"
        key = sample_key("itsm_incidents_opened_total", severity=severity)
        self._acc[key] = self._acc.get(key, 0.0) + 1
        self._open_incident(t, severity, burst.until - t + self._rng.uniform(120.0, 600.0))

    def _resolve_due_incidents(self, t: float) -> None:
        due = [i for i in self._open_incidents if i[0] <= t]
        if not due:
            return
        self._open_incidents = [i for i in self._open_incidents if i[0] > t]
        for resolve_at, severity, opened in due:
            seconds = resolve_at - opened
            observe_restore(self._acc, severity, restore_parts(seconds), seconds)

    def _walk_gauges(self, targets: Counts) -> None:
        """Gauges drift toward their target with noise, like a queue that drains and refills."""
        for key, target in targets.items():
            if key[0] == "itsm_incidents_open":
                continue  # counted from the open incident list at snapshot time
            if key[0] == "shop_dependency_up":
                self._gauges[key] = target
                continue
            current = self._gauges.get(key, target)
            moved = current + 0.3 * (target - current) + self._rng.gauss(0.0, 0.1 * target + 0.5)
            self._gauges[key] = float(max(0, round(moved)))
