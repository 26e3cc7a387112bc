"""Tests for the RE2-to-Python regex translation every matcher, label_replace and relabel uses."""

from __future__ import annotations

import pytest

from exporter.regex import RegexError, compile_regex, compile_template, expand, translate_regex


@pytest.mark.parametrize(
    ("re2", "python"),
    [
        pytest.param("plain", "plain", id="plain"),
        pytest.param("(?<name>a)", "(?P<name>a)", id="named-group-go-syntax"),
        pytest.param(r"a\z", r"a\Z", id="end-of-text"),
        pytest.param("a$", r"a\Z", id="dollar-is-end-of-text"),
        pytest.param("(?m)a$", "(?m:a$)", id="dollar-multiline-kept"),
        pytest.param(r"\Qa.b*\E", r"a\.b\*", id="quoted-literal"),
        pytest.param("[[:alpha:][:digit:]]", "[A-Za-z0-9]", id="posix-classes"),
        pytest.param("[]a]", "[]a]", id="leading-bracket-literal"),
        pytest.param("[a&&b]", r"[a\&\&b]", id="set-operators-are-literals"),
        pytest.param("(?i:abc)d", "(?i:abc)d", id="scoped-flags"),
        pytest.param("(?i)abc", "(?i:abc)", id="leading-flag"),
        pytest.param(".*((?i)DUC).*", ".*((?i:DUC)).*", id="flag-inside-group"),
        pytest.param("a(?i)b|c", "a(?i:b)|(?i:c)", id="flag-spans-alternation"),
        pytest.param("[(?i)]", "[(?i)]", id="class-untouched"),
        pytest.param(r"\d+\w\s", "[0-9]+[0-9A-Za-z_][\\t\\n\\f\\r ]", id="perl-classes-ascii"),
        pytest.param(r"[\d.]\D", "[0-9.][^0-9]", id="perl-classes-in-sets-and-negated"),
    ],
)
def test_translate_regex(re2: str, python: str) -> None:
    """RE2 spellings become the Python pattern with the same meaning."""
    assert translate_regex(re2) == python


@pytest.mark.parametrize(
    ("re2", "message"),
    [
        pytest.param(r"(a)\1", "backreference", id="backreference"),
        pytest.param("a(?=b)", "lookahead", id="lookahead"),
        pytest.param("(?<!a)b", "lookbehind", id="lookbehind"),
        pytest.param(r"\pL", "Unicode classes", id="unicode-class"),
        pytest.param("(?U)a*", "ungreedy", id="ungreedy-flag"),
        pytest.param("[[:foo:]]", "unknown character class", id="unknown-posix"),
        pytest.param("(", r"missing \)", id="python-compile-error"),
    ],
)
def test_regex_errors(re2: str, message: str) -> None:
    """What RE2 refuses (or Python cannot run) is an error, not a silent difference."""
    with pytest.raises(RegexError, match=message):
        compile_regex(re2)


@pytest.mark.parametrize(
    ("re2", "text", "matches"),
    [
        pytest.param(r"\d+", "12", True, id="ascii-digits"),
        pytest.param(r"\d+", "١٢", False, id="no-arabic-digits-like-re2"),
        pytest.param("(?i)straße", "STRAßE", True, id="case-folding-stays-unicode"),
        pytest.param("a.b", "a\nb", True, id="dot-matches-newline"),
        pytest.param("x(?i)Y|z", "Z", True, id="mid-pattern-flag-over-alternation"),
        pytest.param("a$", "a\n", False, id="dollar-not-before-final-newline"),
    ],
)
def test_compiled_regex_matches_like_re2(re2: str, text: str, matches: bool) -> None:
    """Compiled regexes match whole strings exactly as Prometheus's `^(?s:...)$` would."""
    assert (compile_regex(re2).fullmatch(text) is not None) is matches


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("$1-${2}", "a-b", id="numbered"),
        pytest.param("${name}!", "b!", id="named"),
        pytest.param("$$-${1-$1", "$-${1-a", id="dollar-and-malformed"),
        pytest.param("$1x", "", id="go-reads-1x-as-a-name"),
        pytest.param("$9", "", id="missing-group-is-empty"),
    ],
)
def test_expand_template(template: str, expected: str) -> None:
    """Replacement templates expand as Go's Regexp.Expand."""
    pattern = compile_regex("(a)(?P<name>b)")
    match = pattern.fullmatch("ab")
    assert match is not None
    assert expand(compile_template(template, pattern), match) == expected
