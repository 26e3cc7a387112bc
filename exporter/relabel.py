"""Metric relabelling (scrape -> relabel -> store): Prometheus's relabel_config on each sample.

Regexes are RE2 as in Prometheus, compiled by exporter.regex. Label names are checked with the
classic `[a-zA-Z_][a-zA-Z0-9_]*` rule, because the text exposition this exporter serves cannot
carry other names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from exporter.labels import Labels
from exporter.regex import RegexError, Template, compile_regex, compile_template, expand

ACTIONS: Final = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap",
                  "labeldrop", "labelkeep", "lowercase", "uppercase")
DEFAULT_SEPARATOR: Final = ";"
DEFAULT_REGEX: Final = "(.*)"
DEFAULT_REPLACEMENT: Final = "$1"

LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# A target_label with `$` references, as Prometheus's relabelTarget accepts.
_TARGET_TEMPLATE_RE: Final = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", re.ASCII)
# Distinct inputs remembered per rule; scraped label values repeat every scrape, so most
# lookups skip the regex. Bounded because some label values are high-cardinality.
_CACHE_SIZE: Final = 4096


@dataclass(frozen=True)
class RelabelConfig:
    """One relabel rule in Prometheus's shape; build it with `check_relabel_config` first."""

    action: str = "replace"
    source_labels: tuple[str, ...] = ()
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    modulus: int = 0
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _replacement: Template = field(init=False, repr=False, compare=False)
    _target: Template = field(init=False, repr=False, compare=False)
    _cache: dict[str, object] = field(init=False, repr=False, compare=False,
                                      default_factory=dict)

    def __post_init__(self) -> None:
        pattern = compile_regex(self.regex)
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "_replacement", compile_template(self.replacement, pattern))
        object.__setattr__(self, "_target", compile_template(self.target_label, pattern))


def check_relabel_config(
    action: str, source_labels: Sequence[str], separator: str, regex: str, modulus: int,
    target_label: str, replacement: str,
) -> list[tuple[str, str]]:
    """Prometheus's validation of one rule: (key, problem) pairs, empty when valid."""
    out: list[tuple[str, str]] = []
    try:
        compile_regex(regex)
    except RegexError as exc:
        out.append(("regex", f"invalid regex: {exc}"))
    for name in source_labels:
        if not LABEL_NAME_RE.fullmatch(name):
            out.append(("source_labels", f'invalid label name "{name}"'))
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if action in needs_target and not target_label:
        out.append(("target_label", f"the {action} action requires target_label"))
    elif action == "replace" and target_label:
        ok = (_TARGET_TEMPLATE_RE.fullmatch(target_label) if "$" in target_label
              else LABEL_NAME_RE.fullmatch(target_label))
        if not ok:
            out.append(("target_label", f'"{target_label}" is not a valid target_label'))
    elif action in needs_target and not LABEL_NAME_RE.fullmatch(target_label):
        out.append(("target_label", f'"{target_label}" is not a valid target_label'))
    if action == "hashmod" and modulus <= 0:
        out.append(("modulus", "the hashmod action requires a modulus above 0"))
    if action == "labelmap" and not _TARGET_TEMPLATE_RE.fullmatch(replacement):
        out.append(("replacement", f'"{replacement}" is not a valid labelmap replacement'))
    if action in ("lowercase", "uppercase", "keepequal", "dropequal") and \
            replacement != DEFAULT_REPLACEMENT:
        out.append(("replacement", f"replacement cannot be set for the {action} action"))
    if action in ("keepequal", "dropequal") and (
            regex != DEFAULT_REGEX or modulus or separator != DEFAULT_SEPARATOR):
        out.append(("action", f"the {action} action takes only source_labels and target_label"))
    if action in ("labeldrop", "labelkeep") and (
            source_labels or target_label or modulus or separator != DEFAULT_SEPARATOR
            or replacement != DEFAULT_REPLACEMENT):
        out.append(("action", f"the {action} action takes only regex"))
    return out


def _cached_match(cfg: RelabelConfig, text: str) -> bool:
    hit = cfg._cache.get(text)
    if hit is None:
        hit = cfg.pattern.fullmatch(text) is not None
        if len(cfg._cache) >= _CACHE_SIZE:
            cfg._cache.clear()
        cfg._cache[text] = hit
    return hit is True


def _replace(cfg: RelabelConfig, val: str) -> tuple[str, str] | None:
    """(target label, new value) for a replace rule, or None when it does not apply; cached."""
    hit = cfg._cache.get(val)
    if hit is not None:
        return hit if isinstance(hit, tuple) else None
    result: tuple[str, str] | None = None
    m = cfg.pattern.fullmatch(val)
    if m is not None:
        target = expand(cfg._target, m) if "$" in cfg.target_label else cfg.target_label
        if LABEL_NAME_RE.fullmatch(target):  # Prometheus skips an invalid expanded name
            result = (target, expand(cfg._replacement, m))
    if len(cfg._cache) >= _CACHE_SIZE:
        cfg._cache.clear()
    cfg._cache[val] = result if result is not None else False
    return result


def _hashmod(text: str, modulus: int) -> str:
    # Prometheus keeps the low 8 bytes of the MD5, big-endian, for stable shard assignment.
    digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
    return str(int.from_bytes(digest[8:], "big") % modulus)


def _set(d: dict[str, str], name: str, value: str) -> bool:
    """Set or (for "") remove a label, as Prometheus's label builder does; true if it changed."""
    if d.get(name, "") == value:
        return False
    if value:
        d[name] = value
    else:
        del d[name]
    return True


def apply_relabel(configs: Sequence[RelabelConfig], labels: Labels) -> Labels | None:
    """Apply rules in order; None when a rule drops the series or no label is left.

    The input is returned unchanged (same object) when no rule changes it.
    """
    if not configs:
        return labels
    d = dict(labels)
    changed = False
    for cfg in configs:
        action = cfg.action
        src = cfg.source_labels
        if len(src) == 1:
            val = d.get(src[0], "")
        else:
            val = cfg.separator.join([d.get(name, "") for name in src])
        if action == "keep":
            if not _cached_match(cfg, val):
                return None
        elif action == "drop":
            if _cached_match(cfg, val):
                return None
        elif action == "replace":
            result = _replace(cfg, val)
            if result is not None:
                changed = _set(d, result[0], result[1]) or changed
        elif action == "keepequal":
            if d.get(cfg.target_label, "") != val:
                return None
        elif action == "dropequal":
            if d.get(cfg.target_label, "") == val:
                return None
        elif action == "lowercase":
            changed = _set(d, cfg.target_label, val.lower()) or changed
        elif action == "uppercase":
            changed = _set(d, cfg.target_label, val.upper()) or changed
        elif action == "hashmod":
            changed = _set(d, cfg.target_label, _hashmod(val, cfg.modulus)) or changed
        elif action == "labelmap":
            for name, value in list(d.items()):
                m = cfg.pattern.fullmatch(name)
                if m is not None:
                    new = expand(cfg._replacement, m)
                    if new:
                        changed = _set(d, new, value) or changed
        elif action == "labeldrop":
            for name in [k for k in d if _cached_match(cfg, k)]:
                del d[name]
                changed = True
        elif action == "labelkeep":
            for name in [k for k in d if not _cached_match(cfg, k)]:
                del d[name]
                changed = True
        else:  # pragma: no cover - check_relabel_config only admits ACTIONS
            raise ValueError(f"unknown relabel action {action!r}")
    if not changed:
        return labels
    if not d:
        return None  # Prometheus drops a sample whose relabelled label set is empty
    # Unchanged labels keep their pair objects, which other series share.
    before = {p[0]: p for p in labels}
    return tuple(sorted(p if (p := before.get(k)) is not None and p[1] == v else (k, v)
                        for k, v in d.items()))
