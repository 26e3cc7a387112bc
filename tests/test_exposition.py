"""Tests of the parse stage (scrape -> parse -> store): exposition text to labelled samples."""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter import exposition_fast, exposition_scrape
from exporter.cli import main
from exporter.exposition import ExpositionError, ParseResult, parse_exposition
from exporter.exposition_lines import TEXT as TEXT_FORMAT
from exporter.exposition_lines import go_format_float
from exporter.exposition_scrape import Scraper
from exporter.store import MetricMetadata

TEXT = "text/plain; version=0.0.4"
OM = "application/openmetrics-text; version=1.0.0"


def one(data: str, content_type: str | None = None, **kw: object) -> tuple[object, ...]:
    """The single sample of an exposition as (labels as dict, value, timestamp)."""
    result = parse_exposition(data, content_type, **kw)  # type: ignore[arg-type]
    assert len(result.samples) == 1
    labels, value, ts = result.samples[0]
    return dict(labels), value, ts


def labelsets(result: ParseResult) -> list[dict[str, str]]:
    """Every sample's labels as a dict, in order."""
    return [dict(labels) for labels, _, _ in result.samples]


# -- values, escapes, timestamps --------------------------------------------------------------

SAMPLES = [
    ("plain", "a 1\n", TEXT, {"__name__": "a"}, 1.0, None),
    ("text-timestamp-ms", "a 1 1700000000123\n", TEXT, {"__name__": "a"}, 1.0, 1700000000123),
    ("om-timestamp-seconds", "a 1 1700000000.123\n# EOF\n", OM, {"__name__": "a"}, 1.0,
     1700000000123),
    ("om-timestamp-truncates", "a 1 -1.5\n# EOF\n", OM, {"__name__": "a"}, 1.0, -1500),
    ("plus-inf", "a +Inf\n", TEXT, {"__name__": "a"}, math.inf, None),
    ("minus-inf", "a -Inf\n", TEXT, {"__name__": "a"}, -math.inf, None),
    ("go-inf-spellings", "a -infinity\n", TEXT, {"__name__": "a"}, -math.inf, None),
    ("exponent", "a 1.5e-3\n", TEXT, {"__name__": "a"}, 0.0015, None),
    ("escaped-label-value", 'a{x="q\\"b\\\\s\\nn"} 1\n', TEXT, {"__name__": "a", "x": 'q"b\\s\nn'},
     1.0, None),
    ("om-escapes", 'a{x="a\\"b"} 1\n# EOF\n', OM, {"__name__": "a", "x": 'a"b'}, 1.0, None),
    ("hash-in-value", 'a{x="} # {"} 1\n# EOF\n', OM, {"__name__": "a", "x": "} # {"}, 1.0, None),
    ("labels-sorted", 'a{z="1",b="2",Z="3"} 1\n', TEXT,
     {"__name__": "a", "Z": "3", "b": "2", "z": "1"}, 1.0, None),
    ("empty-value-dropped", 'a{x="",y="1"} 1\n', TEXT, {"__name__": "a", "y": "1"}, 1.0, None),
    ("text-whitespace", '  a { x = "1" , }  2   3  \n', TEXT, {"__name__": "a", "x": "1"}, 2.0, 3),
    ("quoted-name", '{"my.metric","label.x"="v"} 1\n', TEXT,
     {"__name__": "my.metric", "label.x": "v"}, 1.0, None),
    ("quoted-name-after-label", '{a="b","my.metric"} 1\n# EOF\n', OM,
     {"__name__": "my.metric", "a": "b"}, 1.0, None),
    ("quoted-name-escape", '{"a\\"b"} 1\n', TEXT, {"__name__": 'a"b'}, 1.0, None),
    ("utf8-value", 'a{x="żółw ☃"} 1\n', TEXT, {"__name__": "a", "x": "żółw ☃"}, 1.0, None),
    ("exemplar-ignored", '# TYPE a counter\na_total 3 # {trace_id="x"} 1 1.5\n# EOF\n', OM,
     {"__name__": "a_total"}, 3.0, None),
    ("exemplar-after-ts-ignored", '# TYPE a counter\na_total 3 2 # {t="x"} 1\n# EOF\n', OM,
     {"__name__": "a_total"}, 3.0, 2000),
]


@pytest.mark.parametrize(("data", "ctype", "labels", "value", "ts"),
                         [c[1:] for c in SAMPLES], ids=[c[0] for c in SAMPLES])
def test_sample_is_parsed(data: str, ctype: str, labels: dict[str, str], value: float,
                          ts: int | None) -> None:
    """One sample line gives the expected labels, value and millisecond timestamp."""
    assert one(data, ctype) == (labels, value, ts)
    assert one(data, ctype, strict=True) == (labels, value, ts)


def test_nan_is_parsed_in_both_formats() -> None:
    """NaN values parse as a NaN that is not the stale marker."""
    for data, ctype in (("a NaN\n", TEXT), ("a nan\n# EOF\n", OM)):
        _, value, _ = one(data, ctype)
        assert isinstance(value, float) and math.isnan(value)


HELP = [
    ("text-help-escapes", "# HELP a x\\\\y\\nz \\\"q\\\"\n", TEXT, 'x\\y\nz \\"q\\"'),
    ("om-help-escapes", '# HELP a x\\\\y\\nz \\"q\\"\n# EOF\n', OM, 'x\\y\nz "q"'),
    ("text-empty-help", "# HELP a\n", TEXT, ""),
]


@pytest.mark.parametrize(("data", "ctype", "text"), [c[1:] for c in HELP], ids=[c[0] for c in HELP])
def test_help_is_unescaped_per_format(data: str, ctype: str, text: str) -> None:
    """HELP text is unescaped with the escapes its format defines."""
    assert parse_exposition(data, ctype).metadata["a"].help == text


def test_metadata_by_family() -> None:
    """TYPE, HELP and UNIT lines end up in one MetricMetadata per family."""
    data = "# TYPE a_seconds gauge\n# UNIT a_seconds seconds\n# HELP a_seconds h\n# EOF\n"
    assert parse_exposition(data).metadata == {
        "a_seconds": MetricMetadata("gauge", "h", "seconds")
    }
    assert parse_exposition("# TYPE b untyped\n").metadata["b"].type == "unknown"


# -- le / quantile normalisation ----------------------------------------------------------------

NORMALISED = [
    ("histogram-le", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n", "le", "1.0"),
    ("histogram-inf", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n", "le", "+Inf"),
    ("histogram-inf-spelling", "# TYPE h histogram\nh_bucket{le=\"inf\"} 1\n", "le", "+Inf"),
    ("histogram-exp", "# TYPE h histogram\nh_bucket{le=\"1e+05\"} 1\n", "le", "100000.0"),
    ("histogram-large", "# TYPE h histogram\nh_bucket{le=\"10000000\"} 1\n", "le", "1e+07"),
    ("histogram-small", "# TYPE h histogram\nh_bucket{le=\"0.00001\"} 1\n", "le", "1e-05"),
    ("histogram-not-a-float", "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "le", "x"),
    ("summary-quantile", "# TYPE s summary\ns{quantile=\"1\"} 1\n", "quantile", "1.0"),
    ("summary-quantile-short", "# TYPE s summary\ns{quantile=\".50\"} 1\n", "quantile", "0.5"),
    ("gauge-le-untouched", "# TYPE g gauge\ng{le=\"1\"} 1\n", "le", "1"),
    ("untyped-le-untouched", "g{le=\"1\"} 1\n", "le", "1"),
    ("gaugehistogram-untouched", "# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\n# EOF\n", "le",
     "1"),
    ("summary-le-untouched", "# TYPE s summary\ns{le=\"1\",quantile=\"0.5\"} 1\n", "le", "1"),
    # Prometheus applies the last TYPE line even to series of another family.
    ("last-type-quirk", "# TYPE h histogram\nother{le=\"5\"} 1\n", "le", "5.0"),
]


@pytest.mark.parametrize(("data", "label", "expected"), [c[1:] for c in NORMALISED],
                         ids=[c[0] for c in NORMALISED])
def test_le_and_quantile_are_normalised_like_prometheus_3(data: str, label: str,
                                                          expected: str) -> None:
    """Classic histogram `le` and summary `quantile` values get Prometheus 3's float form."""
    assert dict(parse_exposition(data).samples[0][0])[label] == expected


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1.0"), (0.0, "0.0"), (-0.0, "0.0"), (-1.0, "-1.0"), (0.1, "0.1"), (2.5, "2.5"),
    (100000.0, "100000.0"), (1e6, "1e+06"), (123456789.0, "1.23456789e+08"), (1e-4, "0.0001"),
    (1.1e-4, "0.00011"), (1e-5, "1e-05"), (1.5e300, "1.5e+300"), (-2.5e-7, "-2.5e-07"),
    (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"),
])
def test_go_format_float(value: float, text: str) -> None:
    """Floats print as Go's FormatFloat(f, 'g', -1, 64) with ".0" on integral values."""
    assert go_format_float(value) == text


# -- formats --------------------------------------------------------------------------------------

FORMATS = [
    ("openmetrics-header", "a 1\n# EOF\n", OM, "openmetrics"),
    ("text-header", "a 1\n", TEXT, "text"),
    ("text-header-wins-over-eof", "a 1\n# EOF\n", TEXT, "text"),
    ("auto-eof-newline", "a 1\n# EOF\n", None, "openmetrics"),
    ("auto-eof-no-newline", "a 1\n# EOF", None, "openmetrics"),
    ("auto-no-eof", "a 1\n", None, "text"),
    ("auto-eof-not-a-line", "a 1\n# comment # EOF\n", None, "text"),
    ("auto-empty-header", "a 1\n", "", "text"),
]


@pytest.mark.parametrize(("data", "ctype", "fmt"), [c[1:] for c in FORMATS],
                         ids=[c[0] for c in FORMATS])
def test_format_is_chosen_by_content_type_or_final_eof(data: str, ctype: str | None,
                                                       fmt: str) -> None:
    """The Content-Type picks the format; without one a final `# EOF` line means OpenMetrics."""
    assert parse_exposition(data, ctype).format == fmt


def test_created_series_are_kept_as_prometheus_3_5_does() -> None:
    """`_created` lines stay ordinary samples (Prometheus skips them only with CT ingestion)."""
    data = "# TYPE a counter\na_total 1\na_created 1700000000.5\n# EOF\n"
    names = [d["__name__"] for d in labelsets(parse_exposition(data))]
    assert names == ["a_total", "a_created"]


def test_bytes_and_str_give_the_same_result() -> None:
    """Bytes are decoded as UTF-8; a str is taken as is."""
    data = 'a{x="☃"} 1\n'
    assert parse_exposition(data.encode()).samples == parse_exposition(data).samples


# -- keep_names -----------------------------------------------------------------------------------

HISTOGRAM_EXPOSITION = """# HELP h Latency.
# TYPE h histogram
h_bucket{le="0.1",route="/a"} 1
h_bucket{le="+Inf",route="/a"} 2
h_sum{route="/a"} 0.3
h_count{route="/a"} 2
# TYPE up gauge
up 1
up_extra{x="y"} 5
{"odd.name",x="1"} 7
"""


@pytest.mark.parametrize(("keep", "names"), [
    ({"up"}, ["up"]),
    ({"h_bucket"}, ["h_bucket", "h_bucket"]),
    ({"h_bucket", "h_count", "h_sum"}, ["h_bucket", "h_bucket", "h_sum", "h_count"]),
    ({"odd.name", "up_extra"}, ["up_extra", "odd.name"]),
    ({"h"}, []),
    (set(), []),
], ids=["gauge", "buckets", "whole-histogram", "quoted-and-prefixed", "family-name", "none"])
def test_keep_names_keeps_only_those_sample_names(keep: set[str], names: list[str]) -> None:
    """keep_names filters by sample metric name, histogram suffixes included."""
    for strict in (False, True):
        result = parse_exposition(HISTOGRAM_EXPOSITION, TEXT, keep_names=keep, strict=strict)
        assert [d["__name__"] for d in labelsets(result)] == names


def test_keep_names_still_normalises_and_collects_metadata() -> None:
    """Filtered parses still see TYPE lines, so `le` is normalised and metadata complete."""
    result = parse_exposition(HISTOGRAM_EXPOSITION, TEXT, keep_names={"h_bucket"})
    assert [d["le"] for d in labelsets(result)] == ["0.1", "+Inf"]
    assert set(result.metadata) == {"h", "up"}


def test_keep_names_skips_other_lines_unparsed() -> None:
    """Lines of other metrics are not examined, so their errors pass unnoticed."""
    data = "good 1\nbad{ 1\n"
    assert labelsets(parse_exposition(data, keep_names={"good"})) == [{"__name__": "good"}]
    with pytest.raises(ExpositionError):
        parse_exposition(data)



QUOTED_NAMES = """{"a.b",x="1"} 1
{"a.bc"} 2
{"c.d",x="1"} 3
{"k.v"="1","a.b"} 4
{ "a.b"} 5
{"a\\"q"} 6
a_total{"a.b"="2"} 7
"""


@pytest.mark.parametrize("keep", [{"a.b"}, {"c.d", "a_total"}, {'a"q'}, set()],
                         ids=["a.b", "c.d-and-legacy", "escaped-quote", "none"])
def test_keep_names_with_quoted_names(keep: set[str]) -> None:
    """A filtered parse keeps exactly the kept quoted names' samples, as filtering a full
    parse does, whether the name comes first, later, after blanks or with escapes."""
    full = [s for s in labelsets(parse_exposition(QUOTED_NAMES)) if s["__name__"] in keep]
    assert labelsets(parse_exposition(QUOTED_NAMES, keep_names=keep)) == full

# -- errors ---------------------------------------------------------------------------------------

ERRORS = [
    # id, data, content type, strict, line, message fragment
    ("text-missing-value", "a\n", TEXT, False, 1, "expected value"),
    ("text-bad-value", "a 1\nb x\n", TEXT, False, 2, "invalid value 'x'"),
    ("text-hex-value", "a 0x1p3\n", TEXT, False, 1, "invalid value"),
    ("text-underscore-value", "a 1_000\n", TEXT, False, 1, "invalid value"),
    ("text-overflow-value", "a 1e999\n", TEXT, False, 1, "invalid value"),
    ("text-float-timestamp", "a 1 1.5\n", TEXT, False, 1, "expected next entry"),
    ("text-negative-timestamp", "a 1 -5\n", TEXT, False, 1, "expected timestamp"),
    ("text-huge-timestamp", "a 1 99999999999999999999\n", TEXT, False, 1, "out of range"),
    ("text-unquoted-value", "a{b=c} 1\n", TEXT, False, 1, "expected label value"),
    ("text-unterminated", 'a{b="c} 1\n', TEXT, False, 1, "unterminated"),
    ("text-no-name", '{a="b"} 1\n', TEXT, False, 1, "metric name not set"),
    ("text-two-names", '{"a","b"} 1\n', TEXT, False, 1, "metric name already set"),
    ("text-duplicate-label", 'a{b="1",b="2"} 1\n', TEXT, False, 1, "not unique"),
    ("text-name-label", 'a{__name__="x"} 1\n', TEXT, False, 1, "not unique"),
    ("text-empty-label-name", 'a{""="x"} 1\n', TEXT, False, 1, "empty label name"),
    ("text-bad-type", "# TYPE a unknown\n", TEXT, False, 1, "invalid metric type"),
    ("text-bad-meta-name", "# HELP 1a x\n", TEXT, False, 1, "expected metric name"),
    ("invalid-utf8", b"a 1\nb{x=\"\xff\"} 1\n", TEXT, False, 2, "invalid UTF-8"),
    ("om-no-eof", "a 1\n", OM, False, 2, "does not end with # EOF"),
    ("om-after-eof", "a 1\n# EOF\nb 1\n", OM, False, 2, "unexpected data after # EOF"),
    ("om-eof-twice", "# EOF\na 1\n# EOF\n", OM, False, 1, "unexpected data after # EOF"),
    ("om-blank-line", "a 1\n\n# EOF\n", OM, False, 2, "blank lines"),
    ("om-comment", "# hello\n# EOF\n", OM, False, 1, "expected a valid start token"),
    ("om-two-spaces", "a  1\n# EOF\n", OM, False, 1, "expected value"),
    ("om-trailing-space", "a 1 \n# EOF\n", OM, False, 1, "expected timestamp"),
    ("om-nan-timestamp", "a 1 NaN\n# EOF\n", OM, False, 1, "invalid timestamp"),
    ("om-bad-exemplar-ts", "a_total 1 # {} 1 Inf\n# EOF\n", OM, False, 1, "exemplar timestamp"),
    ("om-unit-suffix", "# UNIT a seconds\n# EOF\n", OM, False, 1, "not a suffix"),
    ("om-space-in-labels", 'a{b="1", c="2"} 1\n# EOF\n', OM, False, 1, "expected label name"),
    ("unsupported-content-type", "a 1\n", "application/json", False, 0, "unsupported"),
    ("strict-text-missing-comma", 'a{b="1" c="2"} 1\n', TEXT, True, 1, "expected comma"),
    ("strict-text-bad-escape", 'a{b="\\z"} 1\n', TEXT, True, 1, "invalid escape"),
    ("strict-text-reserved-label", 'a{__x="1"} 1\n', TEXT, True, 1, "reserved"),
    ("strict-text-name-then-value", "a-1\n", TEXT, True, 1, "whitespace after the metric"),
    ("strict-text-duplicate-series", "a 1\na 2\n", TEXT, True, 2, "duplicate sample"),
    ("strict-text-type-after-sample", "a 1\n# TYPE a gauge\n", TEXT, True, 2, "after its samples"),
    ("strict-text-second-help", "# HELP a x\n# HELP a y\n", TEXT, True, 2, "second HELP"),
    ("strict-text-regrouped", "a 1\nb 1\na{x=\"1\"} 1\n", TEXT, True, 3, "clashes"),
    ("strict-text-no-inf-bucket", '# TYPE h histogram\nh_bucket{le="1"} 1\n', TEXT, True, 2,
     "no +Inf bucket"),
    ("strict-text-bucket-order", '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\n'
     'h_bucket{le="+Inf"} 1\n', TEXT, True, 3, "increasing order"),
    ("strict-text-count-mismatch", '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 2\n', TEXT,
     True, 2, "count does not match"),
    ("strict-text-no-quantile", "# TYPE s summary\ns 1\n", TEXT, True, 2, "without a quantile"),
    ("strict-om-trailing-comma", 'a{b="1",} 1\n# EOF\n', OM, True, 1, "trailing comma"),
    ("strict-om-counter-name", "# TYPE a counter\na 1\n# EOF\n", OM, True, 2, "clashes"),
    ("strict-om-negative-counter", "# TYPE a counter\na_total -1\n# EOF\n", OM, True, 2,
     "cannot be negative"),
    ("strict-om-exemplar-on-gauge", "a 1 # {} 1\n# EOF\n", OM, True, 1, "exemplars are only"),
    ("strict-om-ts-backwards", "a 1 2\na 1 1\n# EOF\n", OM, True, 2, "backwards"),
]


@pytest.mark.parametrize(("data", "ctype", "strict", "line", "fragment"),
                         [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_errors_name_their_line(data: str | bytes, ctype: str, strict: bool, line: int,
                                fragment: str) -> None:
    """Every refusal is an ExpositionError whose text reads `line N: problem`."""
    with pytest.raises(ExpositionError) as info:
        parse_exposition(data, ctype, strict=strict)
    assert info.value.line == line
    assert fragment in info.value.message
    assert str(info.value) == f"line {line}: {info.value.message}"


SCRAPE_QUIRKS = [
    # Inputs Prometheus 3.5 scrapes although the specs forbid them; strict mode refuses them.
    ("text-missing-comma", 'a{b="1" c="2"} 1\n', TEXT, {"__name__": "a", "b": "1", "c": "2"}),
    ("text-unknown-escape-kept", 'a{x="\\z"} 1\n', TEXT, {"__name__": "a", "x": "\\z"}),
    ("text-value-glued-to-name", "a-1 2\n", TEXT, {"__name__": "a"}),
    ("text-unquoted-name-in-braces", "{abc} 1\n", TEXT, {"__name__": "b"}),
    ("text-newline-in-value", 'a{b="x\ny"} 1\n', TEXT, {"__name__": "a", "b": "x\ny"}),
    ("om-trailing-comma", 'a{b="1",} 1\n# EOF\n', OM, {"__name__": "a", "b": "1"}),
]


@pytest.mark.parametrize(("data", "ctype", "labels"), [c[1:] for c in SCRAPE_QUIRKS],
                         ids=[c[0] for c in SCRAPE_QUIRKS])
def test_scrape_mode_keeps_prometheus_quirks_strict_mode_does_not(data: str, ctype: str,
                                                                  labels: dict[str, str]) -> None:
    """Scrape mode accepts what Prometheus's lexer accepts; strict mode refuses it."""
    assert one(data, ctype)[0] == labels
    with pytest.raises(ExpositionError):
        parse_exposition(data, ctype, strict=True)


def test_text_nul_at_line_start_ends_the_exposition() -> None:
    """A NUL at the start of a line is end of input to Prometheus's text lexer."""
    assert len(parse_exposition("a 1\n\x00garbage{\nb 2\n", TEXT).samples) == 1


def test_newline_in_value_keeps_following_line_numbers() -> None:
    """A label value running over a line break does not shift later line numbers."""
    with pytest.raises(ExpositionError) as info:
        parse_exposition('a{b="x\ny"} 1\nc 1\nd x\n', TEXT)
    assert info.value.line == 4


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet='ab{}",=# \n\\.\x00:_1eE+-Inf', max_size=80))
def test_any_input_gives_a_result_or_an_exposition_error(data: bytes | str) -> None:
    """Arbitrary input never raises anything but ExpositionError, in any mode."""
    for ctype in (None, TEXT, OM):
        for strict in (False, True):
            for keep in (None, {"a", "ab"}):
                with contextlib.suppress(ExpositionError):
                    parse_exposition(data, ctype, strict=strict, keep_names=keep)


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_of_prometheus_client_output() -> None:
    """An exposition rendered by prometheus_client parses to the samples it was built from."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_om
    from prometheus_client.parser import text_string_to_metric_families

    registry = CollectorRegistry()
    c = Counter("requests", "Requests.", ["method", "path"], registry=registry)
    c.labels("GET", '/a"b\\c\nd').inc(3)
    c.labels("POST", "/").inc()
    Gauge("temperature_celsius", "T.", registry=registry).set(-1.5)
    h = Histogram("latency_seconds", "L.", ["route"], buckets=(0.1, 1, 10), registry=registry)
    h.labels("/x").observe(0.5)
    Summary("size_bytes", "S.", registry=registry).observe(12)

    text_bytes: bytes = generate_latest(registry)
    text = text_bytes.decode()
    expected = sorted(
        (tuple(sorted({**s.labels, "__name__": s.name}.items())), s.value)
        for f in text_string_to_metric_families(text) for s in f.samples
    )
    om_bytes: bytes = generate_om(registry)  # type: ignore[no-untyped-call]
    for data, ctype in ((text_bytes, TEXT), (om_bytes, OM)):
        got = sorted((labels, value) for labels, value, _ in parse_exposition(data, ctype).samples)
        # Prometheus 3 normalises le; prometheus_client already writes le="1.0".
        assert [(dict(k), v) for k, v in got if not dict(k)["__name__"].endswith("_created")] == [
            (dict(k), v) for k, v in expected if not dict(k)["__name__"].endswith("_created")
        ]
        parse_exposition(data, ctype, strict=True)


# -- check metrics ------------------------------------------------------------------------------


def test_check_metrics_reports_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file prints one OK line with families, series and format, and exits 0."""
    path = tmp_path / "ok.om"
    path.write_text("# TYPE a counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\nb 1\n# EOF\n")
    assert main(["check", "metrics", str(path)]) == 0
    assert capsys.readouterr().out == "OK: 2 families, 3 series (openmetrics)\n"


def test_check_metrics_reports_every_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid file prints each problem as `FILE:line N: problem` on stderr and exits 1."""
    path = tmp_path / "bad.prom"
    path.write_text('a 1\nb x\nc{d="1",d="2"} 1\n# TYPE e summary\ne 1\n')
    assert main(["check", "metrics", str(path), "--format", "text"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [e.split(": ", 1)[0] for e in err] == [f"{path}:line 2", f"{path}:line 3",
                                                  f"{path}:line 5"]


def test_check_metrics_reads_stdin(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Path "-" reads the exposition from standard input."""

    class FakeStdin:
        buffer = io.BytesIO(b"a 1\n")

    monkeypatch.setattr("sys.stdin", FakeStdin)
    assert main(["check", "metrics", "-"]) == 0
    assert capsys.readouterr().out == "OK: 1 families, 1 series (text)\n"


def test_check_metrics_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable file is one error line and exit code 1, no traceback."""
    assert main(["check", "metrics", str(tmp_path / "nope")]) == 1
    assert "cannot read" in capsys.readouterr().err


# -- the text fast path agrees with the per-line path ---------------------------------------------


def _text_paths(data: str) -> list[object]:
    """What run_text (the bulk fast path) and run_lines (the per-line reference) make of a text
    body: samples, metadata and the last TYPE's normalisation, or the error; as reprs, so NaN
    values compare equal."""
    results: list[object] = []
    for run in (Scraper.run_text, Scraper.run_lines):
        scraper = Scraper(TEXT_FORMAT, None)
        try:
            run(scraper, data)
            results.append(repr((scraper.samples, scraper.meta, scraper.norm)))
        except ExpositionError as exc:
            results.append(repr(("error", exc.line, exc.message, scraper.samples)))
    return results


LINE_KINDS = [
    "a 1", 'a{b="1"} 2', 'a{b="1",} 2', 'a{b="x\\"y\\\\z\\n"} 1', 'a{b="\\q"} 1', 'a{b=""} 1',
    'a{b="1",b="2"} 1', 'a{__name__="x"} 1', "a{} 1", 'a{c="1",B="2",_x="3",__y="4"} 1',
    "a 1 17", 'a{b="1"} 2 1700000000000', "a 1e999", "a 1 1234567890123456789",
    "a 1 99999999999999999999", "a nan", "a -Inf", "a in", "a 1e", "a +", 'a{b="1"} 2 3',
    'a{b="1"}  2', 'a{b="1"} 2 ', "a\t1", "a 1\r", 'a{b="\r"} 1', 'a{b="1" c="2"} 3',
    '{"x.y",a="1"} 2', "{abc} 1", "# TYPE a histogram", "# TYPE a summary", "# TYPE a gauge",
    "# HELP a x\\ny", "# HELP a", "# random comment", 'h_bucket{le="1",x="y"} 1',
    'h_bucket{x="y",le="0x1p3"} 1', 'h{quantile="0.50"} 1', 'h{quantile="1e-1",le="1"} 1',
    'a{b="x', 'y"} 3', '"', "\\", "", "   ", "\x00", "a{", 'a{b="\\\\\\"",c="\\n\\\\n"} 1',
    'h_bucket{x="\\\\",le="1"} 1', 'a{b="\\"\x00"} 1', 'a{b="x\\"",b="y"} 1',
    'a{b="x\x00y"} 1',
]


@pytest.mark.parametrize("chunk", [0, 1, 7, 50_000])
def test_text_fast_path_agrees_with_per_line_path(chunk: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Random mixes of every kind of line give identical results (or errors) both ways, also
    with chunks of one line, so that quoted strings over line breaks cross chunk ends."""
    import random

    monkeypatch.setattr(exposition_scrape, "CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(1500):
        lines = [rng.choice(LINE_KINDS) for _ in range(rng.randint(0, 8))]
        data = "\n".join(lines) + rng.choice(["", "\n", "\n\n"])
        first, second = _text_paths(data)
        assert first == second, data


def test_text_fast_path_agrees_on_the_benchmark_exposition() -> None:
    """The benchmark's exposition (escapes, quoted names, histograms, summaries) parses to
    exactly the same samples and metadata by the fast path and the per-line path."""
    from benchmarks.generate import generate

    first, second = _text_paths(generate().text)
    assert first == second


def test_text_fast_path_finds_one_row_per_line() -> None:
    """The bulk regex gives one row per line, whatever the line, so run_text never has to fall
    back to per-line parsing of a whole chunk."""
    pieces = [*LINE_KINDS, 'a{b="x\\', 'a{b="\\\\"} 1', 'a{b="x\\"} 1', "#", "\x00a 1"]
    for first in pieces:
        for second in pieces:
            data = f"{first}\n{second}\n\n{first}"
            assert len(exposition_fast.TEXT_BULK.findall(data)) == data.count("\n") + 1, data


def test_text_fast_path_falls_back_to_per_line_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the bulk regex ever miss lines, a chunk is parsed line by line, with the same
    result."""
    from benchmarks.generate import generate

    data = generate(2000).text + '\nbad{x="1"} 1e999\n'
    expected = _text_paths(data)
    never = re.compile(r"(x)(x)(x)(x)(x)(x)(x)(x)(x)(?!)")
    monkeypatch.setattr(exposition_scrape, "TEXT_BULK", never)
    assert _text_paths(data) == expected
    assert "invalid value" in str(expected[0])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab{}",=# \n\\.\x00:_1eE+-Infl\rq', max_size=80))
def test_text_fast_path_agrees_on_any_input(data: str) -> None:
    """Arbitrary text gives the same samples, or the same error, both ways."""
    first, second = _text_paths(data)
    assert first == second


# -- the series cache (refs) changes how a sample is given, never what it is ---------------------

OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0"


class _Ref:
    """A stand-in for what a scraper caches: here, the labels the text parsed to."""

    def __init__(self, labels: object) -> None:
        self.labels = labels


def _with_refs(data: str, content_type: str, keep: frozenset[str] | None) -> list[object]:
    """Parse twice, the second time with refs learnt from the first parse's misses; each
    ref-hit sample turned back into its labels. Both parses, as reprs (NaN compares equal)."""
    refs: exposition_fast.SeriesRefs = {}
    try:
        first = parse_exposition(data, content_type, keep_names=keep, refs=refs)
    except ExpositionError as exc:
        return ["error", exc.line, exc.message]
    for index, norm, name, written in first.misses:
        refs.setdefault(norm, {}).setdefault(name, {})[written] = _Ref(first.samples[index][0])
    second = parse_exposition(data, content_type, keep_names=keep, refs=refs)  # no error now
    hits = sum(isinstance(s[0], _Ref) for s in second.samples)
    unwrapped = [(s[0].labels if isinstance(s[0], _Ref) else s[0], *s[1:])
                 for s in second.samples]
    # Every miss of the first parse is a hit of the second (same text, same context).
    assert hits == len(first.misses)
    return [repr(first.samples), repr(unwrapped)]


REFS_BODIES = [
    # (id, body): each line kind the fast paths cache, plus what they must not.
    ("plain", 'a 1\nb{x="1",y="2"} 2 1000\nb{y="2",x="1"} 3\n'),
    ("escapes", 'e{p="a\\\\b\\"c\\nd"} 1\nf{a="",b="x"} 2\n'),
    ("norm-by-type",
     '# TYPE h histogram\nh_bucket{le="1"} 1\n# TYPE g gauge\nh_bucket{le="1"} 2\n'),
    ("quoted-names", '{"cache.hits","cache.tier"="l1"} 1\nx{"a.b"="c"} 2\n'),
    ("duplicates", 'a{x="1"} 1\na{x="1"} 1\n'),
]


@pytest.mark.parametrize(("content_type", "eof"), [(TEXT, ""), (OPENMETRICS_TYPE, "# EOF\n")],
                         ids=["text", "openmetrics"])
@pytest.mark.parametrize("keep", [None, frozenset({"b", "h_bucket", "f", "cache.hits"})],
                         ids=["all", "filtered"])
@pytest.mark.parametrize("body", [b for _, b in REFS_BODIES], ids=[i for i, _ in REFS_BODIES])
def test_refs_give_the_same_samples(body: str, keep: frozenset[str] | None, content_type: str,
                                    eof: str) -> None:
    """A parse that finds its series texts in refs gives the samples a plain parse gives."""
    first, second = _with_refs(body + eof, content_type, keep)
    assert first == second


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='ab{}",=# \n\\.\x00:_1eE+-Infl\rq', max_size=80))
def test_refs_agree_on_any_input(data: str) -> None:
    """Arbitrary text gives the same samples (or the same error) with refs as without."""
    result = _with_refs(data, TEXT, None)
    assert result[0] == "error" or result[0] == result[1]
