"""Rule files -> SLO model: the `slos:` section read strictly, every problem with file:line:col."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from exporter.conventions import SERVICE_LABEL, SLO_LABEL
from exporter.durations import format_duration
from exporter.labels import METRIC_NAME
from exporter.rules.model import Source
from exporter.rules.slo_model import (
    DEFAULT_TIERS,
    SLO,
    AlertTier,
    CalendarWindow,
    MaintenanceWindow,
    RollingWindow,
    SLOAlerting,
    Timeslices,
    Window,
)
from exporter.rules.slo_sli_load import SLI_KIND, format_number
from exporter.templates import check_template
from exporter.yamlkinds import BOOL, DURATION, FLOAT, INT, STR, checked, list_of, map_of, one_of
from exporter.yamlnodes import (
    TAG_BOOL,
    Invalid,
    Kind,
    MapReader,
    Problems,
    flatten,
    mismatch,
    position,
)

DAY_MS = 86_400_000
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_LABELS = (METRIC_NAME, SLO_LABEL, SERVICE_LABEL)
_NAME_EXPECTED = "a name of lower-case letters, digits, - and _, starting with a letter or digit"
_LABELS_EXPECTED = "valid label names other than " + ", ".join(_RESERVED_LABELS)
CALENDAR_UNITS = ("week", "month", "quarter")
# The shortest period of each calendar unit: what a slice or an alert window must fit into.
_CALENDAR_MIN_MS = {"week": 7 * DAY_MS, "month": 28 * DAY_MS, "quarter": 89 * DAY_MS}
_EVERY_MS = {"day": DAY_MS, "week": 7 * DAY_MS, "month": 28 * DAY_MS}
_GOOD_IF_RE = re.compile(r"\s*sli\s*(>=|>|<=|<)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*")
_GOOD_IF_EXPECTED = 'sli, then >=, >, <= or <, then a ratio from 0 to 1, like "sli >= 0.95"'
_WINDOW_EXPECTED = "a duration like 30d, or {calendar: week|month|quarter, timezone: Europe/Berlin}"


def label_name_problem(name: str) -> str | None:
    """Why `name` cannot label an SLO series, or None."""
    if not _LABEL_RE.fullmatch(name):
        return f'invalid label name "{name}"'
    if name in _RESERVED_LABELS:
        return f'label name "{name}" is reserved'
    return None


def _timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f'unknown time zone "{name}"'
    return None


def _positive(value: int) -> str | None:
    return None if value > 0 else "duration must be positive"


SLO_NAME = checked(STR, lambda n: None if NAME_RE.fullmatch(n) else f'invalid name "{n}"',
                   _NAME_EXPECTED)
LABELS = map_of(STR, label_name_problem, _LABELS_EXPECTED)
LABEL_NAMES = list_of(checked(STR, label_name_problem, _LABELS_EXPECTED))
TIMEZONE = checked(STR, _timezone_problem, "an IANA time zone like Europe/Berlin or UTC")
POSITIVE_DURATION = checked(DURATION, _positive, "a positive duration like 5m")
SERIES_LIMIT = checked(INT, lambda n: None if n >= 1 else f"series_limit {n} is below 1",
                       "at least 1")


def read_slos(top: MapReader, path: str, problems: Problems, seen: dict[str, Source]) -> list[SLO]:
    """Every valid SLO under `slos:`; names already in `seen` (other files too) are errors."""
    slos: list[SLO] = []
    for ctx, node in top.items("slos"):
        slo = _read_slo(path, ctx, node, problems, seen)
        if slo is not None:
            slos.append(slo)
    return slos


def _read_slo(path: str, ctx: str, node: yaml.Node, problems: Problems,
              seen: dict[str, Source]) -> SLO | None:
    before = problems.error_count()
    source = Source(path, *position(node))
    with MapReader(node, ctx, problems) as s:
        if not s.ok:
            return None
        s.name_by("name")
        name = s.required("name", SLO_NAME)
        if name in seen:
            s.error("name", f'duplicate SLO name "{name}" (first at {seen[name]})',
                    "SLO names unique across all rule files")
        elif name:
            seen[name] = source
        service = s.required("service", STR)
        description = s.optional("description", STR, "")
        owner = s.optional("owner", STR, "")
        labels = s.optional("labels", LABELS, {})
        objective = _read_objective(s)
        window = s.required("window", WINDOW)
        sli = s.required("sli", SLI_KIND)
        budgeting = s.optional("budgeting", BUDGETING, None)
        if budgeting is not None and window_min_ms(window) and (
                budgeting.slice_ms >= window_min_ms(window)):
            s.error("budgeting", f"slice {format_duration(budgeting.slice_ms)} is not shorter "
                    "than the window", "a slice like 1m or 5m")
        group_by = s.optional("group_by", LABEL_NAMES, [])
        for dup in sorted({g for g in group_by if group_by.count(g) > 1}):
            s.error("group_by", f'label "{dup}" listed twice', "each label once")
        no_data = s.optional("no_data", one_of("ignore", "good", "bad"), "ignore")
        series_limit = s.optional("series_limit", SERIES_LIMIT, 100)
        maintenance = s.optional("maintenance", list_of(MAINTENANCE), [])
        alerting = _read_alerting(s, window)
    if problems.error_count() != before:
        return None
    return SLO(
        name=name, service=service, objective_percent=objective, window=window, sli=sli,
        description=description, owner=owner, labels=tuple(sorted(labels.items())),
        budgeting=budgeting, group_by=tuple(group_by), no_data=no_data,
        maintenance=tuple(maintenance), alerting=alerting, series_limit=series_limit,
        source=source,
    )


def _read_objective(s: MapReader) -> float:
    before = s.problems.error_count()
    objective = s.required("objective", FLOAT)
    if s.problems.error_count() != before:
        return objective
    shown = format_number(objective)
    if not 0 < objective < 100:
        s.error("objective", f"objective {shown} is out of range",
                "a percent above 0 and below 100, like 99.9")
    elif objective <= 1:
        # 0.999 is valid (0.999 %), but far more often a ratio written where a percent belongs.
        s.warn("objective", f"objective {shown} looks like a ratio", "a percent like 99.9")
    return objective


def window_min_ms(window: Window) -> int:
    """The shortest length the window can have (a calendar month: 28 days)."""
    if isinstance(window, RollingWindow):
        return window.duration_ms
    return _CALENDAR_MIN_MS[window.unit]


def _read_window(node: yaml.Node, ctx: str, problems: Problems) -> Window:
    if isinstance(node, yaml.MappingNode):
        before = problems.error_count()
        with MapReader(node, ctx, problems) as w:
            unit = w.required("calendar", one_of(*CALENDAR_UNITS))
            timezone = w.optional("timezone", TIMEZONE, "UTC")
        if problems.error_count() != before:
            raise Invalid()
        return CalendarWindow(unit=unit, timezone=timezone)
    try:
        duration = DURATION.read(node, ctx, problems)
    except Invalid:
        problems.items[-1] = dataclasses.replace(problems.items[-1], expected=_WINDOW_EXPECTED)
        raise
    if duration <= 0:
        problems.error(node, ctx, "window must be positive", _WINDOW_EXPECTED)
        raise Invalid()
    return RollingWindow(duration_ms=int(duration))


WINDOW: Kind[Window] = Kind(_WINDOW_EXPECTED, _read_window, lambda: RollingWindow(0))


def _read_good_if(node: yaml.Node, ctx: str, problems: Problems) -> tuple[str, float]:
    text = STR.read(node, ctx, problems)
    m = _GOOD_IF_RE.fullmatch(text)
    if m is None:
        problems.error(node, ctx, f'cannot read good_if "{text}"', _GOOD_IF_EXPECTED)
        raise Invalid()
    threshold = float(m.group(2))
    if threshold > 1:
        problems.error(node, ctx, f"good_if threshold {m.group(2)} is above 1", _GOOD_IF_EXPECTED)
        raise Invalid()
    return m.group(1), threshold


def _read_budgeting(node: yaml.Node, ctx: str, problems: Problems) -> Timeslices | None:
    expected = 'occurrences, or {timeslices: {slice: 1m, good_if: "sli >= 0.95"}}'
    if not isinstance(node, yaml.MappingNode):
        method = one_of("occurrences", "timeslices").read(node, ctx, problems)
        if method == "timeslices":
            problems.error(node, ctx, "timeslices need a slice and a good_if", expected)
            raise Invalid()
        return None
    before = problems.error_count()
    with MapReader(node, ctx, problems) as b:
        t = b.mapping("timeslices")
        if t is None and b.ok:
            b.error(None, 'missing required key "timeslices"', expected)
        slice_ms, comparator, threshold = 0, ">=", 0.0
        if t is not None:
            with t:
                slice_ms = t.required("slice", POSITIVE_DURATION)
                comparator, threshold = t.required(
                    "good_if", Kind(_GOOD_IF_EXPECTED, _read_good_if, lambda: (">=", 0.0)))
                if slice_ms and DAY_MS % slice_ms:
                    # Slices must tile every day, so they align at calendar and maintenance
                    # boundaries in any time zone.
                    t.error("slice", f"slice {format_duration(slice_ms)} does not divide a day",
                            "a slice like 1m, 5m or 1h")
    if problems.error_count() != before:
        raise Invalid()
    return Timeslices(slice_ms=int(slice_ms), comparator=comparator, threshold=threshold)


BUDGETING: Kind[Timeslices | None] = Kind("occurrences or {timeslices: ...}", _read_budgeting,
                                          lambda: None)


def _read_local_time(node: yaml.Node, ctx: str, problems: Problems) -> str:
    text = STR.read(node, ctx, problems)
    expected = "a local date-time like 2026-12-24T00:00 (the time zone goes in timezone)"
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        problems.error(node, ctx, f'cannot read start "{text}"', expected)
        raise Invalid() from None
    if start.tzinfo is not None:
        problems.error(node, ctx, f'start "{text}" has a UTC offset', expected)
        raise Invalid()
    return start.isoformat()


def _read_maintenance(node: yaml.Node, ctx: str, problems: Problems) -> MaintenanceWindow:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as m:
        start = m.required("start", Kind("a local date-time", _read_local_time, str))
        duration = m.required("duration", POSITIVE_DURATION)
        timezone = m.optional("timezone", TIMEZONE, "UTC")
        every = m.optional("every", one_of(*_EVERY_MS), None)
        description = m.optional("description", STR, "")
        if every is not None and duration >= _EVERY_MS[every]:
            m.error("duration", f"duration {duration} is not shorter than a {every}",
                    "windows that do not overlap")
        if every == "month" and start and datetime.fromisoformat(start).day > 28:
            m.error("start", "a monthly window must start on day 1 to 28",
                    "a day every month has")
    if problems.error_count() != before:
        raise Invalid()
    return MaintenanceWindow(start=start, duration_ms=int(duration), timezone=timezone,
                             every=every, description=description)


MAINTENANCE: Kind[MaintenanceWindow] = Kind("a maintenance window", _read_maintenance,
                                            lambda: MaintenanceWindow("", 0))


def default_tiers() -> tuple[AlertTier, ...]:
    """The four default tiers as model objects."""
    return tuple(AlertTier(name=name, long_window_ms=long_ms, short_window_ms=short_ms,
                           budget_fraction=fraction, severity=severity)
                 for name, long_ms, short_ms, fraction, severity in DEFAULT_TIERS)


def _read_alerting(s: MapReader, window: Window) -> SLOAlerting:
    defaults = SLOAlerting(tiers=default_tiers())
    a = s.mapping("alerting")
    if a is None:
        _check_tier_windows(s, "window", defaults.tiers, window)
        return defaults
    with a:
        runbook_url = a.optional("runbook_url", STR, "")
        parts = urllib.parse.urlsplit(runbook_url)
        if runbook_url and (parts.scheme not in ("http", "https") or not parts.netloc):
            a.error("runbook_url", f'runbook_url "{runbook_url}" is not a web address',
                    "an http:// or https:// URL")
        labels = a.optional("labels", LABELS, {})
        annotations = a.optional("annotations", map_of(STR), {})
        for key, text in annotations.items():
            problem = check_template(text)
            if problem is not None:
                # Point at the template itself, not at the start of the mapping.
                node = a.value_node("annotations")
                a.problems.error(mapping_value(node, key) or node, a.child("annotations"),
                                 f'annotation "{key}": {problem}', "a valid Go template")
        tiers = a.optional("tiers", Kind("a mapping of tier names", _read_tiers, default_tiers),
                           defaults.tiers)
        _check_tier_windows(a, "tiers", tiers, window)
        budget_exhausted = a.optional("budget_exhausted", BOOL, True)
        no_data_for = a.optional("no_data", Kind("false or {for: 10m}", _read_no_data, lambda: 0),
                                 defaults.no_data_for_ms)
    return SLOAlerting(tiers=tiers, budget_exhausted=budget_exhausted, no_data_for_ms=no_data_for,
                       labels=tuple(sorted(labels.items())),
                       annotations=tuple(sorted(annotations.items())), runbook_url=runbook_url)


def _check_tier_windows(r: MapReader, key: str, tiers: tuple[AlertTier, ...],
                        window: Window) -> None:
    """A tier whose long window exceeds the SLO window would judge budget the SLO never had."""
    limit = window_min_ms(window)
    for tier in tiers:
        if limit and tier.enabled and tier.long_window_ms > limit:
            r.error(key, f'tier "{tier.name}" long window {format_duration(tier.long_window_ms)} '
                    f"is longer than the SLO window",
                    f"a shorter long_window, or {tier.name}: false")


def _read_no_data(node: yaml.Node, ctx: str, problems: Problems) -> int | None:
    if node.tag == TAG_BOOL:
        return 10 * 60_000 if BOOL.read(node, ctx, problems) else None
    if not isinstance(node, yaml.MappingNode):
        raise mismatch(node, ctx, problems, "false, or {for: 15m}")
    before = problems.error_count()
    with MapReader(node, ctx, problems) as n:
        for_ms = n.required("for", POSITIVE_DURATION)
    if problems.error_count() != before:
        raise Invalid()
    return int(for_ms)


_TIER_NEEDS = "long_window, short_window, and budget_fraction or factor"


def _read_tiers(node: yaml.Node, ctx: str, problems: Problems) -> tuple[AlertTier, ...]:
    if not isinstance(node, yaml.MappingNode):
        problems.error(node, ctx, "got a list" if isinstance(node, yaml.SequenceNode)
                       else "got a value", "a mapping of tier names to settings or false")
        raise Invalid()
    tiers = {t.name: t for t in default_tiers()}
    before = problems.error_count()
    for name, (key_node, value_node) in flatten(node, ctx, problems).items():
        tier_ctx = f"{ctx}.{name}"
        if not NAME_RE.fullmatch(name):
            problems.error(key_node, ctx, f'invalid tier name "{name}"', _NAME_EXPECTED)
            continue
        if value_node.tag == TAG_BOOL:
            enabled = BOOL.read(value_node, tier_ctx, problems)
            if name in tiers:
                tiers[name] = dataclasses.replace(tiers[name], enabled=enabled)
            else:
                problems.error(value_node, tier_ctx, f'"{name}" is not a default tier',
                               "settings for a new tier (" + _TIER_NEEDS + "), or false "
                               "for one of " + ", ".join(t[0] for t in DEFAULT_TIERS))
            continue
        tier = _read_tier(name, tiers.get(name), value_node, tier_ctx, problems)
        if tier is not None:
            tiers[name] = tier
    if problems.error_count() != before:
        raise Invalid()
    return tuple(tiers.values())


def _read_tier(name: str, default: AlertTier | None, node: yaml.Node, ctx: str,
               problems: Problems) -> AlertTier | None:
    before = problems.error_count()
    with MapReader(node, ctx, problems) as t:
        if default is None and t.ok:
            for key in ("long_window", "short_window"):
                if not t.has(key):
                    t.error(None, f'new tier needs "{key}"', _TIER_NEEDS)
            if not t.has("budget_fraction") and not t.has("factor"):
                t.error(None, 'new tier needs "budget_fraction" or "factor"', _TIER_NEEDS)
        base = default or AlertTier(name, 0, 0, None)
        long_ms = t.optional("long_window", POSITIVE_DURATION, base.long_window_ms)
        short_ms = t.optional("short_window", POSITIVE_DURATION, base.short_window_ms)
        fraction = t.optional("budget_fraction", FLOAT, base.budget_fraction)
        factor = t.optional("factor", FLOAT, base.factor)
        severity = t.optional("severity", STR, base.severity)
        for_ms = t.optional("for", DURATION, base.for_ms)
        if t.has("budget_fraction") and t.has("factor"):
            t.error("factor", "give budget_fraction or factor, not both",
                    "one way to set the burn rate")
        elif t.has("factor"):
            fraction = None  # an explicit factor replaces the default budget fraction
        if t.has("budget_fraction") and fraction is not None and not 0 < fraction <= 1:
            t.error("budget_fraction", f"budget_fraction {format_number(fraction)} is out of "
                    "range", "a share of the budget above 0, at most 1, like 0.02")
        if t.has("factor") and factor is not None and factor <= 0:
            t.error("factor", f"factor {format_number(factor)} must be positive",
                    "a burn rate like 14.4")
        if long_ms and short_ms and short_ms >= long_ms:
            t.error("short_window", f"short_window {format_duration(short_ms)} is not shorter "
                    f"than long_window {format_duration(long_ms)}", "a short window like 5m")
        if not severity:
            t.error("severity", "severity must not be empty", "page, ticket or your own")
    if problems.error_count() != before:
        return None
    return AlertTier(name=name, long_window_ms=int(long_ms), short_window_ms=int(short_ms),
                     budget_fraction=fraction, factor=factor, severity=severity,
                     for_ms=int(for_ms), enabled=True)


def mapping_value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node under `key` in a YAML mapping node, or None (for precise positions)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return value_node  # type: ignore[no-any-return]
    return None
