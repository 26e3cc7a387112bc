"""Alert templates: Go text/template expansion, Prometheus's functions, parse checks."""

from __future__ import annotations

import pytest

from exporter.templates import TemplateSample, check_template, expand_alert_template
from exporter.templates_funcs import go_float, go_sprintf

LABELS = {"__name__": "up", "instance": "h1:9100", "job": "node"}


def _expand(text: str, value: float = 0.25) -> str:
    def query(expr: str) -> list[TemplateSample]:
        return [TemplateSample({"__name__": expr, "k": "v"}, 42.0)] if expr == "hit" else []

    return expand_alert_template(text, alert_name="A", labels=LABELS, value=value,
                                 external_labels={"cluster": "eu1"},
                                 external_url="http://prom:9090/p", query=query)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain", "plain", id="plain-text"),
        pytest.param("{{ $labels.instance }}", "h1:9100", id="dollar-labels"),
        pytest.param("{{ .Labels.job }}", "node", id="dot-labels"),
        pytest.param("{{ $value }} {{ .Value }}", "0.25 0.25", id="value"),
        pytest.param("{{ $externalLabels.cluster }}", "eu1", id="external-labels"),
        pytest.param("{{ $externalURL }}", "http://prom:9090/p", id="external-url"),
        pytest.param("[{{ $labels.missing }}]", "[]", id="missing-label-is-empty"),
        pytest.param("a  {{- $labels.job -}}  b", "anodeb", id="trim-markers"),
        pytest.param("{{/* note */}}x", "x", id="comment"),
        pytest.param("{{ $value | humanizePercentage }}", "25%", id="pipe"),
        pytest.param("{{ humanize 1234567 }}", "1.235M", id="humanize"),
        pytest.param("{{ humanize 0.000123 }}", "123u", id="humanize-small"),
        pytest.param("{{ humanize1024 2048 }}", "2ki", id="humanize1024"),
        pytest.param("{{ humanizeDuration 3661 }}", "1h 1m 1s", id="humanize-duration"),
        pytest.param('{{ printf "%.1f%%" 12.34 }}', "12.3%", id="printf"),
        pytest.param('{{ printf "%d-%s" 3 }}', "3-%!s(MISSING)", id="printf-missing"),
        pytest.param("{{ if gt $value 0.5 }}big{{ else }}small{{ end }}", "small", id="if-else"),
        pytest.param("{{ if eq $labels.job \"x\" }}x{{ else if eq $labels.job \"node\" }}n"
                     "{{ end }}", "n", id="else-if"),
        pytest.param("{{ range $k, $v := $labels }}{{ $k }};{{ end }}", "__name__;instance;job;",
                     id="range-map"),
        pytest.param("{{ with $labels.job }}{{ . }}{{ end }}", "node", id="with"),
        pytest.param('{{ query "hit" | first | value }}', "42", id="query-first-value"),
        pytest.param('{{ with query "hit" }}{{ . | first | label "k" }}{{ end }}', "v",
                     id="query-label"),
        pytest.param('{{ $x := "a" }}{{ $x = "b" }}{{ $x }}', "b", id="variables"),
        pytest.param("{{ $labels.instance | stripPort | toUpper }}", "H1", id="strip-port"),
        pytest.param('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}', "h1",
                     id="re-replace-all"),
        pytest.param("{{ parseDuration \"1m30s\" }}", "90", id="parse-duration"),
        pytest.param("{{ and 1 0 }}{{ or 0 \"x\" }}{{ not true }}", "0xfalse", id="and-or-not"),
        pytest.param("{{ len $labels }} {{ index $labels \"job\" }}", "3 node", id="len-index"),
        pytest.param("{{ pathPrefix }}", "/p", id="path-prefix"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    """Templates expand as Prometheus's text/template expander does."""
    assert _expand(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('{{ query "miss" | first }}',
                     '<error expanding template: error executing template __alert_A: template: '
                     '__alert_A:1:130: executing "__alert_A" at <first>: error calling first: '
                     "first() called on vector with no elements>", id="first-of-empty"),
        pytest.param("{{ gt $value 1 }}",
                     '<error expanding template: error executing template __alert_A: template: '
                     '__alert_A:1:115: executing "__alert_A" at <gt $value 1>: error calling gt: '
                     "incompatible types for comparison: float64 and int>", id="mixed-compare"),
        pytest.param("{{ $labels.x",
                     "<error expanding template: error parsing template __alert_A: template: "
                     "__alert_A:1: unclosed action>", id="unparsable"),
    ],
)
def test_errors_expand_in_place(text: str, expected: str) -> None:
    """A template that fails yields Prometheus's error text in place of the value."""
    assert _expand(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("{{ $labels.job }}", None, id="ok"),
        pytest.param("{{ $labels.x", "template: __alert_X:1: unclosed action", id="unclosed"),
        pytest.param("{{ nosuch }}", 'template: __alert_X:1: function "nosuch" not defined',
                     id="unknown-function"),
        pytest.param("{{ if }}", "template: __alert_X:1: missing value for if", id="empty-if"),
        pytest.param("{{ $foo }}", 'template: __alert_X:1: undefined variable "$foo"',
                     id="undefined-variable"),
        pytest.param("a\n{{ if 1 }}", "template: __alert_X:2: unexpected EOF", id="missing-end"),
        pytest.param("{{ end }}", "template: __alert_X:1: unexpected {{end}}", id="stray-end"),
    ],
)
def test_check_template(text: str, problem: str | None) -> None:
    """check_template reports Go's parse error (what promtool check rules prints)."""
    assert check_template(text, "__alert_X") == problem


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0"), (1.0, "1"), (0.25, "0.25"), (123456.0, "123456"), (1e6, "1e+06"),
     (1234567.0, "1.234567e+06"), (1.234e-5, "1.234e-05"), (0.0001, "0.0001"),
     (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"), (-2.5, "-2.5")],
    ids=lambda v: str(v),
)
def test_go_float(value: float, text: str) -> None:
    """Floats print as Go's %v does (shortest digits, exponent from 1e6)."""
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("fmt", "args", "text"),
    [
        pytest.param("%s", [1.5], "%!s(float64=1.5)", id="bad-verb"),
        pytest.param("%d", [1.5], "%!d(float64=1.5)", id="float-as-int"),
        pytest.param("%5.1f|%-4d|", [2.25, 7], "  2.2|7   |", id="width"),
        pytest.param("%v %q", ["a", "b"], 'a "b"', id="v-and-q"),
        pytest.param("%d", [1, 2], "1%!(EXTRA int=2)", id="extra"),
        pytest.param("%f", [float("inf")], "+Inf", id="inf"),
    ],
)
def test_go_sprintf(fmt: str, args: list[object], text: str) -> None:
    """printf follows Go's fmt, including its in-band error forms."""
    assert go_sprintf(fmt, args) == text
