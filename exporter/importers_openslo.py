"""OpenSLO v1 (`SLO`, `SLI` documents) -> `slos:` mappings, for `value-exporter import openslo`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from exporter.importers import (
    CannotConvert,
    Doc,
    InvalidInput,
    Notes,
    label_map,
    percent,
    slo_name,
)
from exporter.promql.parse import parse_expr
from exporter.promql.values import PromQLError

_SHORTHAND = re.compile(r"(\d+)([smhdwMQY])")
_ROLLING_APPROX = {"M": 30, "Q": 90, "Y": 365}  # days standing in for a month, quarter, year
_CALENDAR = {"w": "week", "M": "month", "Q": "quarter"}
_OPS = {"lte": "<=", "lt": "<", "gte": ">=", "gt": ">"}
# Functions over a counter whose result counts events over the range (irate would not).
_COUNTING = ("rate", "increase")
_RANGE = re.compile(r"\[\s*\d+[smhdwy][0-9smhdwy]*\s*\]")
_WINDOW = "[{{.window}}]"
_IGNORED_KINDS = {
    "Service": "",  # a service is its name, which each SLO carries
    "DataSource": "data sources hold connection settings; the sidecar reads what it scrapes",
    "AlertPolicy": "alert policies are not converted; each SLO gets the default "
                   "multi-window multi-burn-rate tiers (edit alerting.tiers to change them)",
    "AlertCondition": "alert conditions are not converted; each SLO gets the default tiers",
    "AlertNotificationTarget": "notification targets belong in Alertmanager's routing",
}


def convert_openslo(docs: list[Any], notes: Notes) -> list[Doc]:
    """OpenSLO v1 documents -> one SLO mapping per SLO objective."""
    slis: dict[str, Doc] = {}
    slo_docs: list[Doc] = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or "kind" not in doc:
            raise InvalidInput(f"document {i} is not an OpenSLO object; expected apiVersion and "
                               "kind")
        kind = str(doc["kind"])
        if doc.get("apiVersion") != "openslo/v1":
            notes.document(i, kind, f'apiVersion "{doc.get("apiVersion")}"; only openslo/v1 '
                           "is supported")
        elif kind == "SLI":
            slis[str((doc.get("metadata") or {}).get("name"))] = doc.get("spec") or {}
        elif kind == "SLO":
            slo_docs.append(doc)
        elif kind in _IGNORED_KINDS:
            if _IGNORED_KINDS[kind]:
                notes.document(i, kind, _IGNORED_KINDS[kind])
        else:
            notes.document(i, kind, "not an OpenSLO v1 kind")
    out: list[Doc] = []
    for doc in slo_docs:
        name = str((doc.get("metadata") or {}).get("name", ""))
        try:
            out.extend(_convert_slo(doc, slis, notes))
        except CannotConvert as exc:
            notes.cannot(name, exc.what, exc.reason)
    if not slo_docs:
        raise InvalidInput("no OpenSLO v1 SLO document; expected apiVersion: openslo/v1, kind: SLO")
    return out


def _convert_slo(doc: Doc, slis: dict[str, Doc], notes: Notes) -> list[Doc]:
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    name = slo_name(meta.get("name"), notes)
    base: Doc = {"name": name, "service": str(spec.get("service", ""))}
    description = spec.get("description") or meta.get("displayName")
    if description:
        base["description"] = str(description).strip()
    labels = label_map(name, "label", meta.get("labels"), notes)
    if labels:
        base["labels"] = labels
    window = _window(name, spec.get("timeWindow"), notes)
    indicator = _indicator(spec, slis)
    method = str(spec.get("budgetingMethod", "Occurrences"))
    if spec.get("alertPolicies"):
        notes.cannot(name, "alertPolicies", _IGNORED_KINDS["AlertPolicy"])
    objectives = spec.get("objectives") or []
    if not isinstance(objectives, list) or not objectives:
        raise CannotConvert("objectives", "there is none")
    out: list[Doc] = []
    for j, objective in enumerate(objectives):
        label = slo_name(objective.get("displayName") or objective.get("name") or str(j + 1),
                         Notes(notes.file))  # the suffix is ours to pick; no note for it
        this = name if len(objectives) == 1 else f"{name}-{label}"
        try:
            out.append({**base, "name": this, **_objective(this, objective, indicator, method,
                                                            notes), "window": window})
        except CannotConvert as exc:
            notes.cannot(this, exc.what, exc.reason)
    return out


def _indicator(spec: Doc, slis: dict[str, Doc]) -> Doc:
    if isinstance(spec.get("indicator"), dict):
        return spec["indicator"].get("spec") or {}
    ref = spec.get("indicatorRef")
    if ref is None:
        raise CannotConvert("indicator", "the SLO has neither indicator nor indicatorRef")
    if str(ref) not in slis:
        raise CannotConvert(f'indicatorRef "{ref}"', "no SLI document of that name in the file")
    return slis[str(ref)]


def _window(slo: str, raw: object, notes: Notes) -> str | Doc:
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], dict):
        raise CannotConvert("timeWindow", "it is missing; expected one rolling or calendar window")
    if len(raw) > 1:
        notes.cannot(slo, "timeWindow[1:]", "an SLO has one window; the first one is used")
    window = raw[0]
    m = _SHORTHAND.fullmatch(str(window.get("duration", "")))
    if m is None:
        raise CannotConvert("timeWindow.duration", f'"{window.get("duration")}" is not a '
                            "duration like 28d or 1M")
    count, unit = int(m.group(1)), m.group(2)
    if window.get("isRolling", not window.get("calendar")):
        if unit in _ROLLING_APPROX:
            days = count * _ROLLING_APPROX[unit]
            notes.approximately(slo, "timeWindow", f"a rolling {m.group(0)} became {days}d")
            return f"{days}d"
        return m.group(0)
    if count != 1 or unit not in _CALENDAR:
        raise CannotConvert("timeWindow", f"calendar window {m.group(0)}: calendar windows "
                            "are one week (1w), month (1M) or quarter (1Q)")
    calendar = window.get("calendar") or {}
    out: Doc = {"calendar": _CALENDAR[unit]}
    if calendar.get("timeZone"):
        out["timezone"] = str(calendar["timeZone"])
    start = str(calendar.get("startTime", ""))
    if start and not _period_start(start, _CALENDAR[unit]):
        notes.approximately(slo, "timeWindow.calendar.startTime", f'"{start}" is not kept: '
                            f"periods start at each {_CALENDAR[unit]}'s beginning at midnight")
    return out


def _period_start(text: str, unit: str) -> bool:
    """Whether a startTime lies on a period boundary, so dropping it changes nothing."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return False
    midnight = (t.hour, t.minute, t.second) == (0, 0, 0)
    if unit == "week":
        return midnight and t.weekday() == 0
    return midnight and t.day == 1 and (unit == "month" or t.month in (1, 4, 7, 10))


def _objective(slo: str, objective: Doc, indicator: Doc, method: str, notes: Notes) -> Doc:
    if objective.get("indicator") or objective.get("indicatorRef"):
        raise CannotConvert("objectives[].indicator", "composite SLOs (an indicator per "
                            "objective) have no counterpart; convert each part as its own SLO")
    if "targetPercent" in objective:
        target = float(objective["targetPercent"])
    elif "target" in objective:
        target = percent(float(objective["target"]) * 100)
    else:
        raise CannotConvert("objective", "it has neither target nor targetPercent")
    out: Doc = {"objective": target}
    if method not in ("Occurrences", "Timeslices"):
        raise CannotConvert(f"budgetingMethod {method}", "only Occurrences (exact event counts) "
                            "and Timeslices (share of good slices) have a counterpart")
    slice_window = _slice_window(objective) if method == "Timeslices" else ""
    if "ratioMetric" in indicator:
        out.update(_ratio(indicator["ratioMetric"] or {}))
        if slice_window:
            if "timeSliceTarget" not in objective:
                raise CannotConvert("objective", "Timeslices without timeSliceTarget")
            out["budgeting"] = {"timeslices": {
                "slice": slice_window, "good_if": f"sli >= {objective['timeSliceTarget']}"}}
    elif "thresholdMetric" in indicator:
        out.update(_threshold(slo, indicator["thresholdMetric"] or {}, objective, slice_window,
                              notes))
    else:
        raise CannotConvert("indicator", "neither ratioMetric nor thresholdMetric")
    return out


def _slice_window(objective: Doc) -> str:
    raw = objective.get("timeSliceWindow")
    if isinstance(raw, int | float):
        return f"{int(raw)}s"  # a bare number is seconds
    m = _SHORTHAND.fullmatch(str(raw))
    if m is None or m.group(2) not in "smhd":
        raise CannotConvert("timeSliceWindow", f'"{raw}" is not a duration like 1m')
    return m.group(0)


def _query(part: object, what: str) -> str:
    source = (part or {}).get("metricSource") if isinstance(part, dict) else None
    if not isinstance(source, dict):
        raise CannotConvert(what, "it has no metricSource")
    kind = str(source.get("type", "Prometheus"))
    if kind.lower() != "prometheus":
        raise CannotConvert(what, f"metric source type {kind} is not Prometheus")
    spec = source.get("spec") or {}
    query = spec.get("query") or spec.get("promql")
    if not query:
        raise CannotConvert(what, "its metricSource spec has no query")
    return str(query).strip()


def _ratio(metric: Doc) -> Doc:
    if "raw" in metric:
        raise CannotConvert("ratioMetric.raw", "a precomputed ratio has no event counts, so the "
                            "budget cannot be an exact sum of events; give good or bad and total")
    if ("good" in metric) == ("bad" in metric):
        raise CannotConvert("ratioMetric", "it needs exactly one of good and bad, and total")
    which = "good" if "good" in metric else "bad"
    part = _query(metric[which], f"ratioMetric.{which}")
    total = _query(metric.get("total"), "ratioMetric.total")
    if metric.get("counter") is False:
        raise CannotConvert("ratioMetric", "counter: false (sampled values, not counters) "
                            "cannot be summed into event counts")
    simple = [_counter_selector(q) for q in (part, total)]
    key = "good" if which == "good" else "errors"
    if all(simple) and simple[0] and simple[1] and simple[0][1] == simple[1][1]:
        out: Doc = {"sli": {"ratio": {key: simple[0][0], "total": simple[1][0]}}}
        if simple[0][1]:
            out["group_by"] = list(simple[0][1])
        return out
    part_w, total_w = _windowed(part, which), _windowed(total, "total")
    error_query = part_w if which == "bad" else f"({total_w}) - ({part_w})"
    return {"sli": {"events": {"error_query": error_query, "total_query": total_w}}}


def _counter_selector(query: str) -> tuple[str, tuple[str, ...]] | None:
    """`sum by (l) (rate(sel[5m]))`, `rate(sel[5m])` or `sel` -> (sel, (l,)); None otherwise."""
    try:
        tree = parse_expr(query)
    except PromQLError:
        return None
    by: tuple[str, ...] = ()
    if type(tree).__name__ == "AggregateExpr":
        modifier = tree.modifier
        if str(tree.op) != "sum" or tree.param is not None or (
                modifier is not None and not str(modifier.type).endswith("By")):
            return None
        by = tuple(modifier.labels) if modifier is not None else ()
        tree = tree.expr
    if type(tree).__name__ == "Call" and tree.func.name in _COUNTING:
        tree = tree.args[0].vector_selector
    if type(tree).__name__ != "VectorSelector" or tree.offset is not None or tree.at is not None:
        return None
    text = str(tree)
    return (text[:-2] if text.endswith("{}") else text), by


def _windowed(query: str, what: str) -> str:
    """The query with each range replaced by the window placeholder the sidecar fills in."""
    if not _RANGE.search(query):
        raise CannotConvert(f"ratioMetric.{what}", "the query has no range like [5m] to count "
                            "events over, nor is it a plain counter selector")
    return _RANGE.sub(_WINDOW, query)


def _threshold(slo: str, metric: Doc, objective: Doc, slice_window: str, notes: Notes) -> Doc:
    query = _query(metric, "thresholdMetric")
    op = _OPS.get(str(objective.get("op")))
    if op is None or "value" not in objective:
        raise CannotConvert("objective", "a threshold metric needs op (lte, lt, gte, gt) and value")
    value = objective["value"]
    quantile = _histogram_quantile(query)
    if slice_window and quantile and op in ("<=", "<"):
        # p(q) <= T exactly when at least q of the requests took T or less: a latency SLI whose
        # slices are good when their ratio reaches q (histogram_quantile interpolates inside
        # buckets, so T should be a bucket bound; the sidecar insists on that).
        q, selector, by = quantile
        out: Doc = {"sli": {"latency": {"histogram": selector, "threshold": value}},
                    "budgeting": {"timeslices": {"slice": slice_window, "good_if": f"sli >= {q}"}}}
        if by:
            out["group_by"] = list(by)
        if op == "<":
            notes.approximately(slo, "op lt", "counted as lte: a request at the threshold is good")
        return out
    out = {"sli": {"availability": {"gauge": f"({query}) {op} bool {value}"}}}
    if slice_window:
        out["budgeting"] = {"timeslices": {"slice": slice_window, "good_if": "sli >= 1"}}
        notes.approximately(slo, "thresholdMetric with Timeslices", "a slice is good when the "
                            "threshold holds at every evaluation in it, not for one value per "
                            "slice")
    return out


def _histogram_quantile(query: str) -> tuple[float, str, tuple[str, ...]] | None:
    """`histogram_quantile(q, sum by (le, ...) (rate(x_bucket[5m])))` -> (q, selector, labels)."""
    try:
        tree = parse_expr(query)
    except PromQLError:
        return None
    if type(tree).__name__ != "Call" or tree.func.name != "histogram_quantile":
        return None
    q_node, inner = tree.args
    if type(q_node).__name__ != "NumberLiteral":
        return None
    found = _counter_selector(str(inner))
    if found is None or not found[1] or "le" not in found[1] or type(inner).__name__ != (
            "AggregateExpr") or not found[0].split("{")[0].endswith("_bucket"):
        return None
    return float(q_node.val), found[0], tuple(label for label in found[1] if label != "le")
