"""The rule model: ordered groups of recording and alerting rules, what every engine evaluates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exporter.labels import Labels

if TYPE_CHECKING:  # the SLO, journey and improvement models import Source from here
    from exporter.rules.journey_model import Improvement, Journey
    from exporter.rules.slo_model import SLO
    from exporter.rules.value_model import Parameter, ValueMetric


@dataclass(frozen=True, slots=True)
class Source:
    """Where a rule was written, for messages at load and at run time."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """`record: name` — the expression's result stored under a new metric name."""

    name: str
    expr: str
    labels: Labels = ()
    source: Source = field(default=Source(""), compare=False)


@dataclass(frozen=True, slots=True)
class AlertingRule:
    """`alert: name` — a condition that turns pending, then firing, then resolved."""

    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    source: Source = field(default=Source(""), compare=False)


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """Rules evaluated in order at one interval; later rules see earlier results."""

    name: str
    file: str
    rules: tuple[Rule, ...]
    interval_ms: int | None = None  # None: the global evaluation_interval
    query_offset_ms: int | None = None  # None: the global rule_query_offset (0)
    limit: int = 0
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Prometheus identifies a group by file and name."""
        return (self.file, self.name)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Everything loaded from a set of rule files."""

    groups: tuple[RuleGroup, ...] = ()
    files: tuple[str, ...] = ()
    slos: tuple[SLO, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    values: tuple[ValueMetric, ...] = ()
    journeys: tuple[Journey, ...] = ()
    improvements: tuple[Improvement, ...] = ()

    @property
    def rule_count(self) -> int:
        """Recording and alerting rules across all groups."""
        return sum(len(g.rules) for g in self.groups)
