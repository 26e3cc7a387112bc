"""Journeys (rule model) -> recording rules: per-stage success and drop-off, end-to-end conversion.

Series (labels `journey`, and `stage` plus `step` (1-based position) on per-stage series); `W`
is `1h` (the last hour) or `window` (the journey's reporting window, e.g. 30d):

    journey:stage_attempts:increaseW          attempts in W (absent when the counter is absent)
    journey:stage_successes:increaseW         successes in W
    journey:stage_success:ratio_W             successes / attempts; absent without attempts
    journey:stage_dropoff:ratio_W             1 - next stage attempts / this stage successes;
                                              absent on the last stage and without successes
    journey:stage_value_realized_<cur>:increaseW   successes x value_per_success (a number or
                                              a `$parameter` in <CUR>/event: a constant is
                                              inlined, one with a history is the value in
                                              force at evaluation time, a metric-backed one
                                              is `parameter:<name>`)
    journey:conversion:ratio_W                last stage successes / first stage attempts;
                                              absent without first-stage attempts
    journey:value_realized_<cur>:increaseW    sum of the stages' realized value
    journey:stage:info                        1, with owner and window labels
    journey:stage_slo:info                    1 per SLO behind a stage: `slo`, `band` =
                                              touchpoint (the customer sees it) | backstage

A window longer than a day is not read from raw samples (the sidecar would have to keep
every scraped sample that long): its attempts and successes are the sum of the stage's
recorded 1h series at each whole hour in the window,
`sum_over_time(journey:stage_attempts:increase1h{...}[W:1h])`. So only those hourly series
are kept for W (exporter/promql/analysis.py keeps a name that is read further back than a
day on its own), and the window ends at the last whole hour, not at the evaluation time.

A ratio divides by `attempts > 0` (a filter, not `bool`), so a stage without traffic has no
ratio series instead of NaN or a made-up 0. `W` is a series-name part, not the duration, so a
dashboard reads every journey with one query whatever its window.
"""

from __future__ import annotations

from exporter import conventions as c
from exporter.compile_promql import canonical, number
from exporter.durations import format_duration
from exporter.improvements import improvement_groups
from exporter.rules.journey_model import HOUR_MS, LONG_WINDOW_MS, Journey, Stage
from exporter.rules.model import RecordingRule, RuleGroup, RuleSet
from exporter.rules.value_load import constant_expr

JOURNEY_LABEL, STAGE_LABEL, STEP_LABEL = "journey", "stage", "step"
ATTEMPTS = c.JOURNEY_ATTEMPTS
SUCCESSES = c.JOURNEY_SUCCESSES
STAGE_SUCCESS = c.JOURNEY_STAGE_SUCCESS
STAGE_DROPOFF = c.JOURNEY_STAGE_DROPOFF
STAGE_VALUE = c.JOURNEY_STAGE_VALUE
CONVERSION = c.JOURNEY_CONVERSION
VALUE = c.JOURNEY_VALUE
STAGE_INFO = c.JOURNEY_STAGE_INFO
STAGE_SLO_INFO = c.JOURNEY_STAGE_SLO_INFO
PARAMETER_PREFIX = c.PARAMETER_PREFIX


def journey_and_improvement_groups(ruleset: RuleSet, file: str | None = None) -> list[RuleGroup]:
    """One group per journey, then one per improvement (all files, or those defined in `file`)."""
    groups = [journey_group(j) for j in ruleset.journeys if file in (None, j.source.file)]
    return groups + improvement_groups(ruleset, file)


def group_name(journey: Journey) -> str:
    """The generated group's name."""
    return f"journey:{journey.name}"


def _selector(name: str, journey: Journey, stage: Stage | None = None) -> str:
    matchers = [f'{JOURNEY_LABEL}="{journey.name}"']
    if stage is not None:
        matchers.append(f'{STAGE_LABEL}="{stage.name}"')
    return f"{name}{{{', '.join(matchers)}}}"


def _value_factor(stage: Stage) -> str:
    """What one success is worth: a number, a constant parameter inlined (a history chooses
    its value by `time()`), or a metric-backed `parameter:<name>` matched onto the stage."""
    param = stage.value_parameter
    if param is None:
        assert stage.value_per_success is not None
        return number(stage.value_per_success)
    if param.value is None:
        return f"on() group_left() {PARAMETER_PREFIX}{param.name}"
    return constant_expr(param)


def journey_group(journey: Journey) -> RuleGroup:
    """Every series of one journey, in an order where each rule reads only earlier results."""
    rules: list[RecordingRule] = []
    windows = (("1h", HOUR_MS), ("_window", journey.window_ms))
    jl = ((JOURNEY_LABEL, journey.name),)

    def record(name: str, expr: str, labels: tuple[tuple[str, str], ...] = jl) -> None:
        rules.append(RecordingRule(name=name, expr=canonical(expr), labels=tuple(sorted(labels)),
                                   source=journey.source))

    for w, range_ms in windows:
        rng = format_duration(range_ms)
        ratio_w = w.lstrip("_")
        cur = journey.currency
        stages = journey.stages
        hourly = w != "1h" and range_ms > LONG_WINDOW_MS
        for i, stage in enumerate(stages):
            sl = (*jl, (STAGE_LABEL, stage.name), (STEP_LABEL, str(i + 1)))
            attempts, successes = ATTEMPTS.format(w=w), SUCCESSES.format(w=w)
            if hourly:
                for name, hour in ((attempts, ATTEMPTS), (successes, SUCCESSES)):
                    hour_series = _selector(hour.format(w="1h"), journey, stage)
                    record(name, f"sum_over_time({hour_series}[{rng}:1h])", sl)
            else:
                record(attempts, f"sum(increase({stage.attempts}[{rng}]))", sl)
                record(successes, f"sum(increase({stage.successes}[{rng}]))", sl)
            record(STAGE_SUCCESS.format(w=ratio_w),
                   f"{_selector(successes, journey, stage)} / "
                   f"({_selector(attempts, journey, stage)} > 0)", sl)
            if stage.has_value:
                record(STAGE_VALUE.format(cur=cur, w=w),
                       f"{_selector(successes, journey, stage)} * {_value_factor(stage)}", sl)
        for i, stage in enumerate(stages[:-1]):
            sl = (*jl, (STAGE_LABEL, stage.name), (STEP_LABEL, str(i + 1)))
            nxt = stages[i + 1]
            record(STAGE_DROPOFF.format(w=ratio_w),
                   f"1 - sum({_selector(ATTEMPTS.format(w=w), journey, nxt)}) / "
                   f"sum({_selector(SUCCESSES.format(w=w), journey, stage)} > 0)", sl)
        record(CONVERSION.format(w=ratio_w),
               f"sum({_selector(SUCCESSES.format(w=w), journey, stages[-1])}) / "
               f"sum({_selector(ATTEMPTS.format(w=w), journey, stages[0])} > 0)")
        if any(s.has_value for s in stages):
            record(VALUE.format(cur=cur, w=w),
                   f"sum({_selector(STAGE_VALUE.format(cur=cur, w=w), journey)})")
    window = format_duration(journey.window_ms)
    for i, stage in enumerate(journey.stages):
        sl = (*jl, (STAGE_LABEL, stage.name), (STEP_LABEL, str(i + 1)))
        record(STAGE_INFO, "vector(1)", (*sl, ("owner", journey.owner), ("window", window)))
        for band, slos in (("touchpoint", stage.touchpoints), ("backstage", stage.backstage)):
            for slo in slos:
                record(STAGE_SLO_INFO, "vector(1)", (*sl, ("slo", slo), ("band", band)))
    return RuleGroup(name=group_name(journey), file=journey.source.file, rules=tuple(rules))
