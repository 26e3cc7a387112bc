"""SLO -> recording rules for compile: the sidecar's SLO series, computed by Prometheus instead.

The method, per SLO (one rule group, evaluated every `interval`, rules in order):

1. Tiles. Each evaluation records the interval's bad and total events by the SLO's group_by
   labels (`slo:sli_total_events:increase1m`, `slo:sli_error_events:increase1m`): the same
   count the sidecar adds to one bucket (exporter/compile_sli.py). Maintenance drops a tile
   whose interval starts inside a window, as the sidecar drops that interval.
2. Windows are sums of tiles: `sum_over_time(tile[w])` over exactly w / interval tiles, so a
   30-day window never reads raw series over 30 days (only the SLO's few tile series) and
   every ratio is events-weighted, bad / total, never an average of ratios.
3. A calendar period sums the tiles whose interval started at or after the period start:
   a subquery over the longest period, one step per tile, filtered against the period
   start recorded at this evaluation (`@ end()` reads it at the rule's own time).
4. Everything else follows from those sums exactly as exporter/slo_series.py computes it.
"""

from __future__ import annotations

from exporter import conventions as c
from exporter.compile_promql import (
    at_end,
    binary,
    call,
    canonical,
    duration,
    either,
    number,
    selector,
    subquery,
)
from exporter.compile_sli import either_on, interval_queries
from exporter.compile_time import (
    any_maintenance_expr,
    fixed_offset_seconds,
    period_length_expr,
    period_start_expr,
)
from exporter.rules.model import RecordingRule, RuleGroup
from exporter.rules.slo_model import SLO, CalendarWindow, RollingWindow
from exporter.slo_series import base_labels, error_budget, info_labels, objective
from exporter.slo_windows import EXHAUSTION_WINDOW_MS, alert_windows_ms, window_name

DAY_MS = 86_400_000
# The longest week, month and quarter in a fixed-offset zone: the calendar subquery's range.
_LONGEST_MS = {"week": 7 * DAY_MS, "month": 31 * DAY_MS, "quarter": 92 * DAY_MS}

# Series only compile writes: the per-interval tiles and the period sums built from them.
TOTAL_TILE = "slo:sli_total_events:increase{}"
ERROR_TILE = "slo:sli_error_events:increase{}"
TOTAL_PERIOD = "slo:sli_total_events:sum_period"
ERROR_PERIOD = "slo:sli_error_events:sum_period"


def series_group_name(slo: SLO) -> str:
    """The recording group's name; the alert group (exporter/slo_rules.py) is `slo:NAME`."""
    return f"slo:{slo.name}:series"


class _Builder:
    """Collects one SLO's recording rules in evaluation order."""

    def __init__(self, slo: SLO, interval_ms: int) -> None:
        self.slo = slo
        self.interval_ms = interval_ms
        self.labels = tuple(sorted(base_labels(slo).items()))
        self.rules: list[RecordingRule] = []

    def own(self, name: str) -> str:
        """A selector of one of this SLO's recorded series."""
        return selector(name, ((c.SERVICE_LABEL, self.slo.service), (c.SLO_LABEL, self.slo.name)))

    def record(self, name: str, expr: str, labels: tuple[tuple[str, str], ...] = ()) -> None:
        """Add a rule; `labels` for expressions that do not carry the SLO's labels already."""
        # Every rule names the SLO's labels, even where the expression carries them: it keeps
        # each SLO's rules distinct to promtool's duplicate-rule lint.
        merged = tuple(sorted({**dict(self.labels), **dict(labels)}.items()))
        self.rules.append(RecordingRule(name=name, expr=canonical(expr), labels=merged,
                                        source=self.slo.source))


def slo_series_group(slo: SLO, *, interval_ms: int) -> RuleGroup:
    """The recording rules for every SLO series of one SLO (occurrences budgeting)."""
    b = _Builder(slo, interval_ms)
    tile_w = duration(interval_ms)
    total_tile, error_tile = TOTAL_TILE.format(tile_w), ERROR_TILE.format(tile_w)
    queries = interval_queries(slo, interval_ms, b.own(total_tile))
    total = queries.total
    if slo.maintenance:
        # The sidecar skips an interval whose start lies in a window: shift time() back.
        shifted = any_maintenance_expr(slo.maintenance, shift_ms=interval_ms)
        total = binary(total, "unless", shifted, on=())
    b.record(total_tile, total, b.labels)
    b.record(error_tile, queries.bad, b.labels)  # absent wherever the total tile is

    budget = error_budget(slo)
    for ms in alert_windows_ms(slo):
        w = window_name(ms)
        bad = call("sum_over_time", f"{b.own(error_tile)}[{w}]")
        events = call("sum_over_time", f"{b.own(total_tile)}[{w}]")
        b.record(c.slo_error_ratio(w), _ratio(bad, events))
        b.record(c.slo_burn_rate(w), binary(b.own(c.slo_error_ratio(w)), "/", number(budget)))

    window = slo.window
    if isinstance(window, CalendarWindow):
        offset_s = fixed_offset_seconds(window.timezone)
        b.record(c.SLO_PERIOD_START, period_start_expr(window.unit, offset_s), b.labels)
        span = _LONGEST_MS[window.unit]
        for tile, name in ((error_tile, ERROR_PERIOD), (total_tile, TOTAL_PERIOD)):
            # Right at a period start no tile counts yet: zero events, not an absent series.
            b.record(name, either(_since_period_start(b, tile, span),
                                  binary("0", "*", b.own(tile))))
        length = period_length_expr(window.unit, offset_s)
    else:
        assert isinstance(window, RollingWindow)
        p = duration(window.duration_ms)
        b.record(ERROR_PERIOD, call("sum_over_time", f"{b.own(error_tile)}[{p}]"))
        b.record(TOTAL_PERIOD, call("sum_over_time", f"{b.own(total_tile)}[{p}]"))
        # The sidecar's window starts at the first bucket it sums.
        tile_s = number(interval_ms / 1000)
        bucket_end = binary(call("ceil", call("vector", binary("time()", "/", tile_s))), "*",
                            tile_s)
        b.record(c.SLO_PERIOD_START,
                 binary(bucket_end, "-", number(window.duration_ms / 1000)), b.labels)
        length = number(window.duration_ms / 1000)

    b.record(c.SLO_PERIOD_LENGTH, call("vector", length), b.labels)
    bad, events = b.own(ERROR_PERIOD), b.own(TOTAL_PERIOD)
    b.record(c.SLO_ERROR_RATIO_PERIOD, _ratio(bad, events))
    b.record(c.SLO_SLI_PERIOD, binary("1", "-", b.own(c.SLO_ERROR_RATIO_PERIOD)))
    b.record(c.SLO_BURN_RATE_PERIOD, binary(b.own(c.SLO_ERROR_RATIO_PERIOD), "/", number(budget)))
    b.record(c.SLO_OBJECTIVE, call("vector", number(objective(slo))), b.labels)
    b.record(c.SLO_ERROR_BUDGET, call("vector", number(budget)), b.labels)
    # 1 - bad / (budget x total) once anything is spent; a period without bad events has
    # its whole budget (1, also with no events at all); bad events with nothing allowed: -Inf.
    spent = binary(binary(bad, ">", "0"), "/", binary(number(budget), "*", events))
    b.record(c.SLO_BUDGET_REMAINING,
             either(binary("1", "-", spent), binary(binary(bad, "*", "0"), "+", "1")))
    b.record(c.SLO_BUDGET_REMAINING_EVENTS, binary(binary(number(budget), "*", events), "-", bad))
    b.record(c.SLO_BUDGET_EXHAUSTED_IN, _exhausted_in(b, length))
    _event_counters(b, total_tile, error_tile)
    info = dict(b.labels) | {k: v for k, v in info_labels(slo).items() if v}
    b.record(c.SLO_INFO, "vector(1)", tuple(sorted(info.items())))
    return RuleGroup(name=series_group_name(slo), file=slo.source.file, rules=tuple(b.rules),
                     interval_ms=interval_ms)


def _ratio(bad: str, total: str) -> str:
    # A window without events has no ratio (the series is absent), as in the sidecar.
    return binary(bad, "/", binary(total, ">", "0"))


def _since_period_start(b: _Builder, tile: str, span_ms: int) -> str:
    # Subquery steps fall on multiples of the interval; each step reads the one tile of the
    # interval ending there and keeps it when that interval started at or after the period
    # start, i.e. when the step time is past it. time() inside a subquery is the step time.
    step_tile = call("last_over_time", f"{b.own(tile)}[{duration(b.interval_ms)}]")
    started = binary(call("vector", "time()"), ">", at_end(b.own(c.SLO_PERIOD_START)), on=())
    return call("sum_over_time",
                subquery(binary(step_tile, "and", started, on=()), span_ms, b.interval_ms))


def _exhausted_in(b: _Builder, length: str) -> str:
    # remaining x period length / current burn rate (slo_series.exhausted_in_seconds):
    # 0 once spent; +Inf while nothing burns (no errors, or no traffic in the burn window).
    remaining = b.own(c.SLO_BUDGET_REMAINING)
    burn = b.own(c.slo_burn_rate(window_name(EXHAUSTION_WINDOW_MS)))
    spent = call("clamp", binary(remaining, "<=", "0"), "0", "0")
    lasting = binary(binary(remaining, "*", length), "/", binary(burn, ">", "0"))
    return either(spent, lasting, binary(binary(remaining, "*", "0"), "+", "+Inf"))


def _event_counters(b: _Builder, total_tile: str, error_tile: str) -> None:
    # Prometheus cannot hold a counter across evaluations except by reading its own last
    # value: each evaluation adds the tile to it. It is absent while the tile is (during
    # maintenance, where the sidecar's counter stands still) and continues after; absent for
    # longer than two intervals plus the longest maintenance (Prometheus down, the SLI's
    # series gone) it starts again from the next tile: a counter reset to its consumers.
    longest_maintenance = max((m.duration_ms for m in b.slo.maintenance), default=0)
    lookback = duration(2 * b.interval_ms + longest_maintenance)
    good_tile = binary(b.own(total_tile), "-", b.own(error_tile))
    for name, tile in ((c.SLO_EVENTS, b.own(total_tile)), (c.SLO_GOOD_EVENTS, good_tile)):
        previous = call("last_over_time", f"{b.own(name)}[{lookback}]")
        b.record(name, either_on(binary(tile, "+", previous), tile, b.slo.group_by))
