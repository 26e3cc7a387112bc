"""promqltest scripts, text to commands: the parsing half of the PromQL test runner."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exporter.labels import Labels
from exporter.promql.promqltest_series import (
    HISTOGRAM,
    Point,
    ScriptError,
    parse_number,
    parse_series_line,
    read_quoted,
)

__all__ = [
    "HISTOGRAM",
    "ClearCmd",
    "Command",
    "EvalCmd",
    "Expectation",
    "ExpectedSeries",
    "LoadCmd",
    "Point",
    "ScriptError",
    "parse_duration",
    "parse_number",
    "parse_script",
    "parse_series_line",
]


@dataclass(slots=True)
class LoadCmd:
    """`load <interval>`: series to append, one point per interval from time 0."""

    line: int
    interval_ms: int
    series: list[tuple[Labels, list[Point]]]
    with_nhcb: bool = False


@dataclass(slots=True)
class ClearCmd:
    """`clear`: forget all loaded data."""

    line: int


@dataclass(slots=True)
class ExpectedSeries:
    """One expected result line: labels, points and its position in the block (from 1)."""

    labels: Labels
    points: list[Point]
    pos: int


@dataclass(slots=True)
class Expectation:
    """One `expect <kind> [msg|regex]: text` line; neither text means "any"."""

    kind: str
    message: str | None = None
    regex: str | None = None

    def matches(self, text: str) -> bool:
        """Whether an error or annotation text satisfies the expectation."""
        if self.message is not None:
            return text == self.message
        if self.regex is not None:
            return re.search(self.regex, text) is not None
        return True


@dataclass(slots=True)
class EvalCmd:
    """`eval instant|range ...` with what the query must return."""

    line: int
    expr: str
    is_range: bool
    start_ms: int
    end_ms: int
    step_ms: int
    eval_ms: int
    expects: list[Expectation] = field(default_factory=list)
    expected: list[ExpectedSeries] = field(default_factory=list)
    expected_scalar: float | None = None
    expected_string: str | None = None
    range_vector: bool = False
    exclude_from_range_mode: bool = False

    def kinds(self, kind: str) -> list[Expectation]:
        """The expectations of one kind (fail, ordered, warn, ...)."""
        return [e for e in self.expects if e.kind == kind]

    @property
    def fail(self) -> bool:
        return bool(self.kinds("fail"))

    @property
    def ordered(self) -> bool:
        return bool(self.kinds("ordered"))

    @property
    def has_histogram(self) -> bool:
        """Whether any expected point is a native histogram."""
        return any(p == HISTOGRAM for s in self.expected for p in s.points)


Command = LoadCmd | ClearCmd | EvalCmd

_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_EVAL_INSTANT = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"
)
_EVAL_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
_EXPECT = re.compile(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
_EXPECT_RANGE = re.compile(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$")
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration(text: str) -> int:
    """Prometheus's duration syntax (`1h30m`, `5m`, `0`) in milliseconds."""
    text = text.strip()
    if text == "0":
        return 0
    m = _DURATION.match(text)
    if not text or m is None or not any(m.groups()):
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DURATION_UNITS_MS, strict=True) if g)


def parse_script(text: str) -> list[Command]:
    """All commands of a script; raises ScriptError on the first malformed line."""
    # Comment lines count as blank, so (as upstream) they end a load or eval block.
    lines = ["" if ln.strip().startswith("#") else ln.strip() for ln in text.split("\n")]
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = re.split(r"[\t ]+", line, maxsplit=1)[0].lower()
        cmd: Command
        if word == "clear":
            cmd = ClearCmd(i + 1)
        elif word.startswith("load"):
            i, cmd = _parse_load(lines, i)
        elif word.startswith("eval"):
            i, cmd = _parse_eval(lines, i)
        else:
            raise ScriptError(i + 1, f"invalid command {line!r}")
        commands.append(cmd)
        i += 1
    return commands


def _parse_load(lines: list[str], i: int) -> tuple[int, LoadCmd]:
    m = _LOAD.match(lines[i])
    if m is None:
        raise ScriptError(i + 1, "invalid load command. (load[_with_nhcb] <step:duration>)")
    try:
        interval = parse_duration(m.group(2))
    except ValueError as err:
        raise ScriptError(i + 1, f"invalid step definition {m.group(2)!r}: {err}") from None
    cmd = LoadCmd(i + 1, interval, [], with_nhcb=m.group(1) == "with_nhcb")
    defined: dict[Labels, int] = {}
    while i + 1 < len(lines) and lines[i + 1]:
        i += 1
        labels, points = parse_series_line(lines[i], i + 1)
        # A later definition of the same series replaces the earlier one, as upstream.
        if labels in defined:
            cmd.series[defined[labels]] = (labels, points)
        else:
            defined[labels] = len(cmd.series)
            cmd.series.append((labels, points))
    return i, cmd


def _parse_eval(lines: list[str], i: int) -> tuple[int, EvalCmd]:
    header = lines[i]
    inst = _EVAL_INSTANT.match(header)
    rng = _EVAL_RANGE.match(header)
    if inst is None and rng is None:
        raise ScriptError(i + 1, "invalid evaluation command")
    line_no = i + 1
    try:
        if inst is not None:
            mod, at, expr = inst.group(1), inst.group(2), inst.group(3)
            t = parse_duration(at or "0")
            cmd = EvalCmd(line_no, expr, False, t, t, 0, t)
        else:
            assert rng is not None
            mod, expr = rng.group(1), rng.group(5)
            start, end, step = (parse_duration(rng.group(k)) for k in (2, 3, 4))
            if end < start:
                raise ScriptError(line_no, "end timestamp is before start timestamp")
            cmd = EvalCmd(line_no, expr, True, start, end, step, start)
    except ValueError as err:
        raise ScriptError(line_no, str(err)) from None
    if mod:
        cmd.expects.append(Expectation(mod))
    pos = 1
    while i + 1 < len(lines) and lines[i + 1]:
        i += 1
        text = lines[i]
        if cmd.fail and text.startswith("expected_fail_message"):
            message = text[len("expected_fail_message") :].strip()
            cmd.expects = [e for e in cmd.expects if e.kind != "fail"]
            cmd.expects.append(Expectation("fail", message=message))
            break  # Upstream stops reading the block here.
        if cmd.fail and text.startswith("expected_fail_regexp"):
            pattern = text[len("expected_fail_regexp") :].strip()
            cmd.expects = [e for e in cmd.expects if e.kind != "fail"]
            cmd.expects.append(Expectation("fail", regex=pattern))
            break
        if text.startswith("expect range vector"):
            _parse_range_vector(cmd, text, i + 1)
            continue
        if text.startswith("expect string"):
            cmd.expected_string = _parse_expected_string(text, i + 1)
            cmd.exclude_from_range_mode = True
            continue
        if text.split(" ")[0] == "expect":
            cmd.expects.append(_parse_expect(text, i + 1))
            continue
        number = parse_number(text)
        if number is not None:
            cmd.expected_scalar = number
            break
        labels, points = parse_series_line(text, i + 1)
        if len(points) > 1 and not cmd.is_range and not cmd.range_vector:
            raise ScriptError(i + 1, "expecting multiple values in instant evaluation not allowed")
        cmd.expected.append(ExpectedSeries(labels, points, pos))
        pos += 1
    return i, cmd


def _parse_range_vector(cmd: EvalCmd, text: str, line: int) -> None:
    m = _EXPECT_RANGE.match(text)
    if m is None:
        raise ScriptError(line, f"invalid range vector definition {text!r}")
    try:
        start, end, step = (parse_duration(m.group(k)) for k in (1, 2, 3))
    except ValueError as err:
        raise ScriptError(line, str(err)) from None
    cmd.range_vector = True
    cmd.start_ms, cmd.end_ms, cmd.step_ms, cmd.eval_ms = start, end, step, end
    cmd.exclude_from_range_mode = True


def _parse_expected_string(text: str, line: int) -> str:
    rest = text[len("expect string") :].strip()
    if len(rest) >= 2 and rest[0] == rest[-1] == "`":
        return rest[1:-1]
    if len(rest) >= 2 and rest[0] == rest[-1] == '"':
        value, end = read_quoted(rest, 0, line)
        if end == len(rest):
            return value
    raise ScriptError(line, "expected string literal not valid - a quoted string is required")


def _parse_expect(text: str, line: int) -> Expectation:
    m = _EXPECT.match(text.strip())
    if m is None:
        raise ScriptError(
            line, "invalid expect statement, must match `expect <type> <match_type>: <string>`"
        )
    kind, how, what = m.group(1), m.group(2), m.group(3)
    if how == "msg":
        return Expectation(kind, message=what.strip())
    if how == "regex":
        pattern = what.strip()
        try:
            re.compile(pattern)
        except re.error:
            raise ScriptError(line, f"invalid regex {pattern} for {kind}") from None
        return Expectation(kind, regex=pattern)
    return Expectation(kind)
