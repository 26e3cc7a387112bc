"""Strict YAML reading (config.yaml, rule files) -> typed values with file:line:col problems.

Parsing stops at the node graph (`yaml.compose` on the safe loader), so no Python object is ever
constructed from a tag; any tag outside plain YAML is an error. A `MapReader` then reads one
mapping with typed getters and collects every problem (unknown, duplicate, missing keys, wrong
types, failed checks) into a shared `Problems`, so a file reports all its errors at once.

Typical use (kinds such as STR and DURATION live in exporter.yamlkinds):

    problems = Problems(path)
    root = compose_file(path, problems)
    problems.raise_if_errors()          # a broken document has nothing to read
    with MapReader(root, "", problems) as top:
        interval = top.optional("scrape_interval", DURATION, default)
        for ctx, item in top.items("targets"):
            with MapReader(item, ctx, problems) as t:
                t.name_by("name")
                url = t.required("url", STR)
    problems.raise_if_errors()
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Generic, TypeVar

import yaml

from exporter.errors import Problem, UserError

T = TypeVar("T")
D = TypeVar("D")

_STD = "tag:yaml.org,2002:"
TAG_STR, TAG_INT, TAG_FLOAT = _STD + "str", _STD + "int", _STD + "float"
TAG_BOOL, TAG_NULL, TAG_MERGE = _STD + "bool", _STD + "null", _STD + "merge"
# Timestamps stay allowed because an unquoted date (`2025-01-31`) resolves to that tag; kinds
# read the raw text, so nothing is constructed from it.
_ALLOWED_TAGS = frozenset(
    _STD + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
)
# Aliases share nodes, so a small file can stand for a huge tree ("billion laughs"); bound it.
_MAX_EXPANDED_NODES = 1_000_000


def position(node: yaml.Node | None) -> tuple[int, int]:
    """1-based (line, col) where a node starts; (0, 0) for no node."""
    if node is None:
        return (0, 0)
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


def child_context(ctx: str, key: str) -> str:
    """The context of a key below `ctx`: `a.b`, or `targets[2] "shop", b` after a named item."""
    if not ctx:
        return key
    return f"{ctx}, {key}" if ctx.endswith('"') else f"{ctx}.{key}"


def describe(node: yaml.Node) -> str:
    """How a node reads in an error message: `a list`, `a mapping`, `null`, `"text"`, `15`."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == TAG_NULL:
        return "null"
    if node.tag == TAG_STR:
        return json.dumps(node.value, ensure_ascii=False)
    return str(node.value)


class Problems:
    """Collects errors and warnings for one file, in the order found."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[Problem] = []

    def error(self, node: yaml.Node | None, context: str, message: str, expected: str = "") -> None:
        """Record an error at a node (or without a position when node is None)."""
        line, col = position(node)
        self.items.append(Problem(self.file, line, col, context, message, expected))

    def warn(self, node: yaml.Node | None, context: str, message: str, expected: str = "") -> None:
        """Record a warning: reported, but it does not fail the load."""
        line, col = position(node)
        self.items.append(Problem(self.file, line, col, context, message, expected, warning=True))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.warning]

    def error_count(self) -> int:
        """How many errors so far; compare before and after reading to see if a part failed."""
        return sum(1 for p in self.items if not p.warning)

    def in_file_order(self) -> list[Problem]:
        """Every problem sorted by position (stable, so same-place problems keep their order)."""
        return sorted(self.items, key=lambda p: (p.line, p.col))

    def raise_if_errors(self) -> None:
        """Raise UserError with every problem in file order (warnings too, so none is lost)."""
        if any(not p.warning for p in self.items):
            raise UserError(self.in_file_order())


def compose_text(text: str, problems: Problems) -> yaml.Node | None:
    """Parse one YAML document into nodes; syntax errors and foreign tags go to `problems`.

    None means an empty document, or a broken one: check `problems` before reading further.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = str(exc.problem or exc.context or "invalid YAML")
        problems.items.append(Problem(problems.file, line, col, "invalid YAML", message))
        return None
    except yaml.YAMLError as exc:
        problems.error(None, "invalid YAML", str(exc))
        return None
    if root is None or not _check_tree(root, problems):
        return None
    return root


def compose_file(path: str | Path, problems: Problems) -> yaml.Node | None:
    """Read and parse a file; an unreadable file is a problem without a position."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.error(None, "", f"cannot read file: {exc}")
        return None
    return compose_text(text, problems)


def _check_tree(root: yaml.Node, problems: Problems) -> bool:
    """Reject non-standard tags and alias bombs; true when the tree is safe to read."""
    sizes: dict[int, int] = {}
    ok = True

    def walk(node: yaml.Node) -> int:
        nonlocal ok
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # guards against recursive aliases
        if node.tag not in _ALLOWED_TAGS:
            shown = node.tag.replace(_STD, "!!")
            problems.error(node, "invalid YAML", f"unsupported tag {shown}",
                           "plain YAML without tags")
            ok = False
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(walk(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(walk(k) + walk(v) for k, v in node.value)
        sizes[id(node)] = size
        return size

    if walk(root) > _MAX_EXPANDED_NODES:
        problems.error(root, "invalid YAML", "document too large once aliases are expanded")
        return False
    return ok


class Invalid(Exception):
    """Raised by a kind after it recorded its problem; the reader then uses the fallback."""


@dataclass(frozen=True)
class Kind(Generic[T]):
    """How to read one value: `read(node, ctx, problems)` returns it or records and raises Invalid.

    `zero` makes the placeholder a failed required key returns, so readers never return None;
    the placeholder never escapes because the load raises UserError.
    """

    expected: str
    read: Callable[[yaml.Node, str, Problems], T]
    zero: Callable[[], T]


def mismatch(node: yaml.Node, ctx: str, problems: Problems, expected: str) -> Invalid:
    """Record "got X; expected Y" at a node and return the Invalid for the caller to raise."""
    problems.error(node, ctx, f"got {describe(node)}", expected)
    return Invalid()


def flatten(node: yaml.MappingNode, ctx: str,
             problems: Problems) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key text -> (key node, value node): merge keys (`<<: *base`) applied, duplicates reported.

    Explicit keys win over merged ones, as in the YAML merge-key spec Prometheus also follows.
    """
    explicit: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if key_node.tag == TAG_MERGE:
            seq = isinstance(value_node, yaml.SequenceNode)
            sources = value_node.value if seq else [value_node]
            for src in sources:
                if not isinstance(src, yaml.MappingNode):
                    problems.error(src, ctx or "top level", f"cannot merge {describe(src)}",
                                   "a mapping")
                    continue
                for k, pair in flatten(src, ctx, problems).items():
                    merged.setdefault(k, pair)
            continue
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == TAG_NULL:
            problems.error(key_node, ctx or "top level", f"key is {describe(key_node)}",
                           "a plain name as key")
            continue
        key = str(key_node.value)
        if key in explicit:
            first_line, first_col = position(explicit[key][0])
            problems.error(key_node, ctx or "top level",
                           f'duplicate key "{key}" (first at line {first_line}:{first_col})')
            continue
        explicit[key] = (key_node, value_node)
    return {**merged, **explicit}


class MapReader:
    """Reads one YAML mapping strictly: typed getters, then unknown keys reported on `finish`.

    A node that is not a mapping is reported once; the reader then answers every getter with
    its default so callers need no special case. `None` (an empty document) reads as `{}`.
    """

    def __init__(self, node: yaml.Node | None, ctx: str, problems: Problems) -> None:
        self.node = node
        self.ctx = ctx
        self.problems = problems
        self.ok = node is None or isinstance(node, yaml.MappingNode)
        self._used: set[str] = set()
        self._pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if isinstance(node, yaml.MappingNode):
            self._pairs = flatten(node, ctx, problems)
        elif node is not None:
            problems.error(node, ctx or "top level", f"got {describe(node)}", "a mapping")

    def __enter__(self) -> MapReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.finish()

    @property
    def where(self) -> str:
        """This mapping's context, `top level` for the document root."""
        return self.ctx or "top level"

    def child(self, key: str) -> str:
        """The context for a value under `key`."""
        return child_context(self.ctx, key)

    def present_keys(self) -> list[str]:
        """Every key present, in file order (merged keys included)."""
        return list(self._pairs)

    def has(self, key: str) -> bool:
        """Whether the key is present with a non-null value."""
        pair = self._pairs.get(key)
        return pair is not None and pair[1].tag != TAG_NULL

    def value_node(self, key: str) -> yaml.Node | None:
        """The raw value node of a present, non-null key (marks the key as known)."""
        self._used.add(key)
        pair = self._pairs.get(key)
        if pair is None or pair[1].tag == TAG_NULL:
            return None
        return pair[1]

    def key_node(self, key: str) -> yaml.Node | None:
        """The node of the key itself, for problems about the key's presence."""
        pair = self._pairs.get(key)
        return pair[0] if pair else None

    def required(self, key: str, kind: Kind[T]) -> T:
        """A key that must be present; a missing or bad value is reported, zero returned."""
        node = self.value_node(key)
        if node is None:
            key_node = self.key_node(key)
            if key_node is not None:
                self.problems.error(key_node, self.child(key), "empty value", kind.expected)
            elif self.ok:
                self.problems.error(self.node, self.where, f'missing required key "{key}"',
                                    kind.expected)
            return kind.zero()
        try:
            return kind.read(node, self.child(key), self.problems)
        except Invalid:
            return kind.zero()

    def optional(self, key: str, kind: Kind[T], default: D) -> T | D:
        """A key that may be absent or null (then `default`); a bad value is reported."""
        node = self.value_node(key)
        if node is None:
            return default
        try:
            return kind.read(node, self.child(key), self.problems)
        except Invalid:
            return default

    def mapping(self, key: str) -> MapReader | None:
        """A nested mapping under `key`, or None when absent; `finish` it (or use `with`)."""
        node = self.value_node(key)
        return None if node is None else MapReader(node, self.child(key), self.problems)

    def items(self, key: str) -> Iterator[tuple[str, yaml.Node]]:
        """(context, node) for each item of a list under `key`; a non-list is reported."""
        node = self.value_node(key)
        if node is None:
            return
        ctx = self.child(key)
        if not isinstance(node, yaml.SequenceNode):
            self.problems.error(node, ctx, f"got {describe(node)}", "a list")
            return
        for i, item in enumerate(node.value):
            yield f"{ctx}[{i}]", item

    def name_by(self, key: str) -> str:
        """Annotate this reader's context with the item's name (`targets[2] "shop"`); "" if none."""
        pair = self._pairs.get(key)
        if pair is None or not isinstance(pair[1], yaml.ScalarNode) or pair[1].tag == TAG_NULL:
            return ""
        name = str(pair[1].value)
        self.ctx = f"{self.ctx} {json.dumps(name, ensure_ascii=False)}"
        return name

    def error(self, key: str | None, message: str, expected: str = "") -> None:
        """Report a problem about one key's value (or about the whole mapping when key is None)."""
        if key is None:
            self.problems.error(self.node, self.where, message, expected)
            return
        node = self.value_node(key) or self.key_node(key) or self.node
        self.problems.error(node, self.child(key), message, expected)

    def warn(self, key: str, message: str, expected: str = "") -> None:
        """Report a warning about one key's value."""
        node = self.value_node(key) or self.key_node(key) or self.node
        self.problems.warn(node, self.child(key), message, expected)

    def finish(self, hints: Mapping[str, str] | None = None) -> None:
        """Report every key nobody read; `hints` explain known-but-unsupported keys."""
        known = sorted(self._used)
        for key, (key_node, _value) in self._pairs.items():
            if key in self._used:
                continue
            hint = (hints or {}).get(key)
            if hint:
                self.problems.error(key_node, self.where, f'unsupported key "{key}"', hint)
                continue
            close = difflib.get_close_matches(key, known, n=1)
            message = f'unknown key "{key}"' + (f' (did you mean "{close[0]}"?)' if close else "")
            self.problems.error(key_node, self.where, message, "one of " + ", ".join(known))
        self._used.update(self._pairs)

