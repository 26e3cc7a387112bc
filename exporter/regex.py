"""RE2 regexes on Python's re: one translation for matchers, label_replace and relabelling.

Prometheus compiles every user regex as `^(?s:...)$` with Go's RE2. Python's `re` spells some
of RE2 differently (`(?<name>`, `\\z`, `\\Q..\\E`, `[[:alpha:]]`, flag groups in mid-pattern),
reads `\\d`/`\\w`/`\\s` as Unicode classes where RE2 means ASCII, and accepts constructs RE2
rejects (backreferences, lookaround). `compile_regex` rewrites the first two and refuses the
third, so a regex that works here works in Prometheus and matches the same strings.
"""

from __future__ import annotations

import functools
import re
from typing import Final


class RegexError(ValueError):
    """A regex Prometheus (RE2) would reject, or one Python cannot run."""


_POSIX: Final = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
# RE2's Perl classes are ASCII-only; spelled out so `(?i)` can stay Unicode-aware.
_PERL_CLASSES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_UNSUPPORTED_GROUPS: Final = (
    ("(?<=", "lookbehind"), ("(?<!", "lookbehind"), ("(?=", "lookahead"), ("(?!", "lookahead"),
    ("(?>", "atomic group"), ("(?#", "comment group"), ("(?(", "conditional group"),
    ("(?P=", "backreference"),
)
_FLAG_GROUP: Final = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)([:)])")
_NAMED_GROUP: Final = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")


def translate_regex(src: str) -> str:
    """An RE2 regex as the Python pattern with the same meaning; RegexError for what RE2 rejects."""
    out: list[str] = []
    # Flag groups such as `(?i)` apply to the rest of their enclosing group in RE2; Python only
    # takes them at the very start, so each becomes a scoped `(?i:` closed with its group.
    # One list of open flag scopes per nesting level; `|` at that level closes and reopens them.
    scopes: list[list[str]] = [[]]
    multiline = False
    in_class = False
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i = _escape(src, i, in_class, out)
            continue
        if in_class:
            if src.startswith("[:", i):
                end = src.find(":]", i + 2)
                name = src[i + 2:end] if end > 0 else ""
                if name not in _POSIX:
                    raise RegexError(f"unknown character class [:{name}:]")
                out.append(_POSIX[name])
                i = end + 2
                continue
            if c == "]":
                in_class = False
            # Python warns on (and may one day reinterpret) these in sets; RE2 means literals.
            out.append("\\" + c if c in "[&~|" else c)
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1
            if j < n and src[j] == "^":
                j += 1
            if j < n and src[j] == "]":  # a leading ] is a literal in both dialects
                j += 1
            out.append(src[i:j])
            i = j
            continue
        if c == "(" and src.startswith("(?", i):
            named = _NAMED_GROUP.match(src, i)
            if named:
                out.append(f"(?P<{named.group(1)}>")
                scopes.append([])
                i = named.end()
                continue
            for prefix, what in _UNSUPPORTED_GROUPS:
                if src.startswith(prefix, i):
                    raise RegexError(f"{what} {prefix} is not supported (RE2)")
            flags = _FLAG_GROUP.match(src, i)
            if flags is None or flags.group(1) in ("", "-"):
                raise RegexError(f"unsupported group syntax at position {i}: {src[i:i + 4]!r}")
            if "U" in flags.group(1):
                raise RegexError("the ungreedy flag U is not supported")
            multiline = multiline or "m" in flags.group(1).split("-")[0]
            if flags.group(2) == ":":
                out.append(flags.group(0))
                scopes.append([])
            else:
                out.append(f"(?{flags.group(1)}:")
                scopes[-1].append(flags.group(1))
            i = flags.end()
            continue
        if c == "(":
            scopes.append([])
        elif c == ")":
            if len(scopes) > 1:
                out.append(")" * len(scopes.pop()))
        elif c == "|" and scopes[-1]:
            open_flags = scopes[-1]
            out.append(")" * len(open_flags) + "|" + "".join(f"(?{f}:" for f in open_flags))
            i += 1
            continue
        # RE2's `$` without (?m) is the end of text; Python's would also match before a final \n.
        out.append("\\Z" if c == "$" and not multiline else c)
        i += 1
    out.append(")" * len(scopes[0]))
    return "".join(out)


def _escape(src: str, i: int, in_class: bool, out: list[str]) -> int:
    """Translate the escape at src[i]; returns the index after it."""
    if i + 1 >= len(src):
        raise RegexError("trailing backslash")
    d = src[i + 1]
    if d == "Q":  # \Q...\E quotes literally in RE2
        end = src.find("\\E", i + 2)
        literal = src[i + 2:] if end < 0 else src[i + 2:end]
        out.append("".join(ch if ch.isalnum() else "\\" + ch for ch in literal))
        return len(src) if end < 0 else end + 2
    if d in "pP":
        raise RegexError("Unicode classes (\\p) are not supported")
    if d in "123456789":
        raise RegexError(f"backreference \\{d} is not supported (RE2)")
    if d == "C":
        raise RegexError("\\C is not supported")
    if d in _PERL_CLASSES:
        members = _PERL_CLASSES[d]
        out.append(members if in_class else f"[{members}]")
    elif d.lower() in _PERL_CLASSES and not in_class:
        out.append(f"[^{_PERL_CLASSES[d.lower()]}]")
    else:
        out.append("\\Z" if d == "z" else src[i:i + 2])
    return i + 2


@functools.lru_cache(maxsize=8192)
def compile_regex(src: str) -> re.Pattern[str]:
    """Compile an RE2 regex as Prometheus does (`(?s:...)`, matched whole with fullmatch)."""
    try:
        return re.compile("(?s:" + translate_regex(src) + ")")
    except re.error as exc:
        raise RegexError(exc.msg) from None  # its position counts the translated pattern


Template = tuple[tuple[str, int], ...]


def compile_template(template: str, pattern: re.Pattern[str]) -> Template:
    """`$1`, `${1}`, `$name`, `${name}`, `$$` as Go's Regexp.Expand reads them.

    The result is (literal, group) pairs; group -1 adds nothing, and so does a reference to a
    group that does not exist. Like Go, `$1x` names the group `1x` (use `${1}x`).
    """
    parts: list[tuple[str, int]] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c != "$":
            literal.append(c)
            i += 1
            continue
        if i + 1 < n and template[i + 1] == "$":
            literal.append("$")
            i += 2
            continue
        j = i + 1
        brace = j < n and template[j] == "{"
        if brace:
            j += 1
        start = j
        while j < n and (template[j].isalnum() or template[j] == "_"):
            j += 1
        name = template[start:j]
        if not name or (brace and (j >= n or template[j] != "}")):
            literal.append("$")  # malformed: Go keeps the `$` as text
            i += 1
            continue
        i = j + 1 if brace else j
        if name.isdigit() and (name == "0" or not name.startswith("0")) and len(name) < 9:
            group = int(name) if int(name) <= pattern.groups else -1
        else:
            group = pattern.groupindex.get(name, -1)
        parts.append(("".join(literal), group))
        literal = []
    if literal:
        parts.append(("".join(literal), -1))
    return tuple(parts)


def expand(template: Template, match: re.Match[str]) -> str:
    """Fill a compiled template from a match."""
    return "".join(lit + (match.group(g) or "" if g >= 0 else "") for lit, g in template)
