"""Backfill of SLO buckets from a Prometheus (range queries of SLI increases) on a first start.

With `backfill.prometheus_url` set and no saved state for an SLO, the engine asks
`backfill_slo` for the good and total events of every bucket in the SLO window, so a new
sidecar shows a full budget on day one instead of a budget that starts at 100%.

Each bucket k covers the left-open range (k * bucket_ms, (k + 1) * bucket_ms], as the engine's
`BucketRing` does; its events are `increase(<counter>[bucket])` evaluated at the bucket's end,
which is a range query with step = bucket width. Queries are cut into chunks of at most
`max_points` steps, under Prometheus's limit of 11,000 points per series.

Tolerance: `increase()` extrapolates from the samples inside each bucket to its edges, so a
bucket's count is exact when the counter's rate is constant between the two scrapes that
straddle each bucket edge, and otherwise off by at most the events of about one scrape interval
per edge (they move between neighbouring buckets far more than they vanish). Counter resets
are handled by Prometheus. Availability buckets (`count_over_time`, `sum_over_time`) count
samples and are exact: left-open windows at step = width partition time.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import promql_parser
import requests

from exporter.config import BackfillConfig
from exporter.durations import format_duration
from exporter.rules.slo_model import SLO, AvailabilitySLI, EventsSLI, LatencySLI, RatioSLI
from exporter.scrape_http import USER_AGENT, auth_header, configure_tls

log = logging.getLogger("value_exporter.backfill")

PROMETHEUS_MAX_POINTS = 11_000  # per series per query (Prometheus's query_range limit)
DEFAULT_MAX_POINTS = 10_000  # chunk size, with room under the limit for edge rounding
WINDOW_PLACEHOLDER = "{{.window}}"

GroupKey = tuple[str, ...]  # the group_by label values, in group_by order (as slo_events)
Matrix = dict[tuple[tuple[str, str], ...], dict[int, float]]  # labels -> {t_ms: value}


class BackfillError(Exception):
    """Backfill could not be done (Prometheus unreachable, an error, a bad answer)."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """Events in the bucket (start_ms, start_ms + bucket_ms]; start_ms is a multiple of it."""

    start_ms: int
    good: float
    total: float


@dataclass(frozen=True, slots=True)
class SLIQueries:
    """The range-query expressions for one SLI: total, and either good or bad events.

    `split_le`: the query keeps `le`; good is the bucket at the threshold, total the +Inf one.
    """

    total: str
    good: str | None = None
    bad: str | None = None
    split_le: bool = False


def sli_increase_queries(slo: SLO, bucket_ms: int, interval_ms: int) -> SLIQueries:
    """PromQL for the events of one bucket ending at the evaluation time, for each SLI kind."""
    sli = slo.sli
    width = format_duration(bucket_ms)
    by = list(slo.group_by)
    if isinstance(sli, RatioSLI):
        total = _sum_by(by, f"increase({_selector(sli.total)}[{width}])")
        if sli.errors is not None:
            return SLIQueries(total, bad=_sum_by(by, f"increase({_selector(sli.errors)}[{width}])"))
        assert sli.good is not None
        return SLIQueries(total, good=_sum_by(by, f"increase({_selector(sli.good)}[{width}])"))
    if isinstance(sli, LatencySLI):
        # `le` spellings differ ("1", "1.0", "1e+00"): keep le and compare as numbers here.
        expr = _sum_by([*by, "le"], f"increase({_selector(sli.histogram)}[{width}])")
        return SLIQueries(expr, split_le=True)
    if isinstance(sli, AvailabilitySLI):
        if _is_selector(sli.gauge):
            # Each raw sample is one event, good when 1: a 0/1 gauge sums to its good count.
            rng = f"{_selector(sli.gauge)}[{width}]"
            return SLIQueries(_sum_by(by, f"count_over_time({rng})"),
                              good=_sum_by(by, f"sum_over_time({rng})"))
        # A computed gauge: one event per series per evaluation interval, as the sidecar counts.
        sub = f"[{width}:{format_duration(interval_ms)}]"
        return SLIQueries(_sum_by(by, f"count_over_time(({sli.gauge}){sub})"),
                          good=_sum_by(by, f"sum_over_time((({sli.gauge}) == bool 1){sub})"))
    if isinstance(sli, EventsSLI):
        return SLIQueries(sli.total_query.replace(WINDOW_PLACEHOLDER, width),
                          bad=sli.error_query.replace(WINDOW_PLACEHOLDER, width))
    raise BackfillError(f"SLI kind {type(sli).__name__} cannot be backfilled")


class PrometheusClient:
    """`/api/v1/query_range` against one Prometheus, with the config's timeout and auth."""

    def __init__(self, config: BackfillConfig) -> None:
        self.url = config.prometheus_url.rstrip("/") + "/api/v1/query_range"
        self._http = config.http
        self._timeout_s = config.timeout / 1000
        session = requests.Session()
        session.trust_env = False  # as for scrapes: no proxy variables or .netrc unless told
        configure_tls(session, config.http.tls_config)
        session.headers.update({"User-Agent": USER_AGENT})
        self._session = session
        self.queries = 0

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()

    def query_range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> Matrix:
        """Values by label set and time (ms) for start..end at step; raises BackfillError."""
        form = {"query": expr, "start": _seconds(start_ms), "end": _seconds(end_ms),
                "step": _seconds(step_ms), "timeout": f"{self._timeout_s:g}s"}
        headers = {"Authorization": auth} if (auth := auth_header(self._http)) else {}
        self.queries += 1
        try:
            # POST: a long selector never runs into URL length limits of proxies.
            resp = self._session.post(self.url, data=form, headers=headers,
                                      timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise BackfillError(f"{self.url}: request failed: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            raise BackfillError(f"{self.url}: HTTP {resp.status_code}, not a JSON answer") \
                from None
        if resp.status_code != 200 or body.get("status") != "success":
            raise BackfillError(f"{self.url}: HTTP {resp.status_code}: "
                                f"{body.get('errorType', '')}: {body.get('error', '')}")
        data = body.get("data", {})
        if data.get("resultType") != "matrix":
            raise BackfillError(f"{self.url}: expected a matrix, got {data.get('resultType')}")
        out: Matrix = {}
        for series in data.get("result", []):
            labels = tuple(sorted(series.get("metric", {}).items()))
            points = out.setdefault(labels, {})
            for t, value in series.get("values", []):
                points[round(float(t) * 1000)] = float(value)
        return out


def chunks(first_ms: int, last_ms: int, step_ms: int, max_points: int) -> Iterator[
        tuple[int, int]]:
    """(start, end) pairs covering first..last at step, each with at most max_points points."""
    if not 1 <= max_points <= PROMETHEUS_MAX_POINTS:
        raise ValueError(f"max_points must be 1..{PROMETHEUS_MAX_POINTS}")
    start = first_ms
    while start <= last_ms:
        end = min(last_ms, start + (max_points - 1) * step_ms)
        yield start, end
        start = end + step_ms


def backfill_slo(client: PrometheusClient, slo: SLO, *, start_ms: int, end_ms: int,
                 bucket_ms: int, interval_ms: int | None = None,
                 max_points: int = DEFAULT_MAX_POINTS,
                 clock: Callable[[], float] = time.monotonic) -> dict[GroupKey, list[Bucket]]:
    """Good and total events per group and bucket for the buckets inside start..end.

    Buckets that lie wholly inside (start_ms, end_ms] are filled; buckets without data are
    left out (the engine reads them as no events). Raises BackfillError; the caller logs it
    and goes on without history.
    """
    queries = sli_increase_queries(slo, bucket_ms, interval_ms or bucket_ms)
    first_end = (start_ms // bucket_ms + 1) * bucket_ms
    if start_ms % bucket_ms:
        first_end += bucket_ms  # the bucket start_ms falls into is only partly in the window
    last_end = end_ms // bucket_ms * bucket_ms
    if last_end < first_end:
        return {}
    started = clock()
    total: dict[GroupKey, dict[int, float]] = {}
    good: dict[GroupKey, dict[int, float]] = {}
    bad: dict[GroupKey, dict[int, float]] = {}
    for lo, hi in chunks(first_end, last_end, bucket_ms, max_points):
        if queries.split_le:
            _split_le(client.query_range(queries.total, lo, hi, bucket_ms), slo, good, total)
            continue
        _add(total, client.query_range(queries.total, lo, hi, bucket_ms), slo.group_by)
        if queries.good is not None:
            _add(good, client.query_range(queries.good, lo, hi, bucket_ms), slo.group_by)
        if queries.bad is not None:
            _add(bad, client.query_range(queries.bad, lo, hi, bucket_ms), slo.group_by)
    out: dict[GroupKey, list[Bucket]] = {}
    for key, points in sorted(total.items()):
        buckets = []
        for t_ms, n in sorted(points.items()):
            if not math.isfinite(n):
                continue
            if queries.bad is not None:
                g = n - _finite(bad.get(key, {}).get(t_ms, 0.0))
            else:
                g = _finite(good.get(key, {}).get(t_ms, 0.0))
            # Extrapolation and non-atomic scrapes can put good a hair outside 0..total.
            buckets.append(Bucket(t_ms - bucket_ms, min(max(g, 0.0), n), n))
        if buckets:
            out[key] = buckets
    log.info("event=backfilled slo=%r buckets=%d groups=%d queries=%d duration_s=%.2f",
             slo.name, sum(len(b) for b in out.values()), len(out), client.queries,
             clock() - started)
    return out


# -- helpers ---------------------------------------------------------------------------


def _group_key(labels: tuple[tuple[str, str], ...], group_by: tuple[str, ...]) -> GroupKey:
    d = dict(labels)
    return tuple(d.get(name, "") for name in group_by)


def _add(into: dict[GroupKey, dict[int, float]], matrix: Matrix, group_by: tuple[str, ...],
         ) -> None:
    for labels, points in matrix.items():
        target = into.setdefault(_group_key(labels, group_by), {})
        for t_ms, v in points.items():
            target[t_ms] = target.get(t_ms, 0.0) + v


def _split_le(matrix: Matrix, slo: SLO, good: dict[GroupKey, dict[int, float]],
              total: dict[GroupKey, dict[int, float]]) -> None:
    assert isinstance(slo.sli, LatencySLI)
    threshold = slo.sli.threshold
    for labels, points in matrix.items():
        le = _le(dict(labels).get("le", ""))
        if le == threshold:
            _add(good, {labels: points}, slo.group_by)
        if le == math.inf:
            _add(total, {labels: points}, slo.group_by)


def _le(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 0.0


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def _sum_by(labels: list[str], expr: str) -> str:
    if not labels:
        return f"sum({expr})"
    return f"sum by ({', '.join(labels)}) ({expr})"


def _is_selector(expr: str) -> bool:
    try:
        node = promql_parser.parse(expr)
    except ValueError:
        return False
    return isinstance(node, promql_parser.VectorSelector) and node.offset is None \
        and node.at is None


def _selector(expr: str) -> str:
    """A plain selector, printed canonically; anything else cannot take a range."""
    try:
        node = promql_parser.parse(expr)
    except ValueError as exc:
        raise BackfillError(f"invalid selector {json.dumps(expr)}: {exc}") from None
    if not isinstance(node, promql_parser.VectorSelector):
        raise BackfillError(f"{json.dumps(expr)} is not a plain series selector")
    return str(node).removesuffix("{}")  # the printer writes `up{}` for `up`

