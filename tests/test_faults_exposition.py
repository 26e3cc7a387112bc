"""Bad input to the parse stage: fuzzing with a deadline per example, and pathological bodies
whose memory stays within the stated bound (their times are in benchmarks/bench_pathological.py).
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.exposition import ExpositionError, ParseResult, parse_exposition

TEXT = "text/plain; version=0.0.4"
OM = "application/openmetrics-text; version=1.0.0"
CONTENT_TYPES = [TEXT, OM, None]
# A hang shows as a deadline failure; the bound is wide because 2 cores are shared.
FUZZ = settings(max_examples=250, deadline=timedelta(seconds=2),
                suppress_health_check=[HealthCheck.too_slow])

_names = st.sampled_from(["a", "m_total", "h_bucket", "s", "x:y", "_", "9bad", "a-b", ""])
_label_values = st.text(alphabet='a\\"n\n{},= \x00é', max_size=12)
_values = st.sampled_from(["1", "-0.5", "NaN", "+Inf", "-Inf", "1e308", "1e999", "0x1",
                           "", "1_0", "nan", "Infinity"])
_timestamps = st.sampled_from(["", " 1", " -5", " 1.5", " 99999999999999999999", " x"])


@st.composite
def _sample_lines(draw: st.DrawFn) -> str:
    """A sample line that is valid more often than not, with escapes and broken bits."""
    name = draw(_names)
    pairs = draw(st.lists(st.tuples(st.sampled_from(["le", "quantile", "a", "a", "__name__",
                                                     "1x", ""]), _label_values), max_size=3))
    labels = ",".join(f'{k}="{v}"' for k, v in pairs)
    brace = draw(st.sampled_from(["{%s}", "{%s,}", "{%s", "%s}", "{%s} # {a=\"1\"} 2"]))
    body = brace % labels if pairs or draw(st.booleans()) else ""
    return f"{name}{body} {draw(_values)}{draw(_timestamps)}"


_comment_lines = st.sampled_from([
    "# HELP a some \\n help \\\\ text", "# TYPE a counter", "# TYPE h histogram",
    "# TYPE s summary", "# TYPE a gauge", "# UNIT a seconds", "# EOF", "#", "# random",
    "# TYPE a", "# HELP", "", " ", "\x00",
])
_bodies = st.lists(_sample_lines() | _comment_lines, max_size=12).map("\n".join)


def _parse_or_refuse(data: bytes | str, content_type: str | None, **kw: object) -> None:
    """The parser's contract: a ParseResult, or ExpositionError, and nothing else."""
    try:
        result = parse_exposition(data, content_type, **kw)  # type: ignore[arg-type]
    except ExpositionError as exc:
        assert exc.line >= 0 and str(exc)
        return
    assert isinstance(result, ParseResult)
    for labels, value, ts in result.samples:
        assert isinstance(labels, tuple) and isinstance(value, float)
        assert ts is None or isinstance(ts, int)


@FUZZ
@given(data=st.binary(max_size=300), ctype=st.sampled_from(CONTENT_TYPES),
       strict=st.booleans())
def test_random_bytes_give_samples_or_an_exposition_error(data: bytes, ctype: str | None,
                                                         strict: bool) -> None:
    """Any bytes, in either format and mode, parse or raise ExpositionError within the deadline."""
    _parse_or_refuse(data, ctype, strict=strict)


@FUZZ
@given(body=_bodies, eof=st.booleans(), ctype=st.sampled_from(CONTENT_TYPES),
       strict=st.booleans(), keep=st.sampled_from([None, {"a"}, {"m_total", "h_bucket"}]))
# Found by this test: the text fast path let LineError out for an empty __name__ label.
@example(body='a{__name__=""} 1', eof=False, ctype=TEXT, strict=False, keep=None)
@example(body='a{__name__=""} 1', eof=False, ctype=None, strict=False, keep=None)
def test_near_valid_expositions_give_samples_or_an_exposition_error(
    body: str, eof: bool, ctype: str | None, strict: bool, keep: set[str] | None,
) -> None:
    """Mostly valid lines with escapes, bad braces, odd values and comments never crash the
    parser, with or without a name filter."""
    text = body + ("\n# EOF\n" if eof else "\n")
    _parse_or_refuse(text, ctype, strict=strict, keep_names=keep)
    _parse_or_refuse(text.encode(), ctype, strict=strict, keep_names=keep)


BIG = 10 * 1024 * 1024  # the 10 MB label value

# (id, body, content type, expected label value length): every kind of huge value.
PATHOLOGICAL = [
    ("plain-text", b'm{l="' + b"a" * BIG + b'"} 1\n', TEXT, BIG),
    ("plain-openmetrics", b'm{l="' + b"a" * BIG + b'"} 1\n# EOF\n', OM, BIG),
    # 5 M escaped backslashes unescape to 5 M backslashes.
    ("escaped-backslashes", b'm{l="' + b"\\\\" * (BIG // 2) + b'"} 1\n', TEXT, BIG // 2),
    ("escaped-quotes-openmetrics", b'm{l="' + b'\\"' * (BIG // 2) + b'"} 1\n# EOF\n', OM,
     BIG // 2),
    ("escaped-newlines", b'm{l="' + b"\\n" * (BIG // 2) + b'"} 1\n', TEXT, BIG // 2),
    ("non-ascii", b'm{l="' + "é".encode() * (BIG // 2) + b'"} 1\n', TEXT, BIG // 2),
]


@pytest.mark.parametrize(("body", "ctype", "length"), [p[1:] for p in PATHOLOGICAL],
                         ids=[p[0] for p in PATHOLOGICAL])
def test_ten_megabyte_label_value_uses_under_five_times_its_size(body: bytes, ctype: str,
                                                                length: int) -> None:
    """A 10 MB label value parses to one sample using less than 5x its size in extra memory."""
    tracemalloc.start()
    try:
        result = parse_exposition(body, ctype)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [(labels, value, _)] = result.samples
    assert (dict(labels)["__name__"], len(dict(labels)["l"]), value) == ("m", length, 1.0)
    assert peak < 5 * len(body), f"peak {peak / len(body):.2f}x the body"


def test_huge_help_text_with_escapes_parses() -> None:
    """A 10 MB HELP of escapes unescapes completely (one newline per `\\n`) within the bound."""
    body = b"# HELP m " + b"\\n" * (BIG // 2) + b"\nm 1\n"
    tracemalloc.start()
    try:
        result = parse_exposition(body, TEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.metadata["m"].help == "\n" * (BIG // 2)
    assert peak < 5 * len(body)


@pytest.mark.parametrize(("value", "unescaped"), [
    ("\\\\n", "\\n"),  # an escaped backslash, then a plain n
    ("\\\\\\n", "\\\n"),  # an escaped backslash, then an escaped newline
    ("\\x\\\\", "\\x\\"),  # an unknown escape stays as written
    ("\ue000\\\\\\\"", "\ue000\\\""),  # a private-use character in the value itself
    ("".join(map(chr, range(0xE000, 0xE008))) + "\\\\n",
     "".join(map(chr, range(0xE000, 0xE008))) + "\\n"),  # every placeholder taken
], ids=["backslash-n", "backslash-newline", "unknown-escape", "private-use",
        "all-placeholders"])
def test_escapes_undo_left_to_right(value: str, unescaped: str) -> None:
    """Escapes undo as Prometheus's replacer does, left to right, whatever the value holds."""
    for body, ctype in ((f'm{{l="{value}"}} 1\n', TEXT), (f'm{{l="{value}"}} 1\n# EOF\n', OM)):
        [(labels, _, _)] = parse_exposition(body, ctype).samples
        assert dict(labels)["l"] == unescaped
