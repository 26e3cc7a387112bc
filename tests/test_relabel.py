"""Tests for metric relabelling: Prometheus's relabel semantics, RE2 translation, validation."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.labels import Labels, make_labels
from exporter.relabel import (
    RelabelConfig,
    apply_relabel,
    check_relabel_config,
)


def _l(**kv: str) -> Labels:
    return make_labels(kv)


def _rule(**kw: Any) -> RelabelConfig:
    if "source_labels" in kw:
        kw["source_labels"] = tuple(kw["source_labels"])
    return RelabelConfig(**kw)


BASE = _l(a="foo", b="bar", c="baz")


@pytest.mark.parametrize(
    ("rules", "labels", "expected"),
    [
        pytest.param([_rule(source_labels=["a"], regex="f(.*)", target_label="d",
                            replacement="ch${1}-ch${1}")],
                     BASE, _l(a="foo", b="bar", c="baz", d="choo-choo"), id="replace-template"),
        pytest.param([_rule(source_labels=["a", "b"], regex="f(.*);(.*)r", target_label="a",
                            replacement="b${1}${2}m")],
                     BASE, _l(a="boobam", b="bar", c="baz"), id="replace-joined-sources"),
        pytest.param([_rule(source_labels=["a"], regex="o", target_label="d")],
                     BASE, BASE, id="regex-fully-anchored-no-match"),
        pytest.param([_rule(source_labels=["a"], regex="(f).*", target_label="d",
                            replacement="$1x")],
                     BASE, _l(a="foo", b="bar", c="baz"), id="dollar-1x-names-group-1x-empty"),
        pytest.param([_rule(source_labels=["a"], regex="(?P<first>f)(?<rest>.*)",
                            target_label="d", replacement="$rest-${first}-$$")],
                     BASE, _l(a="foo", b="bar", c="baz", d="oo-f-$"), id="named-groups"),
        pytest.param([_rule(source_labels=["a"], regex="(.*)", target_label="${1}_copy")],
                     BASE, _l(a="foo", b="bar", c="baz", foo_copy="foo"),
                     id="target-label-template"),
        pytest.param([_rule(source_labels=["a"], regex="(.*)", target_label="${1}-x")],
                     BASE, BASE, id="target-label-invalid-after-expansion-skipped"),
        pytest.param([_rule(source_labels=["a"], regex="foo", target_label="b",
                            replacement="")],
                     BASE, _l(a="foo", c="baz"), id="empty-result-removes-label"),
        pytest.param([_rule(source_labels=["missing"], target_label="d", replacement="x")],
                     BASE, _l(a="foo", b="bar", c="baz", d="x"), id="missing-source-is-empty"),
        pytest.param([_rule(source_labels=["a"], regex="f.*", action="drop")],
                     BASE, None, id="drop-match"),
        pytest.param([_rule(source_labels=["a"], regex="f", action="drop")],
                     BASE, BASE, id="drop-no-match"),
        pytest.param([_rule(source_labels=["a"], regex="f.*", action="keep")],
                     BASE, BASE, id="keep-match"),
        pytest.param([_rule(source_labels=["missing"], regex=".+", action="keep")],
                     BASE, None, id="keep-missing-label"),
        pytest.param([_rule(source_labels=["a"], target_label="x", action="keepequal")],
                     _l(a="1", x="1"), _l(a="1", x="1"), id="keepequal-equal"),
        pytest.param([_rule(source_labels=["a"], target_label="x", action="keepequal")],
                     _l(a="1", x="2"), None, id="keepequal-differs"),
        pytest.param([_rule(source_labels=["a"], target_label="x", action="dropequal")],
                     _l(a="1", x="1"), None, id="dropequal-equal"),
        pytest.param([_rule(source_labels=["c"], target_label="d", modulus=1000,
                            action="hashmod")],
                     BASE, _l(a="foo", b="bar", c="baz", d="976"), id="hashmod-prometheus-value"),
        pytest.param([_rule(regex="(b.*)", replacement="bar_${1}", action="labelmap")],
                     BASE, _l(a="foo", b="bar", bar_b="bar", c="baz"), id="labelmap"),
        pytest.param([_rule(regex="(b|c)", action="labeldrop")],
                     BASE, _l(a="foo"), id="labeldrop"),
        pytest.param([_rule(regex="(a|__name__)", action="labelkeep")],
                     make_labels({"__name__": "up", "a": "1", "b": "2"}),
                     make_labels({"__name__": "up", "a": "1"}), id="labelkeep"),
        pytest.param([_rule(source_labels=["a"], target_label="u", action="uppercase")],
                     BASE, _l(a="foo", b="bar", c="baz", u="FOO"), id="uppercase"),
        pytest.param([_rule(source_labels=["a", "b"], target_label="l", action="lowercase")],
                     _l(a="Foo", b="BAR"), _l(a="Foo", b="BAR", l="foo;bar"),
                     id="lowercase-joined"),
        pytest.param([_rule(regex=".*", action="labeldrop")], BASE, None,
                     id="no-labels-left-is-dropped"),
        pytest.param([_rule(source_labels=["a"], regex="(?i)FOO", action="drop")], BASE, None,
                     id="case-insensitive-flag"),
        pytest.param([_rule(source_labels=["__name__"], regex="go_.*", action="drop"),
                      _rule(source_labels=["__name__"], regex="(.*)_total", target_label="base")],
                     make_labels({"__name__": "http_requests_total"}),
                     make_labels({"__name__": "http_requests_total", "base": "http_requests"}),
                     id="rules-apply-in-order"),
    ],
)
def test_apply_relabel(rules: list[RelabelConfig], labels: Labels,
                       expected: Labels | None) -> None:
    """Each action behaves as Prometheus's relabel.Process does."""
    assert apply_relabel(rules, labels) == expected
    # Twice: the second pass hits the per-rule cache and must agree.
    assert apply_relabel(rules, labels) == expected


def test_unchanged_labels_are_returned_as_is() -> None:
    """A pass that changes nothing returns the very same tuple (no allocation on the hot path)."""
    labels = make_labels({"__name__": "up", "job": "x"})
    rules = [_rule(source_labels=["__name__"], regex="go_.*", action="drop"),
             _rule(source_labels=["job"], regex="(.*)", target_label="job")]
    assert apply_relabel(rules, labels) is labels
    assert apply_relabel([], labels) is labels


_DEFAULTS: dict[str, Any] = dict(source_labels=(), separator=";", regex="(.*)", modulus=0,
                                 target_label="", replacement="$1")


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param({"action": "replace", "target_label": "x"}, [], id="valid-replace"),
        pytest.param({"action": "replace"},
                     [("target_label", "the replace action requires target_label")],
                     id="replace-needs-target"),
        pytest.param({"action": "replace", "target_label": "${1}x"}, [],
                     id="replace-target-template"),
        pytest.param({"action": "hashmod", "target_label": "s"},
                     [("modulus", "the hashmod action requires a modulus above 0")],
                     id="hashmod-needs-modulus"),
        pytest.param({"action": "uppercase", "target_label": "x", "replacement": "y"},
                     [("replacement", "replacement cannot be set for the uppercase action")],
                     id="uppercase-no-replacement"),
        pytest.param({"action": "keepequal", "target_label": "x", "regex": "a"},
                     [("action", "the keepequal action takes only source_labels and "
                       "target_label")], id="keepequal-only-two-fields"),
        pytest.param({"action": "labelkeep", "target_label": "x"},
                     [("action", "the labelkeep action takes only regex")],
                     id="labelkeep-only-regex"),
        pytest.param({"action": "labelmap", "replacement": "a-b"},
                     [("replacement", '"a-b" is not a valid labelmap replacement')],
                     id="labelmap-replacement"),
        pytest.param({"action": "keep", "regex": "a(?=b)"},
                     [("regex", "invalid regex: lookahead (?= is not supported (RE2)")],
                     id="regex-checked"),
    ],
)
def test_check_relabel_config(changes: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    """Validation follows Prometheus's relabel.Config.Validate."""
    fields = {**_DEFAULTS, **changes}
    assert check_relabel_config(**fields) == problems
