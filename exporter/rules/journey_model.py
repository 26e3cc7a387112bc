"""The journeys and improvements part of the rule model: validated, frozen, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.rules.model import Source

# ITIL 4 value-stream steps: the default vocabulary for stage names (any name is allowed).
ITIL_STAGES = ("explore", "engage", "offer", "agree", "onboard", "co-create", "realize")


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a journey: customers who tried it (attempts) and got through (successes)."""

    name: str
    attempts: str  # a series selector over a counter
    successes: str  # a series selector over a counter
    value_per_success: float | None = None  # money each success realizes, in the journey currency
    touchpoints: tuple[str, ...] = ()  # SLO names the customer sees at this step
    backstage: tuple[str, ...] = ()  # SLO names of supporting services the customer never sees
    source: Source = field(default=Source(""), compare=False)


@dataclass(frozen=True, slots=True)
class Journey:
    """A customer journey: ordered stages, reported over 1h and over `window_ms`."""

    name: str
    owner: str
    window_ms: int
    stages: tuple[Stage, ...]
    description: str = ""
    currency: str = ""  # lower-case ISO 4217 code: the value series name ends in it
    source: Source = field(default=Source(""), compare=False)


@dataclass(frozen=True, slots=True)
class Improvement:
    """One entry of the CSI register: a metric moved from a baseline to a target by a date."""

    name: str
    owner: str
    metric: str  # PromQL returning one series (aggregate in the expression)
    baseline_at_ms: int  # when the baseline was (or is to be) taken, Unix ms
    target: float
    target_by_ms: int  # the due date, Unix ms
    direction: str  # "up" | "down"
    baseline: float | None = None  # None: measured by the engine at baseline_at_ms
    description: str = ""
    source: Source = field(default=Source(""), compare=False)

    @property
    def measured(self) -> bool:
        """Whether the baseline is measured rather than given."""
        return self.baseline is None
