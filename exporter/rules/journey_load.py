"""Rule files -> journeys and improvements model: both sections read strictly, file:line:col."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import yaml

from exporter.durations import format_duration
from exporter.errors import Problem
from exporter.rules.journey_model import HOUR_MS, LONG_WINDOW_MS, Improvement, Journey, Stage
from exporter.rules.model import Source
from exporter.rules.slo_load import NAME_RE, POSITIVE_DURATION, SLO_NAME
from exporter.rules.slo_sli_load import SELECTOR, expression_problem
from exporter.rules.value_load import ValueScope, name_item
from exporter.rules.value_model import Parameter
from exporter.units import money_per, parse_unit
from exporter.yamlkinds import FLOAT, STR, checked, list_of, one_of
from exporter.yamlnodes import TAG_FLOAT, TAG_INT, Invalid, Kind, MapReader, Problems, position

_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_DATE_EXPECTED = "a date like 2026-01-31, or a time like 2026-01-31T12:00:00Z (UTC if no offset)"
_VALUE_EXPECTED = "a number (money per success in the journey's currency)"

INSTANT = checked(STR, expression_problem, "a PromQL expression that returns one series")
CURRENCY = checked(STR, lambda c: None if _CURRENCY_RE.fullmatch(c) else f'invalid currency "{c}"',
                   "an ISO 4217 code like EUR")


def _read_date(node: yaml.Node, ctx: str, problems: Problems) -> int:
    text = STR.read(node, ctx, problems).strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        problems.error(node, ctx, f'cannot read date "{text}"', _DATE_EXPECTED)
        raise Invalid() from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


DATE: Kind[int] = Kind(_DATE_EXPECTED, _read_date, int)


def _read_value_per_success(node: yaml.Node, ctx: str, problems: Problems) -> float:
    value = FLOAT.read(node, ctx, problems)
    if value < 0:
        problems.error(node, ctx, "value_per_success must not be negative", _VALUE_EXPECTED)
        raise Invalid()
    return value


VALUE_PER_SUCCESS: Kind[float] = Kind(_VALUE_EXPECTED, _read_value_per_success, float)
SLO_NAMES = list_of(SLO_NAME)


def read_journeys(top: MapReader, path: str, problems: Problems, seen: dict[str, Source],
                  scope: ValueScope) -> list[Journey]:
    """Every valid journey under `journeys:`; names already in `seen` are errors.

    `scope` holds the parameters a stage's `value_per_success: $name` may use.
    """
    journeys: list[Journey] = []
    for ctx, node in top.items("journeys"):
        journey = _read_journey(path, ctx, node, problems, seen, scope)
        if journey is not None:
            journeys.append(journey)
    return journeys


def read_improvements(top: MapReader, path: str, problems: Problems,
                      seen: dict[str, Source]) -> list[Improvement]:
    """Every valid register entry under `improvements:`; names already in `seen` are errors."""
    out: list[Improvement] = []
    for ctx, node in top.items("improvements"):
        improvement = _read_improvement(path, ctx, node, problems, seen)
        if improvement is not None:
            out.append(improvement)
    return out


def _read_name(r: MapReader, source: Source, seen: dict[str, Source], what: str) -> str:
    name_item(r, what)
    name = r.required("name", SLO_NAME)
    if name in seen:
        r.error("name", f'duplicate {what} name "{name}" (first at {seen[name]})',
                f"{what} names unique across all rule files")
    elif name:
        seen[name] = source
    return name


def _read_journey(path: str, ctx: str, node: yaml.Node, problems: Problems,
                  seen: dict[str, Source], scope: ValueScope) -> Journey | None:
    before = problems.error_count()
    source = Source(path, *position(node))
    with MapReader(node, ctx, problems) as j:
        if not j.ok:
            return None
        name = _read_name(j, source, seen, "journey")
        owner = j.required("owner", STR)
        description = j.optional("description", STR, "")
        window = j.required("window", POSITIVE_DURATION)
        if window > LONG_WINDOW_MS and window % HOUR_MS:
            # A long window is a sum of hourly series (exporter/journeys.py): whole hours only.
            j.error("window", f"window {format_duration(int(window))} is longer than "
                    f"{format_duration(LONG_WINDOW_MS)} but not whole hours",
                    "whole hours, like 7d or 36h")
        currency = j.optional("currency", CURRENCY, "").lower()
        stages: list[Stage] = []
        for stage_ctx, stage_node in j.items("stages"):
            stage = _read_stage(path, (j.where, stage_ctx), stage_node, problems, scope, currency)
            if stage is not None:
                stages.append(stage)
        if not j.has("stages"):
            j.error(None, 'missing required key "stages"', "a list of stages in journey order")
        elif not stages and problems.error_count() == before:
            j.error("stages", "a journey needs at least one stage", "a list of stages")
        names = [s.name for s in stages]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            j.error("stages", f'stage "{dup}" listed twice', "each stage once")
        if any(s.has_value for s in stages) and not currency:
            j.error(None, "value_per_success needs the journey's currency", "currency: EUR")
    if problems.error_count() != before:
        return None
    return Journey(name=name, owner=owner, window_ms=int(window), stages=tuple(stages),
                   description=description, currency=currency, source=source)


def _read_stage(path: str, ctxs: tuple[str, str], node: yaml.Node, problems: Problems,
                scope: ValueScope, currency: str) -> Stage | None:
    before = problems.error_count()
    journey_ctx, ctx = ctxs
    with MapReader(node, ctx, problems) as s:
        if not s.ok:
            return None
        name_item(s, "stage", journey_ctx)
        name = s.required("name", checked(STR, lambda n: None if NAME_RE.fullmatch(n)
                                          else f'invalid stage name "{n}"',
                                          "a name like explore or co-create"))
        attempts = s.required("attempts", SELECTOR)
        successes = s.required("successes", SELECTOR)
        value, parameter = None, None
        ref = s.value_node("value_per_success")
        if isinstance(ref, yaml.ScalarNode) and ref.tag not in (TAG_INT, TAG_FLOAT) and \
                str(ref.value).startswith("$"):
            parameter = _value_parameter(s, str(ref.value), scope, currency)
        else:
            value = s.optional("value_per_success", VALUE_PER_SUCCESS, None)
        touchpoints = s.optional("touchpoints", SLO_NAMES, [])
        backstage = s.optional("backstage", SLO_NAMES, [])
    if problems.error_count() != before:
        return None
    return Stage(name=name, attempts=attempts, successes=successes, value_per_success=value,
                 value_parameter=parameter, touchpoints=tuple(touchpoints),
                 backstage=tuple(backstage),
                 source=Source(path, *position(node)))


def _value_parameter(s: MapReader, ref: str, scope: ValueScope,
                     currency: str) -> Parameter | None:
    """The parameter `$name` names when it is money per event in the journey's currency."""
    key = "value_per_success"
    param = scope.parameters.get(ref[1:])
    if param is None:
        s.error(key, f'unknown parameter "{ref}"',
                "a parameter defined in this file or an earlier one")
        return None
    code = money_per(parse_unit(param.unit), "events")
    if code is None:
        s.error(key, f"parameter {ref} is in {param.unit}",
                "a parameter in money per success, like EUR/event")
        return None
    if currency and code.lower() != currency:
        s.error(key, f"parameter {ref} is in {param.unit}, the journey counts in "
                f"{currency.upper()}", f"a parameter in {currency.upper()}/event")
        return None
    return param


def _read_improvement(path: str, ctx: str, node: yaml.Node, problems: Problems,
                      seen: dict[str, Source]) -> Improvement | None:
    before = problems.error_count()
    source = Source(path, *position(node))
    with MapReader(node, ctx, problems) as i:
        if not i.ok:
            return None
        name = _read_name(i, source, seen, "improvement")
        owner = i.required("owner", STR)
        description = i.optional("description", STR, "")
        metric = i.required("metric", INSTANT).strip()
        before_direction = problems.error_count()
        direction = i.required("direction", one_of("up", "down"))
        direction_ok = problems.error_count() == before_direction
        baseline, at_ms = None, 0
        b = i.mapping("baseline")
        if b is None:
            i.required("baseline", Kind("{value: 120, at: 2026-01-01} or {at: 2026-01-01}",
                                        lambda *_: 0, int))
        else:
            with b:
                baseline = b.optional("value", FLOAT, None)
                at_ms = b.required("at", DATE)
        target, by_ms = 0.0, 0
        t = i.mapping("target")
        if t is None:
            i.required("target", Kind("{value: 90, by: 2026-06-30}", lambda *_: 0, int))
        else:
            with t:
                target = t.required("value", FLOAT)
                by_ms = t.required("by", DATE)
        if at_ms and by_ms and by_ms <= at_ms:
            i.error("target", "target date is not after the baseline date",
                    "a due date after baseline.at")
        # A given baseline at or past its target leaves no way to go: progress from it would
        # divide by zero or run backwards. (A measured one is only known at run time: see
        # exporter/improvements.py.)
        if baseline is not None and target == baseline:
            i.error("target", f"baseline {baseline:g} already meets the target {target:g}",
                    "a target to move toward: above the baseline for direction up, "
                    "below it for direction down")
        elif direction_ok and baseline is not None and (target > baseline) != (direction == "up"):
            up = direction == "up"
            i.error("target", f"baseline {baseline:g} is already past the target {target:g} "
                    f"for direction {direction}", f"a target {'above' if up else 'below'} "
                    f"the baseline, or direction {'down' if up else 'up'}")
    if problems.error_count() != before:
        return None
    return Improvement(name=name, owner=owner, metric=metric, baseline_at_ms=at_ms,
                       target=target, target_by_ms=by_ms, direction=direction,
                       baseline=baseline, description=description, source=source)


def check_slo_references(journeys: list[Journey], slos: dict[str, Source]) -> list[Problem]:
    """Warnings for touchpoints and backstage naming no SLO of these files.

    A warning, not an error: `check rules` reads one file at a time, and the SLOs usually
    live in another file of the set.
    """
    out: list[Problem] = []
    if not slos:  # a journeys file checked on its own: its SLOs are in another file
        return out
    for journey in journeys:
        for stage in journey.stages:
            for key, names in (("touchpoints", stage.touchpoints), ("backstage", stage.backstage)):
                for name in names:
                    if name not in slos:
                        src = stage.source
                        out.append(Problem(src.file, src.line, src.col,
                                           f'journey "{journey.name}", stage "{stage.name}", '
                                           f"{key}", f'unknown SLO "{name}"',
                                           "the name of an SLO in these rule files",
                                           warning=True))
    return out
