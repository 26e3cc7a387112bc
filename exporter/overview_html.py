"""Overview page rendering: one self-contained HTML document from the page rows (pure).

No external asset, no script: inline CSS (allowed by its hash in the Content-Security-Policy),
inline SVG bars, a meta refresh. Every text and attribute value goes through `html.escape`,
because label values come from scraped targets. Each number carries `data-series`,
`data-labels` and `data-value` so a browser test can compare it with /metrics.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, datetime
from html import escape

from exporter.improvements import improvement_status
from exporter.overview import (
    Figure,
    ImprovementRow,
    JourneyView,
    Overview,
    SLORow,
    TargetRow,
    ValueCard,
)

NO_DATA = "no data"
LINKS = (
    ("/metrics", "Metrics (Prometheus text format)"),
    ("/api/v1/rules", "Rules and alert state (JSON)"),
    ("/api/v1/alerts", "Active alerts (JSON)"),
    ("/api/v1/targets", "Scrape targets (JSON)"),
    ("/api/v1/status/config", "Loaded configuration (JSON)"),
    ("/api/v1/query?query=slo%3Aerror_budget_remaining%3Aratio", "Query API (JSON)"),
    ("/-/ready", "Readiness"),
)
STATUS_TEXT = {"ok": "OK", "warning": "Warning", "critical": "Critical", "nodata": "No data"}
_IMPROVEMENT_COLOUR = {"achieved": "ok", "on track": "ok", "behind": "warning",
                       "overdue": "critical"}

CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--ok:#15803d;--warn:#b45309;--crit:#b91c1c;
--bg:#f8fafc;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
header{background:#0f172a;color:#f8fafc;padding:16px 24px}
header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1}
header a{color:#93c5fd}
nav a{margin-right:14px;text-decoration:none}
nav{margin-top:8px}
main{padding:8px 24px 24px;max-width:1280px}
section{margin-top:20px}
h2{font-size:16px;margin:0 0 8px}
h3{font-size:14px;margin:0 0 4px;overflow-wrap:anywhere}
.hint{color:var(--muted);margin:0 0 8px}
.banner{background:#eff6ff;border:1px solid #bfdbfe;border-radius:6px;padding:10px 14px;
margin-top:16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .owner{color:var(--muted);font-size:12px}
.card dl{margin:8px 0 0;display:grid;grid-template-columns:auto 1fr;gap:2px 10px}
.card dt{color:var(--muted)}
.card dd{margin:0;font-size:18px;font-weight:600;text-align:right}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);width:100%}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
th{font-size:12px;color:var(--muted);font-weight:600;background:#f1f5f9}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bar{white-space:nowrap}
code{overflow-wrap:anywhere}
.nodata{color:var(--muted);font-style:italic;font-weight:400}
.status{display:inline-block;white-space:nowrap;border-radius:10px;padding:1px 9px;
font-size:12px;font-weight:600;color:#fff}
.status-ok{background:var(--ok)}.status-warning{background:var(--warn)}
.status-critical{background:var(--crit)}.status-nodata{background:#9ca3af}
.status-up{background:var(--ok)}.status-down{background:var(--crit)}
.status-unknown{background:#9ca3af}
.group{color:var(--muted);font-size:12px}
svg.bar .track{fill:#e5e7eb}svg.bar .fill{fill:var(--accent)}
svg.bar .fill.ok{fill:var(--ok)}svg.bar .fill.late{fill:var(--warn)}
svg.bar .mark{stroke:#111827;stroke-width:1.5}
svg.funnel .track{fill:#eef2ff}svg.funnel .fill{fill:#6366f1}
svg.funnel text{font:12px system-ui,sans-serif;fill:#111827}
.journey{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;
margin-bottom:12px}
.error{color:var(--crit);font-size:12px}
footer{color:var(--muted);padding:0 24px 24px}
footer a{color:var(--accent)}
"""


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# Only the page's own style block may apply (by hash: no other inline style, no script at
# all); nothing is fetched, the page cannot be framed, and forms and <base> are refused.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_sha256(CSS)}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
CONTENT_TYPE = "text/html; charset=utf-8"


# -- numbers -------------------------------------------------------------------------------


def format_number(value: float | None, unit: str) -> str:
    """A figure as the page prints it; None is "no data", never 0."""
    if value is None:
        return NO_DATA
    if math.isnan(value):
        return "NaN"
    if unit == "exhaustion":  # when the error budget runs out at the current burn rate
        if value <= 0:
            return "already spent"
        return "not at this rate" if math.isinf(value) else format_seconds(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if len(unit) == 3 and unit.isalpha() and unit.isupper():
        return f"{unit} {value:,.2f}"
    if unit == "ratio":
        return format_percent(value)
    if unit == "burn":
        return f"{value:.2f}×"
    if unit == "seconds":
        return format_seconds(value)
    if unit == "days":
        return f"{value:,.1f} days"
    if unit == "count":
        return f"{value:,.0f}"
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return text if unit in ("number", "", "1") else f"{text} {unit}"


def format_percent(ratio: float) -> str:
    """A ratio as a percentage with two decimals, more when rounding would print 100 %."""
    digits = 2
    # 0.99995 must not read as 100.00 %: a page that says "100 %" promises no error at all.
    while digits < 6 and ratio != 1 and round(ratio * 100, digits) == 100:
        digits += 1
    return f"{ratio * 100:.{digits}f} %"


def format_seconds(seconds: float) -> str:
    """A duration in the largest unit that keeps it above 2 (90 s, 45.0 min, 3.5 h, 12.0 d)."""
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_time(t_ms: int) -> str:
    """A UTC wall-clock time."""
    return datetime.fromtimestamp(t_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def figure_html(fig: Figure, tag: str = "span") -> str:
    """One number with the series, labels and exact value it shows."""
    labels = json.dumps(dict(fig.match), sort_keys=True, separators=(",", ":"))
    attrs = (f' data-series="{escape(fig.series)}" data-labels="{escape(labels)}"'
             f' data-unit="{escape(fig.unit)}"')
    if fig.value is None:
        return f'<{tag} class="fig nodata"{attrs}>{NO_DATA}</{tag}>'
    return (f'<{tag} class="fig"{attrs} data-value="{escape(repr(fig.value))}">'
            f"{escape(format_number(fig.value, fig.unit))}</{tag}>")


def _status(status: str, text: str | None = None) -> str:
    label = text if text is not None else STATUS_TEXT.get(status, status)
    return f'<span class="status status-{escape(status)}">{escape(label)}</span>'


def _bar(ratio: float | None, expected: float | None, on_track: bool | None) -> str:
    """A 0..100 % progress bar with the expected progress marked (inline SVG)."""
    if ratio is None:
        return ""
    width = max(0.0, min(1.0, ratio)) * 100
    kind = "" if on_track is None else (" ok" if on_track else " late")
    mark = ""
    if expected is not None:
        x = max(0.0, min(1.0, expected)) * 100
        mark = f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="12"/>'
    return (f'<svg class="bar" width="140" height="12" viewBox="0 0 100 12" role="img" '
            f'aria-label="progress {escape(format_percent(ratio))}">'
            f'<rect class="track" width="100" height="12" rx="3"/>'
            f'<rect class="fill{kind}" width="{width:.1f}" height="12" rx="3"/>{mark}</svg>')


# -- sections ----------------------------------------------------------------------------------


def _value_card(card: ValueCard) -> str:
    rows = "".join(f"<dt>{escape(f.caption)}</dt>{figure_html(f, 'dd')}" for f in card.figures)
    about = f" · SLO {escape(card.slo)}" if card.slo else ""
    return (f'<div class="card"><h3>{escape(card.title)}</h3>'
            f'<div class="owner">{escape(card.owner)}{about}</div>'
            f'{_hint(card.help)}{_hint(card.series, code=True)}<dl>{rows}</dl></div>')


def _hint(text: str, *, code: bool = False) -> str:
    if not text:
        return ""
    inner = f"<code>{escape(text)}</code>" if code else escape(text)
    return f'<p class="hint">{inner}</p>'


def _values(cards: tuple[ValueCard, ...]) -> str:
    if not cards:
        return ('<p class="hint">No value metrics defined. Add a <code>value:</code> section '
                "(revenue_at_risk, value_delivered, cost_of_downtime) to a rule file.</p>")
    return '<div class="cards">' + "".join(_value_card(c) for c in cards) + "</div>"


def _slo_row(row: SLORow) -> str:
    group = ", ".join(f"{k}={v}" for k, v in row.group)
    group_html = f'<div class="group">{escape(group)}</div>' if group else ""
    firing = (f'<div class="error">firing: {escape(", ".join(row.firing))}</div>'
              if row.firing else "")
    return (f"<tr><td><strong>{escape(row.name)}</strong>{group_html}"
            f'<div class="group">{escape(row.service)} · {escape(row.owner)}</div></td>'
            f'<td class="num">{escape(format_percent(row.objective))}</td>'
            f"<td>{escape(row.window)}</td>"
            f'<td class="num">{figure_html(row.sli)}</td>'
            f'<td class="num">{figure_html(row.budget_remaining)}</td>'
            f'<td class="num">{figure_html(row.burn_rate)}</td>'
            f'<td class="num">{figure_html(row.exhausted_in)}</td>'
            f"<td>{_status(row.status)}{firing}</td></tr>")


def _slos(rows: tuple[SLORow, ...]) -> str:
    if not rows:
        return ('<p class="hint">No SLOs defined. Add an <code>slos:</code> section to a rule '
                "file.</p>")
    head = ("<tr><th>SLO</th><th>Objective</th><th>Window</th><th>Current SLI</th>"
            "<th>Budget remaining</th><th>Burn rate (1h)</th><th>Budget gone in</th>"
            "<th>Status</th></tr>")
    return f"<table>{head}{''.join(_slo_row(r) for r in rows)}</table>"


def _improvement_row(row: ImprovementRow) -> str:
    if row.on_track is None:
        track = _status("nodata")
    else:  # the report's words
        days_left = row.days_left.value
        word = improvement_status(row.progress.value, row.on_track,
                                  overdue=days_left is not None and days_left < 0)
        track = _status(_IMPROVEMENT_COLOUR[word], word)
    arrow = "↑" if row.direction == "up" else "↓"
    return (f"<tr><td><strong>{escape(row.name)}</strong> {arrow}"
            f'<div class="group">{escape(row.owner)}</div>'
            f'<div class="group">{escape(row.description)}</div></td>'
            f'<td class="num">{figure_html(row.baseline)}</td>'
            f'<td class="num">{figure_html(row.target)}</td>'
            f'<td class="num">{figure_html(row.current)}</td>'
            f'<td class="bar">{_bar(row.progress.value, row.expected.value, row.on_track)} '
            f"{figure_html(row.progress)}</td>"
            f'<td class="num">{figure_html(row.expected)}</td>'
            f'<td class="num">{figure_html(row.days_left)}</td><td>{track}</td></tr>')


def _improvements(rows: tuple[ImprovementRow, ...]) -> str:
    if not rows:
        return ('<p class="hint">No improvement targets defined. Add an '
                "<code>improvements:</code> section to a rule file.</p>")
    head = ("<tr><th>Improvement</th><th>Baseline</th><th>Target</th><th>Current</th>"
            "<th>Progress</th><th>Expected by now</th><th>Due in</th><th>Status</th></tr>")
    return f"<table>{head}{''.join(_improvement_row(r) for r in rows)}</table>"


def _funnel(view: JourneyView) -> str:
    """Attempts per stage as bars relative to the first stage's attempts (inline SVG)."""
    first = view.stages[0].attempts.value if view.stages else None
    height = 26 * len(view.stages)
    parts = [f'<svg class="funnel" width="600" height="{height}" viewBox="0 0 600 {height}" '
             f'role="img" aria-label="{escape(view.name)} funnel">']
    for i, stage in enumerate(view.stages):
        y = 26 * i
        value = stage.attempts.value
        share = value / first if value is not None and first else 0.0
        width = max(0.0, min(1.0, share)) * 440
        label = f"{stage.step}. {stage.name}"
        parts.append(f'<rect class="track" x="150" y="{y + 3}" width="440" height="20"/>'
                     f'<rect class="fill" x="150" y="{y + 3}" width="{width:.1f}" height="20"/>'
                     f'<text x="0" y="{y + 18}">{escape(label)}</text>'
                     f'<text x="586" y="{y + 18}" text-anchor="end">'
                     f"{escape(format_number(value, 'count'))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _journey(view: JourneyView) -> str:
    rows = "".join(
        f"<tr><td>{s.step}. {escape(s.name)}</td><td class=\"num\">{figure_html(s.attempts)}</td>"
        f'<td class="num">{figure_html(s.successes)}</td>'
        f'<td class="num">{figure_html(s.success_ratio)}</td>'
        f'<td class="num">{figure_html(s.dropoff)}</td></tr>' for s in view.stages)
    value = (f" · value realized {figure_html(view.value)}" if view.value is not None else "")
    return (f'<div class="journey"><h3>{escape(view.name)} '
            f'<span class="group">({escape(view.owner)}, last {escape(view.window)})</span></h3>'
            f'<p class="hint">{escape(view.description)}</p>'
            f"<p>Conversion {figure_html(view.conversion)}{value}</p>{_funnel(view)}"
            "<table><tr><th>Stage</th><th>Attempts</th><th>Successes</th><th>Success</th>"
            f"<th>Drop-off to next</th></tr>{rows}</table></div>")


def _journeys(views: tuple[JourneyView, ...]) -> str:
    if not views:
        return ('<p class="hint">No customer journeys defined. Add a <code>journeys:</code> '
                "section to a rule file.</p>")
    return "".join(_journey(v) for v in views)


def _target_row(row: TargetRow, now_ms: int) -> str:
    if row.last_scrape_ms is None:
        last = f'<span class="nodata">{NO_DATA}</span>'
    else:
        ago = max(0.0, (now_ms - row.last_scrape_ms) / 1000)
        last = (f'<span title="{escape(format_time(row.last_scrape_ms))}">'
                f"{escape(format_seconds(ago))} ago</span>")
    error = f'<span class="error">{escape(row.last_error)}</span>' if row.last_error else ""
    return (f"<tr><td><strong>{escape(row.job)}</strong>"
            f'<div class="group">{escape(row.url)}</div></td>'
            f"<td>{_status(row.state, row.state)}</td><td>{last}</td>"
            f'<td class="num">{row.last_duration_s * 1000:.1f} ms</td>'
            f'<td class="num">{row.failures:,.0f}</td><td>{error}</td></tr>')


def _targets(rows: tuple[TargetRow, ...], now_ms: int) -> str:
    if not rows:
        return ('<p class="hint">No scrape targets configured. Add <code>targets:</code> or '
                "<code>scrape_configs:</code> to the configuration.</p>")
    head = ("<tr><th>Target</th><th>Health</th><th>Last scrape</th><th>Duration</th>"
            "<th>Failures</th><th>Last error</th></tr>")
    return f"<table>{head}{''.join(_target_row(r, now_ms) for r in rows)}</table>"


def _banner(ov: Overview) -> str:
    if ov.evaluated:
        return ""
    return ('<div class="banner" id="empty-state"><strong>Waiting for the first evaluation.'
            "</strong> The rule files are loaded and the targets below are being scraped; "
            "figures appear after the first rule evaluation and this page reloads itself "
            f"every {ov.refresh_s} s. Until then every figure reads “{NO_DATA}”.</div>")


def render_overview(ov: Overview) -> str:
    """The whole page."""
    nav = "".join(f'<a href="{escape(href)}">{escape(href.split("?")[0])}</a>'
                  for href, _ in LINKS)
    alerts = (f' · <a href="/api/v1/alerts">{ov.firing_alerts} alert'
              f'{"" if ov.firing_alerts == 1 else "s"} firing</a>')
    links = "".join(f'<li><a href="{escape(href)}">{escape(text)}</a></li>'
                    for href, text in LINKS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{ov.refresh_s}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>value-exporter overview</title><style>{CSS}</style></head><body>"
        "<header><h1>value-exporter overview</h1>"
        f"<p>Business value, service levels and scrape health · updated "
        f'<time id="generated">{escape(format_time(ov.generated_ms))}</time>'
        f" · refreshes every {ov.refresh_s} s{alerts}</p><nav>{nav}</nav></header><main>"
        f"{_banner(ov)}"
        '<section id="value"><h2>Business value</h2>'
        '<p class="hint">What IT delivers and what is at risk, in money.</p>'
        f"{_values(ov.values)}</section>"
        '<section id="slos"><h2>Service levels</h2>'
        '<p class="hint">Status: critical when the error budget is spent or a page alert fires; '
        "warning when a ticket alert fires or the budget burns faster than 1×.</p>"
        f"{_slos(ov.slos)}</section>"
        f'<section id="journeys"><h2>Customer journeys</h2>{_journeys(ov.journeys)}</section>'
        '<section id="improvements"><h2>Improvement targets</h2>'
        '<p class="hint">Progress 0 % at the baseline, 100 % at the target; the mark is where '
        "a straight line from baseline to due date would be today.</p>"
        f"{_improvements(ov.improvements)}</section>"
        '<section id="targets"><h2>Scrape health</h2>'
        f"{_targets(ov.targets, ov.generated_ms)}</section>"
        f"</main><footer><ul>{links}</ul></footer></body></html>\n"
    )
