"""The journeys and improvements part of the rule model: validated, frozen, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.rules.model import Source
from exporter.rules.value_model import Parameter

# ITIL 4 value-stream steps: the default vocabulary for stage names (any name is allowed).
ITIL_STAGES = ("explore", "engage", "offer", "agree", "onboard", "co-create", "realize")
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
# A window longer than this is summed from the stage's recorded hourly series, so no raw
# sample is kept longer than an hour for it (exporter/journeys.py).
LONG_WINDOW_MS = DAY_MS


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a journey: customers who tried it (attempts) and got through (successes)."""

    name: str
    attempts: str  # a series selector over a counter
    successes: str  # a series selector over a counter
    value_per_success: float | None = None  # money each success realizes, in the journey currency
    value_parameter: Parameter | None = None  # or a `$name` parameter in <currency>/event
    touchpoints: tuple[str, ...] = ()  # SLO names the customer sees at this step
    backstage: tuple[str, ...] = ()  # SLO names of supporting services the customer never sees
    source: Source = field(default=Source(""), compare=False)

    @property
    def has_value(self) -> bool:
        """Whether each success is worth money (a number or a parameter)."""
        return self.value_per_success is not None or self.value_parameter is not None


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
