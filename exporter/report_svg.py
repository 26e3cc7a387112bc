"""Inline SVG charts for the HTML report (no scripts, no external assets)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from exporter.report import Daily

WIDTH, HEIGHT, PAD = 640, 160, 36


def _x(i: int, n: int) -> float:
    return PAD + (WIDTH - 2 * PAD) * (i + 0.5) / max(n, 1)


def bars(days: Sequence[Daily], label: str, color: str = "#c0392b") -> str:
    """Daily bars (e.g. revenue at risk per day); a day without data has no bar and a gap mark."""
    known = [d.value for d in days if d.value is not None]
    top = max(known, default=0.0) or 1.0
    width = (WIDTH - 2 * PAD) / max(len(days), 1) * 0.8
    parts = []
    for i, d in enumerate(days):
        x = _x(i, len(days)) - width / 2
        if d.value is None:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD:.1f}" font-size="9" '
                         'fill="#999">–</text>')
            continue
        h = (HEIGHT - 2 * PAD) * max(d.value, 0.0) / top
        parts.append(f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{width:.1f}" '
                     f'height="{h:.1f}" fill="{color}"><title>day {i + 1}: {d.value:,.2f}'
                     '</title></rect>')
    return _frame(label, f"{top:,.2f}", "0", "".join(parts))


def line(days: Sequence[Daily], objective: float, label: str) -> str:
    """The daily SLI against a dashed objective line; the scale spans both."""
    known = [d.value for d in days if d.value is not None]
    lo = min([*known, objective]) - 0.001
    hi = 1.0

    def y(v: float) -> float:
        return PAD + (HEIGHT - 2 * PAD) * (hi - v) / max(hi - lo, 1e-9)

    segments: list[list[str]] = [[]]
    for i, d in enumerate(days):
        if d.value is None:
            segments.append([])  # a gap: the line stops rather than dropping to 0
            continue
        segments[-1].append(f"{_x(i, len(days)):.1f},{y(d.value):.1f}")
    paths = "".join(f'<polyline points="{" ".join(s)}" fill="none" stroke="#2c7be5" '
                    'stroke-width="2"/>' for s in segments if s)
    target = (f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(objective):.1f}" '
              f'y2="{y(objective):.1f}" stroke="#555" stroke-dasharray="4 3"/>')
    return _frame(label, f"{hi * 100:.2f} %", f"{lo * 100:.2f} %", target + paths)


def _frame(label: str, top: str, bottom: str, body: str) -> str:
    return (f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}">'
            f'<text x="{PAD}" y="14" font-size="12">{escape(label)}</text>'
            f'<text x="{PAD}" y="{PAD - 4}" font-size="9">{escape(top)}</text>'
            f'<text x="{PAD}" y="{HEIGHT - PAD + 12}" font-size="9">{escape(bottom)}</text>'
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="#999"/>{body}</svg>')
