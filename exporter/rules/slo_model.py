"""The SLO part of the rule model: what a `slos:` entry means once validated (no I/O, frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.rules.model import Source

# Default multi-window multi-burn-rate tiers for a 30-day window (SRE workbook, plus Sloth's
# 1d/2h ticket): (name, long window ms, short window ms, budget fraction, severity).
HOUR_MS = 3_600_000
DEFAULT_TIERS: tuple[tuple[str, int, int, float, str], ...] = (
    ("page-fast", 1 * HOUR_MS, 5 * 60_000, 0.02, "page"),
    ("page-slow", 6 * HOUR_MS, 30 * 60_000, 0.05, "page"),
    ("ticket-fast", 24 * HOUR_MS, 2 * HOUR_MS, 0.10, "ticket"),
    ("ticket-slow", 72 * HOUR_MS, 6 * HOUR_MS, 0.10, "ticket"),
)


@dataclass(frozen=True, slots=True)
class RatioSLI:
    """Counters: bad (or good) events over total events; selectors, not full PromQL."""

    total: str
    errors: str | None = None  # exactly one of errors / good
    good: str | None = None


@dataclass(frozen=True, slots=True)
class LatencySLI:
    """A classic histogram: good = requests in the `le` bucket at the threshold."""

    histogram: str  # a selector of the `_bucket` series
    threshold: float


@dataclass(frozen=True, slots=True)
class AvailabilitySLI:
    """A 0/1 gauge (`up`, `probe_success`): each scrape sample is one event, good when 1."""

    gauge: str


@dataclass(frozen=True, slots=True)
class EventsSLI:
    """Full PromQL with a `{{.window}}` placeholder, as Sloth writes it."""

    error_query: str
    total_query: str


SLI = RatioSLI | LatencySLI | AvailabilitySLI | EventsSLI


@dataclass(frozen=True, slots=True)
class RollingWindow:
    """The last `duration_ms` before now."""

    duration_ms: int


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """The current calendar week, month or quarter in a time zone; the budget resets each period."""

    unit: str  # "week" | "month" | "quarter"
    timezone: str = "UTC"


Window = RollingWindow | CalendarWindow


@dataclass(frozen=True, slots=True)
class Timeslices:
    """OpenSLO timeslices: each slice is good when `good_if` holds for its SLI value."""

    slice_ms: int
    comparator: str  # ">=", ">", "<=", "<"
    threshold: float  # the SLI (good ratio, 0..1) a slice is compared with


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Planned time excluded from the budget: one-off (start..end) or recurring (RRULE-like)."""

    start: str  # ISO 8601 local date-time in `timezone`
    duration_ms: int
    timezone: str = "UTC"
    every: str | None = None  # None (one-off), "day", "week", "month"
    description: str = ""


@dataclass(frozen=True, slots=True)
class AlertTier:
    """One multi-window multi-burn-rate alert: fire when both windows burn faster than factor."""

    name: str
    long_window_ms: int
    short_window_ms: int
    budget_fraction: float | None  # the factor is computed from it when factor is None
    factor: float | None = None
    severity: str = "page"
    for_ms: int = 0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class SLOAlerting:
    """Which alerts an SLO gets, and what they carry."""

    tiers: tuple[AlertTier, ...] = ()
    budget_exhausted: bool = True
    no_data_for_ms: int | None = 10 * 60_000  # None: no no-data alert
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    runbook_url: str = ""


@dataclass(frozen=True, slots=True)
class SLO:
    """One service level objective, validated; every generated name derives from `name`."""

    name: str
    service: str
    objective_percent: float
    window: Window
    sli: SLI
    description: str = ""
    owner: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    budgeting: Timeslices | None = None  # None: occurrences
    group_by: tuple[str, ...] = ()
    no_data: str = "ignore"  # "ignore" | "good" | "bad"
    maintenance: tuple[MaintenanceWindow, ...] = ()
    alerting: SLOAlerting = field(default_factory=SLOAlerting)
    series_limit: int = 100  # SLO series one group_by may create
    source: Source = field(default=Source(""), compare=False)

    @property
    def objective(self) -> float:
        """The objective as a ratio (99.9 -> 0.999)."""
        return self.objective_percent / 100

    @property
    def error_budget(self) -> float:
        """The allowed bad-event ratio (99.9 -> 0.001)."""
        return 1 - self.objective
