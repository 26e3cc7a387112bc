"""The report as Markdown or self-contained HTML: one list of blocks, two renderers."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from exporter import report_svg as svg
from exporter import report_text as t
from exporter.report import (
    ImprovementFigures,
    JourneyFigures,
    MoneyFigures,
    Report,
    ServiceFigures,
    SLOFigures,
)

MONEY_LABELS = {
    "revenue_at_risk": "Revenue at risk (sales lost to failed requests)",
    "value_delivered": "Value delivered (sales completed)",
    "cost_of_downtime": "Cost of downtime (minutes of failures, at the agreed cost per minute)",
}


@dataclass(frozen=True)
class Block:
    """A heading (level 1-3), a paragraph, a table, or a chart (HTML only)."""

    kind: str  # "h1" | "h2" | "h3" | "p" | "table" | "chart"
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def blocks(report: Report) -> list[Block]:
    """The report's content, in reading order."""
    p = report.period
    span = f"{t.day(p.start_ms)} to {t.day(p.end_ms - 1)}"
    if p.to_date:
        span = f"{t.day(p.start_ms)} to date (up to {t.moment(p.data_end_ms)})"
    out = [Block("h1", f"Business value report: {p.label}"),
           Block("p", f"Period: {span}. All times are UTC. Figures come from "
                      f"{report.source}; generated {t.moment(report.generated_ms)}.")]
    days = len(p.days())
    if report.days_without_data >= days:
        out.append(Block("p", "No data for any day of this period."))
    elif report.days_without_data:
        out.append(Block("p", f"No data for {report.days_without_data} of the {days} days of "
                              "this period: figures cover only the days with data."))
    else:
        out.append(Block("p", f"Data covers all {days} days of this period."))
    for service in report.services:
        out += _service(service)
    if report.journeys:
        out.append(Block("h2", "Customer journeys"))
        for journey in report.journeys:
            out += _journey(journey)
    if report.improvements:
        out.append(Block("h2", "Improvement targets"))
        out.append(Block("table", header=("Improvement", "Owner", "Baseline", "Target",
                                          "Now", "Status"),
                         rows=tuple(_improvement(i) for i in report.improvements)))
    if report.others:
        out.append(Block("h2", "Other value and process measures (average over the period)"))
        out.append(Block("table", header=("Measure", "Owner", "Average"), rows=tuple(
            (o.help or t.title(o.name), o.owner, t.with_unit(o.average, o.unit))
            for o in report.others)))
    return out


def _service(service: ServiceFigures) -> list[Block]:
    out = [Block("h2", f"Service: {t.title(service.service)}")]
    for slo in service.slos:
        out += _slo(slo)
    for money in service.money:
        out += _money(money)
    return out


def _slo(f: SLOFigures) -> list[Block]:
    name = t.title(f.slo.name)
    objective = t.percent(f.objective)
    if f.attainment is None:
        text = (f"{name}: no events were counted in this period, so attainment against the "
                f"objective of {objective} is unknown.")
    else:
        met = "met" if f.attainment >= f.objective else "missed"
        text = (f"{name}: {t.percent(f.attainment)} of {t.count(f.total)} events were good "
                f"against an objective of {objective}, so the objective was {met}; "
                f"{t.percent(f.budget_used)} of the error budget was used.")
    if f.slo.description:
        described = f.slo.description.rstrip(".")
        text += f" What counts as good: {described[:1].lower()}{described[1:]}."
    if f.slo.owner:
        text += f" Owner: {f.slo.owner}."
    return [Block("p", text),
            Block("chart", svg.line(f.daily, f.objective, f"{name}: daily share of good "
                                                         f"events vs objective {objective}"))]


def _money(f: MoneyFigures) -> list[Block]:
    label = MONEY_LABELS[f.kind]
    text = f"{label}: {t.money(f.total, f.currency)}"
    text += f" (from {t.title(f.slo)}). Owner: {f.owner}." if f.owner else \
        f" (from {t.title(f.slo)})."
    return [Block("p", text),
            Block("chart", svg.bars(f.daily, f"{label.split(' (')[0]} per day, {f.currency}",
                                    "#27ae60" if f.kind == "value_delivered" else "#c0392b"))]


def _journey(f: JourneyFigures) -> list[Block]:
    j = f.journey
    first, last = f.stages[0], f.stages[-1]
    if f.conversion is None:
        text = f"{t.title(j.name)} journey: no attempts were counted, so conversion is unknown."
    else:
        text = (f"{t.title(j.name)} journey: {t.percent(f.conversion)} conversion: "
                f"{t.count(last.successes)} of {t.count(first.attempts)} customers who started "
                f'"{first.name}" completed "{last.name}".')
    if f.value is not None:
        text += f" Value realized: {t.money(f.value, j.currency.upper())}."
    if j.owner:
        text += f" Owner: {j.owner}."
    rows = tuple((s.name, t.count(s.attempts), t.count(s.successes),
                  t.percent(s.successes / s.attempts if s.attempts and s.successes is not None
                            else None)) for s in f.stages)
    return [Block("h3", f"{t.title(j.name)} journey"), Block("p", text),
            Block("table", header=("Stage", "Attempts", "Successes", "Success rate"),
                  rows=rows)]


def _improvement(f: ImprovementFigures) -> tuple[str, ...]:
    i = f.improvement
    target = f"{t.with_unit(i.target, f.unit)} by {t.day(i.target_by_ms)}"
    baseline = t.with_unit(f.baseline, f.unit)
    if f.baseline is not None:
        baseline += f" ({t.day(i.baseline_at_ms)})"
    status = f.status
    if f.progress is not None and status not in ("achieved",):
        status += f" ({t.percent(f.progress, 0)} of the way, {t.percent(f.expected, 0)} due)"
    return (i.description or t.title(i.name), i.owner, baseline, target,
            t.with_unit(f.current, f.unit), status)


# -- renderers ------------------------------------------------------------------------------------


def markdown(report: Report) -> str:
    """The report in Markdown (charts left out: the HTML has them)."""
    lines: list[str] = []
    for b in blocks(report):
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                      for row in b.rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
svg { display: block; margin: 0.3rem 0 1rem; }
"""


def html(report: Report) -> str:
    """The report as one HTML file: inline style and SVG, nothing fetched from elsewhere."""
    body: list[str] = []
    for b in blocks(report):
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{escape(h)}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "chart":
            body.append(b.text)
    title = escape(blocks(report)[0].text)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
