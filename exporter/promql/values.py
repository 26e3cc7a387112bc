"""The four PromQL value types the evaluator and the functions pass between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from exporter.labels import Labels


@dataclass(slots=True)
class Sample:
    """One element of an instant vector: a label set, a value, and the sample's own time."""

    labels: Labels
    value: float
    t_ms: int


Vector = list[Sample]


@dataclass(slots=True)
class RangeSeries:
    """One series of a range vector: its samples in the window, stale markers removed."""

    labels: Labels
    ts: Sequence[int]
    vs: Sequence[float]


@dataclass(slots=True)
class Matrix:
    """A range vector and the left-open window (start_ms, end_ms] it was selected over."""

    series: list[RangeSeries]
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Scalar:
    """A plain float."""

    value: float


@dataclass(frozen=True, slots=True)
class String:
    """A string literal (only as a function argument or a top-level result)."""

    value: str


Value = Vector | Matrix | Scalar | String


@dataclass(slots=True)
class Annotations:
    """Warnings and infos raised during evaluation (Prometheus's annotations)."""

    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)


class PromQLError(Exception):
    """A query that cannot be parsed or evaluated; the message is for users."""


@dataclass(slots=True)
class CallContext:
    """What a PromQL function sees besides its evaluated arguments.

    `arg_exprs` are the promql_parser expressions of the arguments (absent() derives its
    labels from them); `t_ms` is the evaluation time of this step.
    """

    t_ms: int
    arg_exprs: Sequence[object]
    annotations: Annotations
