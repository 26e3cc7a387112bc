"""The business-value part of the rule model: parameters and value metrics (no I/O, frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.rules.model import Source

SHORTHANDS = ("revenue_at_risk", "cost_of_downtime", "value_delivered", "error_budget_value")


@dataclass(frozen=True, slots=True)
class PriorValue:
    """A parameter value in force from `from_s` (Unix seconds) until the next one."""

    value: float
    from_s: int


@dataclass(frozen=True, slots=True)
class Parameter:
    """A named business constant (`value`, with an optional history) or a metric (`expr`)."""

    name: str
    unit: str  # canonical text (exporter.units.format_unit)
    value: float | None = None  # None: metric-backed
    history: tuple[PriorValue, ...] = ()  # later values, by increasing from_s
    expr: str | None = None
    description: str = ""
    source: Source = field(default=Source(""), compare=False)

    def value_at(self, t_s: float) -> float | None:
        """The constant in force at Unix time t_s (what a report for that time uses)."""
        value = self.value
        for prior in self.history:
            if prior.from_s <= t_s:
                value = prior.value
        return value


@dataclass(frozen=True, slots=True)
class Shorthand:
    """A common value metric over an SLO's series; exporter/value.py expands it."""

    kind: str  # one of SHORTHANDS
    slo: str
    parameter: str  # the $name of the value per event or cost per minute
    currency: str  # lower-case ISO code, the series-name suffix


@dataclass(frozen=True, slots=True)
class ValueAlert:
    """A threshold on a value metric: fire while it is above (or below) `threshold`."""

    threshold: float
    above: bool  # False: below
    for_ms: int = 0
    severity: str = "ticket"  # "page" | "ticket"
    summary: str = ""  # a template; "" means the generated business sentence


@dataclass(frozen=True, slots=True)
class ValueMetric:
    """A business metric: `expr` (parameters substituted) recorded as `name`, or a shorthand."""

    name: str
    unit: str
    owner: str
    help: str = ""
    expr: str | None = None
    shorthand: Shorthand | None = None
    alert: ValueAlert | None = None
    source: Source = field(default=Source(""), compare=False)
