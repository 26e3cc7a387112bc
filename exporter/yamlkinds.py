"""Value kinds for strict YAML (config.yaml + rules -> load + validate): str, int, duration, ..."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import yaml
from yaml.constructor import SafeConstructor

from exporter.durations import DURATION_EXPECTED, Duration, DurationError, parse_duration
from exporter.yamlnodes import (
    TAG_BOOL,
    TAG_FLOAT,
    TAG_INT,
    TAG_NULL,
    TAG_STR,
    Invalid,
    Kind,
    Problems,
    child_context,
    flatten,
    mismatch,
)

T = TypeVar("T")

# Scalars are converted with PyYAML's safe constructors only, so YAML 1.1 spellings
# (`0x1F`, `1_000`, `yes`) read as Prometheus's decoder reads them.
_SCALARS = SafeConstructor()


def scalar(expected: str, tags: frozenset[str], convert: Callable[[yaml.ScalarNode], T],
           zero: T) -> Kind[T]:
    """A scalar kind accepting nodes with the given resolved tags (empty set: any scalar)."""

    def read(node: yaml.Node, ctx: str, problems: Problems) -> T:
        if not isinstance(node, yaml.ScalarNode) or node.tag == TAG_NULL:
            raise mismatch(node, ctx, problems, expected)
        if tags and node.tag not in tags:
            raise mismatch(node, ctx, problems, expected)
        try:
            return convert(node)
        except (ValueError, yaml.YAMLError):
            raise mismatch(node, ctx, problems, expected) from None

    return Kind(expected, read, lambda: zero)


def _to_duration(node: yaml.ScalarNode) -> Duration:
    try:
        return parse_duration(node.value)
    except DurationError as exc:
        raise ValueError(str(exc)) from exc


def _to_bool(node: yaml.ScalarNode) -> bool:
    return bool(_SCALARS.construct_yaml_bool(node))


def _to_int(node: yaml.ScalarNode) -> int:
    return int(_SCALARS.construct_yaml_int(node))


def _to_float(node: yaml.ScalarNode) -> float:
    if node.tag == TAG_INT:
        return float(_SCALARS.construct_yaml_int(node))
    return float(_SCALARS.construct_yaml_float(node))


# Like Prometheus's YAML decoder, a string field takes any scalar's text (`version: 1.2`).
STR: Kind[str] = scalar("a string", frozenset(), lambda n: str(n.value), "")
INT: Kind[int] = scalar("an integer", frozenset({TAG_INT}), _to_int, 0)
FLOAT: Kind[float] = scalar("a number", frozenset({TAG_INT, TAG_FLOAT}), _to_float, 0.0)
BOOL: Kind[bool] = scalar("true or false", frozenset({TAG_BOOL}), _to_bool, False)
DURATION: Kind[Duration] = scalar(DURATION_EXPECTED, frozenset({TAG_STR, TAG_INT}), _to_duration,
                                  Duration(0))


def checked(kind: Kind[T], check: Callable[[T], str | None], expected: str = "") -> Kind[T]:
    """A kind whose value must also pass `check`, which returns a problem or None."""

    def read(node: yaml.Node, ctx: str, problems: Problems) -> T:
        value = kind.read(node, ctx, problems)
        message = check(value)
        if message is not None:
            problems.error(node, ctx, message, expected)
            raise Invalid()
        return value

    return Kind(expected or kind.expected, read, kind.zero)


def one_of(*values: str, ignore_case: bool = False) -> Kind[str]:
    """A string from a fixed set; the result is the canonical spelling from `values`."""
    expected = "one of " + ", ".join(values)
    canonical = {(v.lower() if ignore_case else v): v for v in values}

    def read(node: yaml.Node, ctx: str, problems: Problems) -> str:
        text = STR.read(node, ctx, problems)
        found = canonical.get(text.lower() if ignore_case else text)
        if found is None:
            problems.error(node, ctx, f"unknown value {json.dumps(text)}", expected)
            raise Invalid()
        return found

    return Kind(expected, read, lambda: values[0])


def list_of(kind: Kind[T]) -> Kind[list[T]]:
    """A YAML list whose items are all `kind`; every bad item is reported."""

    def read(node: yaml.Node, ctx: str, problems: Problems) -> list[T]:
        if not isinstance(node, yaml.SequenceNode):
            raise mismatch(node, ctx, problems, f"a list of {kind.expected}")
        out: list[T] = []
        failed = False
        for i, item in enumerate(node.value):
            try:
                out.append(kind.read(item, f"{ctx}[{i}]", problems))
            except Invalid:
                failed = True
        if failed:
            raise Invalid()
        return out

    return Kind(f"a list of {kind.expected}", read, list)


def map_of(kind: Kind[T], key_check: Callable[[str], str | None] | None = None,
           key_expected: str = "") -> Kind[dict[str, T]]:
    """A mapping from string keys to `kind`; duplicate and failing keys are reported."""

    def read(node: yaml.Node, ctx: str, problems: Problems) -> dict[str, T]:
        if not isinstance(node, yaml.MappingNode):
            raise mismatch(node, ctx, problems, f"a mapping of names to {kind.expected}")
        out: dict[str, T] = {}
        before = problems.error_count()
        pairs = flatten(node, ctx, problems)
        failed = problems.error_count() != before
        for key_node, value_node in pairs.values():
            key = str(key_node.value)
            message = key_check(key) if key_check else None
            if message is not None:
                problems.error(key_node, ctx, message, key_expected)
                failed = True
                continue
            try:
                out[key] = kind.read(value_node, child_context(ctx, key), problems)
            except Invalid:
                failed = True
        if failed:
            raise Invalid()
        return out

    return Kind(f"a mapping of names to {kind.expected}", read, dict)
