"""Tests for the strict YAML layer: safe composing, positions, kinds, strict mappings, durations."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.durations import Duration, DurationError, format_duration, parse_duration
from exporter.errors import Problem, UserError
from exporter.yamlkinds import (
    BOOL,
    DURATION,
    FLOAT,
    INT,
    STR,
    checked,
    list_of,
    map_of,
    one_of,
)
from exporter.yamlnodes import Kind, MapReader, Problems, compose_text


def _read(text: str, kind: Kind[Any]) -> tuple[Any, list[str]]:
    """Read key `v` of a one-line document with `kind`; returns (value, problem lines)."""
    problems = Problems("f.yaml")
    root = compose_text(text, problems)
    with MapReader(root, "", problems) as m:
        value = m.optional("v", kind, "<default>")
    return value, [str(p) for p in problems.items]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        pytest.param("v: hello", STR, "hello", id="str"),
        pytest.param("v: 1.2", STR, "1.2", id="str-takes-number-text-like-prometheus"),
        pytest.param("v: 0x1F", INT, 31, id="int-hex"),
        pytest.param("v: 1_000", INT, 1000, id="int-underscore"),
        pytest.param("v: 2", FLOAT, 2.0, id="float-from-int"),
        pytest.param("v: .inf", FLOAT, float("inf"), id="float-inf"),
        pytest.param("v: yes", BOOL, True, id="bool-yaml11-yes"),
        pytest.param("v: false", BOOL, False, id="bool-false"),
        pytest.param("v: 1m30s", DURATION, 90_000, id="duration-compound"),
        pytest.param("v: 0", DURATION, 0, id="duration-zero"),
        pytest.param("v: !!str 15", STR, "15", id="explicit-standard-tag-allowed"),
        pytest.param("v: [a, b]", list_of(STR), ["a", "b"], id="list"),
        pytest.param("v: {a: 1, b: 2}", map_of(INT), {"a": 1, "b": 2}, id="map"),
        pytest.param("v: HTTPS", one_of("http", "https", ignore_case=True), "https",
                     id="enum-canonical-spelling"),
        pytest.param("v: ~", INT, "<default>", id="null-is-absent"),
    ],
)
def test_kinds_accept(text: str, kind: Kind[Any], value: Any) -> None:
    """Each kind reads the values Prometheus's decoder would accept."""
    got, problems = _read(text, kind)
    assert problems == []
    assert got == value


@pytest.mark.parametrize(
    ("text", "kind", "problems"),
    [
        pytest.param("v: [1]", STR, ["f.yaml:1:4: v: got a list; expected a string"],
                     id="str-list"),
        pytest.param('v: "3"', INT, ['f.yaml:1:4: v: got "3"; expected an integer'],
                     id="int-quoted"),
        pytest.param("v: 1.5", INT, ["f.yaml:1:4: v: got 1.5; expected an integer"],
                     id="int-float"),
        pytest.param("v: maybe", BOOL, ['f.yaml:1:4: v: got "maybe"; expected true or false'],
                     id="bool-word"),
        pytest.param("v: 15", DURATION, ["f.yaml:1:4: v: got 15; expected a duration like 15s, "
                                         "1m30s, 1h, 30d (units y w d h m s ms, largest first)"],
                     id="duration-no-unit"),
        pytest.param("v: ftp", one_of("http", "https"),
                     ['f.yaml:1:4: v: unknown value "ftp"; expected one of http, https'],
                     id="enum"),
        pytest.param("v: [1, x, 2, y]", list_of(INT),
                     ['f.yaml:1:8: v[1]: got "x"; expected an integer',
                      'f.yaml:1:14: v[3]: got "y"; expected an integer'],
                     id="list-reports-every-bad-item"),
        pytest.param("v: {a: 1, a: 2}", map_of(INT),
                     ['f.yaml:1:11: v: duplicate key "a" (first at line 1:5)'], id="map-duplicate"),
        pytest.param("v: -3", checked(INT, lambda n: "negative" if n < 0 else None, ">= 0"),
                     ["f.yaml:1:4: v: negative; expected >= 0"], id="custom-check"),
    ],
)
def test_kinds_reject(text: str, kind: Kind[Any], problems: list[str]) -> None:
    """Bad values are reported at their own line:col, every one of them."""
    got, found = _read(text, kind)
    assert got == "<default>"
    assert found == problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("a: !!python/object/apply:os.system [ls]", "f.yaml:1:4: invalid YAML: "
                     "unsupported tag !!python/object/apply:os.system; expected plain YAML "
                     "without tags", id="python-object"),
        pytest.param("a: !!binary aGk=", "f.yaml:1:4: invalid YAML: unsupported tag !!binary; "
                     "expected plain YAML without tags", id="binary"),
        pytest.param("a: !custom x", "f.yaml:1:4: invalid YAML: unsupported tag !custom; "
                     "expected plain YAML without tags", id="local-tag"),
        pytest.param("a: [1, 2", "f.yaml:1:9: invalid YAML: expected ',' or ']', but got "
                     "'<stream end>'", id="syntax"),
        pytest.param("a: 1\n---\nb: 2", "f.yaml:2:1: invalid YAML: but found another document",
                     id="two-documents"),
    ],
)
def test_compose_rejects(text: str, problem: str) -> None:
    """Tags beyond plain YAML and broken documents never reach the reader."""
    problems = Problems("f.yaml")
    assert compose_text(text, problems) is None
    assert [str(p) for p in problems.items] == [problem]


def test_alias_bomb_is_rejected() -> None:
    """A billion-laughs document is refused without expanding it."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    problems = Problems("f.yaml")
    assert compose_text("\n".join(lines), problems) is None
    assert "too large" in str(problems.items[0])


def test_merge_keys_apply_and_explicit_keys_win() -> None:
    """`<<: *base` copies keys, and a key written in the mapping overrides the merged one."""
    problems = Problems("f.yaml")
    root = compose_text("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", problems)
    with MapReader(root, "", problems) as top:
        top.value_node("base")
        m = top.mapping("m")
        assert m is not None
        with m:
            assert (m.required("x", INT), m.required("y", INT)) == (1, 3)
    assert problems.items == []


def test_mapreader_collects_every_problem() -> None:
    """Unknown, duplicate, missing keys and wrong shapes are all reported in one pass."""
    text = (
        "items:\n"
        "  - name: shop\n"
        "    intervall: 1m\n"
        "    name: again\n"
        "  - 5\n"
        "  - name:\n"
    )
    problems = Problems("f.yaml")
    root = compose_text(text, problems)
    with MapReader(root, "", problems) as top:
        for ctx, node in top.items("items"):
            with MapReader(node, ctx, problems) as item:
                item.name_by("name")
                item.required("name", STR)
                item.optional("interval", DURATION, None)
    assert [str(p) for p in problems.in_file_order()] == [
        'f.yaml:3:5: items[0] "shop": unknown key "intervall" (did you mean "interval"?); '
        "expected one of interval, name",
        'f.yaml:4:5: items[0]: duplicate key "name" (first at line 2:5)',
        "f.yaml:5:5: items[1]: got 5; expected a mapping",
        "f.yaml:6:5: items[2].name: empty value; expected a string",
    ]


def test_missing_required_key_and_hints() -> None:
    """A missing key points at the mapping; hinted keys say what to use instead."""
    problems = Problems("f.yaml")
    root = compose_text("job:\n  relabel_configs: []\n", problems)
    with MapReader(root, "", problems) as top:
        job = top.mapping("job")
        assert job is not None
        job.required("url", STR)
        job.finish({"relabel_configs": "metric_relabel_configs"})
    assert [str(p) for p in problems.items] == [
        'f.yaml:2:3: job: missing required key "url"; expected a string',
        'f.yaml:2:3: job: unsupported key "relabel_configs"; expected metric_relabel_configs',
    ]


def test_raise_if_errors_keeps_warnings_and_sorts() -> None:
    """UserError carries every problem in file order, warnings included."""
    problems = Problems("f.yaml")
    problems.error(None, "b", "later")
    problems.warn(None, "a", "note")
    with pytest.raises(UserError) as caught:
        problems.raise_if_errors()
    assert caught.value.lines() == ["f.yaml: b: later", "f.yaml: a: warning: note"]


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        pytest.param(Problem("c.yaml", 3, 5, 'targets[2] "checkout"', "bad url", "an http URL"),
                     'c.yaml:3:5: targets[2] "checkout": bad url; expected an http URL',
                     id="full"),
        pytest.param(Problem("c.yaml", 1, 1, "listen", "no port"), "c.yaml:1:1: listen: no port",
                     id="no-expectation"),
        pytest.param(Problem("ENV", 0, 0, "", "bad"), "ENV: bad", id="no-position-no-context"),
    ],
)
def test_problem_rendering(problem: Problem, text: str) -> None:
    """Problems print as `file:line:col: context: problem; expected ...`."""
    assert str(problem) == text


@pytest.mark.parametrize(
    ("text", "ms", "canonical"),
    [
        pytest.param("15s", 15_000, "15s", id="seconds"),
        pytest.param("1m30s", 90_000, "1m30s", id="compound"),
        pytest.param("90m", 5_400_000, "1h30m", id="normalised"),
        pytest.param("30d", 2_592_000_000, "30d", id="days"),
        pytest.param("1w", 604_800_000, "1w", id="week"),
        pytest.param("1y", 31_536_000_000, "1y", id="year"),
        pytest.param("90d", 7_776_000_000, "90d", id="days-not-weeks"),
        pytest.param("1s500ms", 1_500, "1s500ms", id="millis"),
        pytest.param("0", 0, "0s", id="zero"),
    ],
)
def test_durations_both_ways(text: str, ms: int, canonical: str) -> None:
    """Durations parse to milliseconds and format back as Prometheus prints them."""
    assert parse_duration(text) == ms
    assert format_duration(ms) == canonical
    assert str(Duration(ms)) == canonical


@pytest.mark.parametrize("text", ["", "15", "1.5s", "1s1m", "1h1h", "-1s", "1 s", "s"])
def test_duration_errors(text: str) -> None:
    """Anything but Prometheus's notation (units largest first, once each) is refused."""
    with pytest.raises(DurationError):
        parse_duration(text)
