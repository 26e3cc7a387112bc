"""Conformance of the parse stage (scrape -> parse -> store) with the upstream test suites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.exposition import ExpositionError, decode, parse_exposition
from exporter.exposition_strict import parse_strict
from tests.shared_data import require_shared, shared_root

OM_DIR = "conformance/exposition/openmetrics"
OM_WHAT = "the OpenMetrics parser test suite"
OM_UPSTREAM = "OpenObservability/OpenMetrics tests/testdata/parsers"
TEXTPARSE_DIR = "conformance/exposition/prometheus-textparse"
TEXTPARSE_WHAT = "Prometheus's textparse benchmark inputs"
TEXTPARSE_UPSTREAM = "prometheus/prometheus model/textparse/testdata"
OM = "application/openmetrics-text"

# Strict-mode cases that may disagree with test.json, each with its reason. Keep it empty.
KNOWN_STRICT_EXCEPTIONS: dict[str, str] = {}

# Cases Prometheus 3.5's scrape accepts although the OpenMetrics spec forbids them: its parser
# is lexical and leaves types, grouping, values and exemplar placement to nobody.
SCRAPE_ONLY = frozenset({
    # families and metadata: repeated, clashing or misplaced
    "bad_clashing_names_0", "bad_clashing_names_1", "bad_clashing_names_2",
    "bad_metadata_in_wrong_place_0", "bad_metadata_in_wrong_place_1",
    "bad_metadata_in_wrong_place_2", "bad_repeated_metadata_0", "bad_repeated_metadata_1",
    "bad_repeated_metadata_3", "bad_unit_6", "bad_unit_7",
    # counter-like values that are NaN, negative or fractional
    "bad_counter_values_0", "bad_counter_values_1", "bad_counter_values_2",
    "bad_counter_values_3", "bad_counter_values_4", "bad_counter_values_5",
    "bad_counter_values_6", "bad_counter_values_7", "bad_counter_values_8",
    "bad_counter_values_9", "bad_counter_values_10", "bad_counter_values_11",
    "bad_counter_values_12", "bad_counter_values_13", "bad_counter_values_14",
    "bad_counter_values_15", "bad_counter_values_16", "bad_counter_values_17",
    "bad_counter_values_18", "bad_counter_values_19",
    # exemplars: too long (a storage limit, not a parse error) or on the wrong samples
    "bad_exemplar_complex_chars", "bad_exemplars_6",
    "bad_exemplars_on_unallowed_metric_types_0", "bad_exemplars_on_unallowed_metric_types_1",
    "bad_exemplars_on_unallowed_metric_types_2", "bad_exemplars_on_unallowed_samples_0",
    "bad_exemplars_on_unallowed_samples_1", "bad_exemplars_on_unallowed_samples_2",
    "bad_exemplars_on_unallowed_samples_3",
    # interleaved groups and timestamps going backwards or mixed
    "bad_grouping_or_ordering_0", "bad_grouping_or_ordering_2", "bad_grouping_or_ordering_3",
    "bad_grouping_or_ordering_4", "bad_grouping_or_ordering_5", "bad_grouping_or_ordering_6",
    "bad_grouping_or_ordering_7", "bad_grouping_or_ordering_8", "bad_grouping_or_ordering_9",
    "bad_grouping_or_ordering_10",
    # histogram structure: missing +Inf/_count/_sum, order, cumulativity, le spelling
    "bad_histograms_0", "bad_histograms_1", "bad_histograms_2", "bad_histograms_3",
    "bad_histograms_6", "bad_histograms_7", "bad_histograms_8", "bad_histograms_9",
    "bad_histograms_10", "bad_histograms_11", "bad_histograms_12", "bad_histograms_13",
    "bad_histograms_14",
    # type-specific labels and values (quantile, le, stateset, info)
    "bad_info_and_stateset_values_0", "bad_info_and_stateset_values_1",
    "bad_missing_or_invalid_labels_for_a_type_0", "bad_missing_or_invalid_labels_for_a_type_1",
    "bad_missing_or_invalid_labels_for_a_type_2", "bad_missing_or_invalid_labels_for_a_type_3",
    "bad_missing_or_invalid_labels_for_a_type_4", "bad_missing_or_invalid_labels_for_a_type_5",
    "bad_missing_or_invalid_labels_for_a_type_6", "bad_missing_or_invalid_labels_for_a_type_7",
    "bad_stateset_info_values_0", "bad_stateset_info_values_1", "bad_stateset_info_values_2",
    "bad_stateset_info_values_3",
    # a trailing comma in a label set (Prometheus's parseLVals allows it)
    "bad_missing_or_extra_commas_2",
})

# alltypes.5mfs.om.txt comes from client_golang with negative observations. OpenMetrics 1.0
# (and this suite: bad_counter_values_8/17/19, bad_histograms_3) forbids a _sum beside negative
# buckets, negative sums and negative quantile values, so strict mode must report exactly these.
TEXTPARSE_STRICT_ERRORS = {
    "alltypes.5mfs.om.txt": [
        (12, "rpc_durations_histogram_seconds_bucket: histogram "
             "'rpc_durations_histogram_seconds': _sum with negative buckets"),
        (33, "rpc_durations_histogram_seconds_sum: counter-like values cannot be negative"),
        (44, "rpc_durations_seconds: quantile values cannot be negative"),
        (47, "rpc_durations_seconds_sum: counter-like values cannot be negative"),
    ],
}


def _listing(relative: str, pattern: str) -> list[str]:
    folder = shared_root() / relative
    names = sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []
    return names or ["<absent>"]


OM_CASES = [c for c in _listing(OM_DIR, "*") if c not in ("LICENSE", "NOTICE")]
TEXTPARSE_FILES = _listing(TEXTPARSE_DIR, "*.txt")


def _om_case(name: str) -> tuple[bytes, bool]:
    folder = require_shared(OM_DIR, OM_WHAT, OM_UPSTREAM) / name
    spec = json.loads((folder / "test.json").read_text())
    assert spec["type"] == "text"
    return (folder / spec.get("file", "metrics")).read_bytes(), bool(spec["shouldParse"])


def _accepts(data: bytes, content_type: str, strict: bool) -> bool:
    try:
        parse_exposition(data, content_type, strict=strict)
    except ExpositionError:
        return False
    return True


@pytest.mark.parametrize("case", OM_CASES)
def test_strict_mode_matches_the_openmetrics_suite(case: str) -> None:
    """Strict mode accepts exactly the OpenMetrics cases marked shouldParse."""
    data, should_parse = _om_case(case)
    if case in KNOWN_STRICT_EXCEPTIONS:
        pytest.xfail(KNOWN_STRICT_EXCEPTIONS[case])
    assert _accepts(data, OM, strict=True) == should_parse


@pytest.mark.parametrize("case", OM_CASES)
def test_scrape_mode_accepts_what_strict_does_and_only_the_listed_extras(case: str) -> None:
    """Scrape mode accepts every strict-valid case, plus exactly the SCRAPE_ONLY list."""
    data, _ = _om_case(case)
    strict, scrape = _accepts(data, OM, strict=True), _accepts(data, OM, strict=False)
    if strict:
        assert scrape
    assert (scrape and not strict) == (case in SCRAPE_ONLY)


def test_scrape_only_list_names_existing_cases() -> None:
    """Every SCRAPE_ONLY entry is a case of the suite, so the list cannot go stale silently."""
    require_shared(OM_DIR, OM_WHAT, OM_UPSTREAM)
    assert set(SCRAPE_ONLY) <= set(OM_CASES)


def _textparse(name: str) -> tuple[bytes, str]:
    path: Path = require_shared(TEXTPARSE_DIR, TEXTPARSE_WHAT, TEXTPARSE_UPSTREAM) / name
    return path.read_bytes(), ("text/plain" if ".prom." in name else OM)


@pytest.mark.parametrize("name", TEXTPARSE_FILES)
def test_textparse_inputs_parse_in_scrape_mode(name: str) -> None:
    """Prometheus's benchmark inputs parse in scrape mode, every sample kept."""
    data, content_type = _textparse(name)
    result = parse_exposition(data, content_type)
    lines = [ln for ln in data.decode().splitlines() if ln and not ln.startswith("#")]
    assert len(result.samples) == len(lines)


@pytest.mark.parametrize("name", TEXTPARSE_FILES)
def test_textparse_inputs_parse_in_strict_mode(name: str) -> None:
    """They parse in strict mode too, but for the listed spec violations of one file."""
    data, content_type = _textparse(name)
    fmt = "text" if content_type == "text/plain" else "openmetrics"
    report = parse_strict(decode(data), fmt)
    assert report.errors == TEXTPARSE_STRICT_ERRORS.get(name, [])
    scrape = parse_exposition(data, content_type).samples
    assert [(k, repr(v), t) for k, v, t in report.samples] == [
        (k, repr(v), t) for k, v, t in scrape  # repr: NaN values compare equal
    ]
