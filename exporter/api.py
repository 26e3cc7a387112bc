"""Read API in Prometheus's JSON shape (/api/v1/...): Grafana and scripts query the sidecar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from exporter import __version__
from exporter.durations import DurationError, parse_duration
from exporter.labels import Labels
from exporter.promql.engine import evaluate_instant, evaluate_range
from exporter.promql.parse import parse_expr
from exporter.promql.plan import plan_query
from exporter.promql.values import Matrix, PromQLError, Scalar, String
from exporter.store import SeriesStore
from exporter.web import Request, Response, Router

# What Go's strconv.ParseBool accepts.
_GO_BOOLS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
             **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}
# Prometheus refuses range queries that would return more points than this per series.
MAX_POINTS_PER_SERIES = 11_000


class DaemonView(Protocol):
    """What the API reads from the running daemon."""

    store: SeriesStore

    @property
    def query_max_samples(self) -> int: ...  # the config's, read per query: a reload applies
    def now_ms(self) -> int: ...
    def targets_payload(self) -> dict[str, Any]: ...
    def rules_payload(self, kind: str | None) -> dict[str, Any]: ...
    def alerts_payload(self) -> dict[str, Any]: ...
    def config_yaml(self) -> str: ...


class ApiError(Exception):
    """An API request that fails with Prometheus's error type and HTTP status."""

    def __init__(self, error_type: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


def format_value(v: float) -> str:
    """A sample value as Prometheus's API prints it (Go's FormatFloat 'f', -1)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    text = format(Decimal(repr(v)), "f")
    return text[:-2] if text.endswith(".0") else text


def format_value_e(v: float) -> str:
    """A value in Go's FormatFloat 'e', -1 form (`1e+00`, `2.5e-01`), as alert values print."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    digits = Decimal(repr(v)).normalize().as_tuple().digits
    return f"{v:.{max(len(digits) - 1, 0)}e}"


def format_time(t_ms: int) -> float | int:
    """A timestamp in seconds, as Prometheus's API prints it (millisecond precision)."""
    return t_ms // 1000 if t_ms % 1000 == 0 else t_ms / 1000


def parse_time(text: str | None, default_ms: int) -> int:
    """A Prometheus API time: Unix seconds (with fraction) or RFC 3339."""
    if text is None or text == "":
        return default_ms
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise ApiError("bad_data", f'cannot parse "{text}" to a valid timestamp') from None


def parse_step(text: str | None) -> int:
    """A range query step: seconds (with fraction) or a duration like `30s`."""
    if not text:
        raise ApiError("bad_data", 'invalid parameter "step": missing')
    try:
        ms = round(float(text) * 1000)
    except ValueError:
        try:
            ms = int(parse_duration(text))
        except DurationError:
            raise ApiError("bad_data", f'invalid parameter "step": cannot parse "{text}"') from None
    if ms <= 0:
        raise ApiError(
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not "
            "accepted. Try a positive integer",
        )
    return ms


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def _encode_result(value: Any, t_ms: int) -> dict[str, Any]:
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [format_time(t_ms), format_value(value.value)]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [format_time(t_ms), value.value]}
    if isinstance(value, Matrix):
        return {"resultType": "matrix", "result": _encode_matrix(value)}
    return {
        "resultType": "vector",
        "result": [
            {"metric": _metric(s.labels), "value": [format_time(t_ms), format_value(s.value)]}
            for s in value
        ],
    }


def _encode_matrix(value: Matrix) -> list[dict[str, Any]]:
    return [
        {
            "metric": _metric(series.labels),
            "values": [
                [format_time(t), format_value(v)] for t, v in zip(series.ts, series.vs, strict=True)
            ],
        }
        for series in value.series
    ]


class Api:
    """Handlers for the read API over a daemon view."""

    def __init__(self, view: DaemonView) -> None:
        self.view = view

    def register(self, router: Router) -> None:
        """Add every API route."""
        both = ("GET", "POST")
        router.add("/api/v1/query", self._wrap(self.query), both)
        router.add("/api/v1/query_range", self._wrap(self.query_range), both)
        router.add("/api/v1/series", self._wrap(self.series), both)
        router.add("/api/v1/labels", self._wrap(self.labels), both)
        router.add("/api/v1/label/<name>/values", self._wrap(self.label_values))
        router.add("/api/v1/status/buildinfo", self._wrap(self.buildinfo))
        router.add("/api/v1/status/config", self._wrap(self.config))
        router.add("/api/v1/targets", self._wrap(lambda r: self.view.targets_payload()))
        router.add("/api/v1/rules", self._wrap(self.rules))
        router.add("/api/v1/alerts", self._wrap(lambda r: self.view.alerts_payload()))

    def rules(self, request: Request) -> dict[str, Any]:
        """`/api/v1/rules` with Prometheus's filters (`type`, `rule_name[]`, `rule_group[]`,
        `file[]`, `exclude_alerts`), which Grafana's alert list sends."""
        kind = (request.param("type") or "").lower()
        if kind not in ("", "alert", "record"):
            raise ApiError("bad_data", f'invalid parameter "type": not supported value "{kind}"')
        exclude = request.param("exclude_alerts") or "false"
        if exclude not in _GO_BOOLS:
            raise ApiError("bad_data", 'invalid parameter "exclude_alerts": error converting '
                           f'exclude_alerts: strconv.ParseBool: parsing "{exclude}": '
                           "invalid syntax")
        params = request.params  # `rule_name[]=` filters for the empty name, as in Prometheus
        return filter_rules(self.view.rules_payload(kind or None),
                            names=params.get("rule_name[]", []),
                            groups=params.get("rule_group[]", []),
                            files=params.get("file[]", []), exclude_alerts=_GO_BOOLS[exclude])

    def _wrap(self, handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            try:
                data = handler(request)
            except ApiError as err:
                payload = {"status": "error", "errorType": err.error_type, "error": str(err)}
                return Response.json(payload, err.status)
            return Response.json({"status": "success", "data": data})

        return serve

    def _parse(self, request: Request) -> str:
        query = request.param("query")
        if not query:
            raise ApiError("bad_data", 'invalid parameter "query": unknown position: parse error: '
                           "no expression found in input")
        try:
            plan_query(query)
        except PromQLError as err:
            raise ApiError("bad_data", f'invalid parameter "query": {err}') from None
        return query

    def query(self, request: Request) -> dict[str, Any]:
        """Instant query at `time` (default now)."""
        query = self._parse(request)
        t_ms = parse_time(request.param("time"), self.view.now_ms())
        try:
            result = evaluate_instant(query, self.view.store, t_ms,
                                      max_samples=self.view.query_max_samples)
        except PromQLError as err:
            raise ApiError("execution", str(err), 422) from None
        return _encode_result(result.value, t_ms)

    def query_range(self, request: Request) -> dict[str, Any]:
        """Range query from `start` to `end` every `step`."""
        query = self._parse(request)
        start = parse_time(request.param("start"), -1)
        end = parse_time(request.param("end"), -1)
        if start < 0 and request.param("start") in (None, ""):
            raise ApiError("bad_data", 'invalid parameter "start": missing')
        if end < 0 and request.param("end") in (None, ""):
            raise ApiError("bad_data", 'invalid parameter "end": missing')
        step = parse_step(request.param("step"))
        if end < start:
            raise ApiError("bad_data", 'invalid parameter "end": end timestamp must not be '
                           "before start time")
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise ApiError("bad_data", "exceeded maximum resolution of 11,000 points per "
                           "timeseries. Try decreasing the query resolution (?step=XX)")
        try:
            result = evaluate_range(query, self.view.store, start, end, step,
                                    max_samples=self.view.query_max_samples)
        except PromQLError as err:
            raise ApiError("execution", str(err), 422) from None
        assert isinstance(result.value, Matrix)
        return {"resultType": "matrix", "result": _encode_matrix(result.value)}

    def _selected(self, request: Request) -> list[Labels] | None:
        selectors: Sequence[str] = request.params.get("match[]", [])
        if not selectors:
            return None
        found: dict[Labels, None] = {}
        for text in selectors:
            try:
                tree = parse_expr(text)
            except PromQLError as err:
                raise ApiError("bad_data", str(err)) from None
            if type(tree).__name__ != "VectorSelector":
                raise ApiError("bad_data", f'invalid parameter "match[]": {text} is not a '
                               "series selector")
            plan = plan_query(text)
            for alternative in getattr(plan, "alternatives", ()):
                for series in self.view.store.select(alternative):
                    found[series.labels] = None
        return list(found)

    def series(self, request: Request) -> list[dict[str, str]]:
        """Label sets of the series matching `match[]`."""
        selected = self._selected(request)
        if selected is None:
            raise ApiError("bad_data", "no match[] parameter provided")
        return [dict(labels) for labels in sorted(selected)]

    def labels(self, request: Request) -> list[str]:
        """Label names, of all series or of those matching `match[]`."""
        selected = self._selected(request)
        if selected is None:
            return self.view.store.label_names()
        return sorted({name for labels in selected for name, _ in labels})

    def label_values(self, request: Request) -> list[str]:
        """Values of one label."""
        name = request.path_args[0]
        selected = self._selected(request)
        if selected is None:
            return self.view.store.label_values(name)
        return sorted({v for labels in selected for k, v in labels if k == name})

    def buildinfo(self, request: Request) -> dict[str, str]:
        """Version information in Prometheus's shape."""
        return {
            "version": __version__,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
            "application": "value-exporter",
        }

    def config(self, request: Request) -> dict[str, str]:
        """The loaded configuration as YAML, secrets shown as <secret>."""
        return {"yaml": self.view.config_yaml()}


def wall_clock_ms() -> int:
    """Now, in milliseconds since the epoch."""
    return int(time.time() * 1000)


def filter_rules(payload: dict[str, Any], *, names: Sequence[str] = (),
                 groups: Sequence[str] = (), files: Sequence[str] = (),
                 exclude_alerts: bool = False) -> dict[str, Any]:
    """`/api/v1/rules`'s `rule_name[]`, `rule_group[]`, `file[]` and `exclude_alerts`: a
    group left with no rule by a filter is left out, as in Prometheus."""
    filtering = bool(names or groups or files)
    out = []
    for group in payload["groups"]:
        if (groups and group["name"] not in groups) or (files and group["file"] not in files):
            continue
        rules = [r for r in group["rules"] if not names or r["name"] in names]
        if exclude_alerts:
            rules = [{**r, "alerts": None} if "alerts" in r else r for r in rules]
        if rules or not filtering:
            out.append({**group, "rules": rules})
    return {**payload, "groups": out}
