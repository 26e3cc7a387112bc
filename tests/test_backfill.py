"""Tests for SLO backfill: query building, chunking, errors, real Prometheus 3.x with known data."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from exporter.backfill import (
    BackfillError,
    Bucket,
    PrometheusClient,
    backfill_slo,
    chunks,
    sli_increase_queries,
)
from exporter.config import BackfillConfig
from exporter.config_http import BasicAuth, HTTPClientConfig, Secret
from exporter.durations import Duration
from exporter.rules.slo_model import (
    SLO,
    AvailabilitySLI,
    EventsSLI,
    LatencySLI,
    RatioSLI,
    RollingWindow,
)
from tests.promtool import PrometheusServer, require_prometheus, require_promtool

DAY_MS = 86_400_000
BUCKET_MS = 300_000  # 5m buckets
SCRAPE_S = 15
T0_S = 1_704_067_200  # 2024-01-01T00:00:00Z, a bucket edge: the first sample, every counter 0
DAYS = 3
N_PER_BUCKET = BUCKET_MS // 1000 // SCRAPE_S  # 20 scrapes in a bucket


def _slo(sli: Any, group_by: tuple[str, ...] = ()) -> SLO:
    return SLO(name="checkout", service="shop", objective_percent=99.0,
               window=RollingWindow(30 * DAY_MS), sli=sli, group_by=group_by)


# -- query building and chunking (no server) -----------------------------------------------


@pytest.mark.parametrize(("sli", "group_by", "expected"), [
    (RatioSLI(total='req_total{job="a"}', errors='req_total{job="a",code=~"5.."}'), ("route",),
     {"total": 'sum by (route) (increase(req_total{job="a"}[5m]))',
      "bad": 'sum by (route) (increase(req_total{job="a",code=~"5.."}[5m]))'}),
    (RatioSLI(total="req_total", good="ok_total"), (),
     {"total": "sum(increase(req_total[5m]))", "good": "sum(increase(ok_total[5m]))"}),
    (LatencySLI(histogram="lat_bucket", threshold=0.3), ("route",),
     {"total": "sum by (route, le) (increase(lat_bucket[5m]))", "split_le": True}),
    (AvailabilitySLI(gauge='up{job="a"}'), (),
     {"total": 'sum(count_over_time(up{job="a"}[5m]))',
      "good": 'sum(sum_over_time(up{job="a"}[5m]))'}),
    (AvailabilitySLI(gauge="min(up)"), (),
     {"total": "sum(count_over_time((min(up))[5m:15s]))",
      "good": "sum(sum_over_time(((min(up)) == bool 1)[5m:15s]))"}),
    (EventsSLI(error_query="sum(increase(e[{{.window}}]))",
               total_query="sum(increase(t[{{.window}}]))"), (),
     {"total": "sum(increase(t[5m]))", "bad": "sum(increase(e[5m]))"}),
], ids=["ratio-errors", "ratio-good", "latency", "availability", "availability-expr", "events"])
def test_increase_queries_per_sli_kind(sli: Any, group_by: tuple[str, ...],
                                       expected: dict[str, Any]) -> None:
    """Each SLI kind becomes the documented range-query expressions for one bucket."""
    q = sli_increase_queries(_slo(sli, group_by), BUCKET_MS, 15_000)
    assert {k: v for k, v in {"total": q.total, "good": q.good, "bad": q.bad,
                              "split_le": q.split_le}.items() if v} == expected


def test_not_a_selector_is_refused() -> None:
    """A ratio SLI whose counter is not a plain selector cannot take a range: a clear error."""
    with pytest.raises(BackfillError, match="not a plain series selector"):
        sli_increase_queries(_slo(RatioSLI(total="sum(x)", good="y")), BUCKET_MS, 15_000)


@pytest.mark.parametrize(("first", "last", "step", "max_points", "expected"), [
    (0, 0, 10, 5, [(0, 0)]),
    (0, 40, 10, 5, [(0, 40)]),
    (0, 50, 10, 5, [(0, 40), (50, 50)]),
    (10, 200, 10, 10, [(10, 100), (110, 200)]),
], ids=["one-point", "exactly-full", "one-over", "two-full"])
def test_chunks_cover_every_step_once(first: int, last: int, step: int, max_points: int,
                                      expected: list[tuple[int, int]]) -> None:
    """Chunks cover first..last at step without overlap, none over max_points points."""
    assert list(chunks(first, last, step, max_points)) == expected


def test_chunks_refuse_more_than_prometheus_allows() -> None:
    """A chunk size over Prometheus's 11,000 points per series is refused."""
    with pytest.raises(ValueError, match="11000"):
        list(chunks(0, 10, 1, 11_001))


# -- HTTP behaviour against a fake Prometheus ---------------------------------------------------


class _FakePrometheus:
    """A loopback POST /api/v1/query_range answering what the test says; stop() ends it."""

    def __init__(self, status: int, body: dict[str, Any], delay_s: float = 0.0) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, list[str]]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                outer.requests.append((dict(self.headers), form))
                time.sleep(delay_s)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def test_auth_timeout_parameter_and_values_reach_prometheus() -> None:
    """Basic auth and the timeout are sent; matrix values come back as buckets by group."""
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"route": "a"}, "values": [[600, "10"], [900, "12"]]}]}}
    fake = _FakePrometheus(200, body)
    try:
        config = BackfillConfig(fake.url, Duration(5000), HTTPClientConfig(
            basic_auth=BasicAuth("reader", Secret("s3cret"))))
        client = PrometheusClient(config)
        slo = _slo(RatioSLI(total="t", good="t"), ("route",))
        got = backfill_slo(client, slo, start_ms=300_000, end_ms=900_000, bucket_ms=BUCKET_MS)
        client.close()
    finally:
        fake.stop()
    assert got == {("a",): [Bucket(300_000, 10, 10), Bucket(600_000, 12, 12)]}
    headers, form = fake.requests[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"reader:s3cret").decode()
    assert form["timeout"] == ["5s"] and form["step"] == ["300.000"]
    assert form["start"] == ["600.000"] and form["end"] == ["900.000"]


@pytest.mark.parametrize(("status", "body", "delay_s", "message"), [
    (400, {"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution"},
     0.0, "HTTP 400: bad_data: exceeded maximum resolution"),
    (200, {"status": "success", "data": {"resultType": "vector", "result": []}}, 0.0,
     "expected a matrix"),
    (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, 2.0,
     "request failed: ReadTimeout"),
], ids=["prometheus-error", "wrong-shape", "timeout"])
def test_failures_are_backfill_errors(status: int, body: dict[str, Any], delay_s: float,
                                      message: str) -> None:
    """An error answer, a wrong shape or a timeout raises BackfillError with a clear message."""
    fake = _FakePrometheus(status, body, delay_s)
    try:
        client = PrometheusClient(BackfillConfig(fake.url, Duration(500)))
        with pytest.raises(BackfillError, match=message):
            backfill_slo(client, _slo(RatioSLI(total="t", good="g")), start_ms=0,
                         end_ms=BUCKET_MS * 3, bucket_ms=BUCKET_MS)
        client.close()
    finally:
        fake.stop()


def test_unreachable_prometheus_is_a_backfill_error() -> None:
    """Nothing listening: BackfillError, never another exception."""
    from tests.scrape_fixtures import free_port

    client = PrometheusClient(BackfillConfig(f"http://127.0.0.1:{free_port()}", Duration(500)))
    with pytest.raises(BackfillError, match="request failed"):
        backfill_slo(client, _slo(RatioSLI(total="t", good="g")), start_ms=0,
                     end_ms=BUCKET_MS * 3, bucket_ms=BUCKET_MS)


# -- real Prometheus 3.x with known data -----------------------------------------------------------
#
# Every counter starts at 0 at T0 and gains the bucket's rate at each 15s scrape inside that
# bucket, so the rate is constant between the two scrapes around every bucket edge and
# increase() is exact: (v(end) - v(first)) * 300/285 = 19r * 20/19 = 20r. Route b's counters
# restart (a process restart) in the middle of one bucket, which increase() also counts exactly.


def _rate(route: str, k: int) -> tuple[int, int]:
    """(requests, errors) added per scrape in bucket k for a route."""
    requests = (3 + k % 7) if route == "a" else (1 + k % 4)
    errors = (k % 3 == 0) + (k % 11 == 0) if route == "a" else (k % 5 == 0)
    return requests, int(errors)


def _latency_rate(k: int) -> tuple[int, int, int]:
    """(le=0.1, le=0.3, +Inf) cumulative bucket increments per scrape in bucket k."""
    fast = 2 + k % 3
    ok = fast + 1 + k % 2
    return fast, ok, ok + (k % 4 == 0)


RESET_BUCKET = 100  # route b's counters restart at the 10th scrape of this bucket


def _up(i: int) -> int:
    """The availability gauge at scrape i: down for 7 scrapes every 500."""
    return 0 if i % 500 < 7 else 1


def _write_openmetrics(path: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Write the data; return the expected (good, total) per SLI and bucket start (ms)."""
    scrapes = DAYS * 86_400 // SCRAPE_S
    expected: dict[str, dict[int, tuple[float, float]]] = {
        "ratio/a": {}, "ratio/b": {}, "latency": {}, "availability": {}}

    def bucket_of(i: int) -> int:
        # Scrape i at T0 + 15i lies in the left-open bucket ((t-1) // width).
        return ((T0_S + i * SCRAPE_S) * 1000 - 1) // BUCKET_MS

    def note(name: str, k: int, good: float, total: float) -> None:
        g, t = expected[name].get(k * BUCKET_MS, (0.0, 0.0))
        expected[name][k * BUCKET_MS] = (g + good, t + total)

    lines = ["# TYPE app_requests counter", "# HELP app_requests Requests."]
    errors_lines = ["# TYPE app_errors counter", "# HELP app_errors Failed requests."]
    latency = ["# TYPE app_latency_seconds histogram", "# HELP app_latency_seconds Latency."]
    up = ["# TYPE app_up gauge", "# HELP app_up 1 when the app answered."]
    req = {"a": 0, "b": 0}
    err = {"a": 0, "b": 0}
    lat = [0, 0, 0]
    for i in range(scrapes + 1):
        t = T0_S + i * SCRAPE_S
        k = bucket_of(i)
        if i > 0:
            for route in ("a", "b"):
                r, e = _rate(route, k)
                if route == "b" and k == bucket_of(0) + RESET_BUCKET and \
                        (t * 1000) % BUCKET_MS == 10 * SCRAPE_S * 1000:
                    req[route] = err[route] = 0  # restarted from zero, then this scrape's events
                req[route] += r
                err[route] += e
                note(f"ratio/{route}", k, r - e, r)
            f, o, inf = _latency_rate(k)
            lat = [lat[0] + f, lat[1] + o, lat[2] + inf]
            note("latency", k, o, inf)
        if i > 0:
            note("availability", k, _up(i), 1)
        for route in ("a", "b"):
            lines.append(f'app_requests_total{{route="{route}"}} {req[route]} {t}')
            errors_lines.append(f'app_errors_total{{route="{route}"}} {err[route]} {t}')
        for le, v in zip(("0.1", "0.3", "+Inf"), lat, strict=True):
            latency.append(f'app_latency_seconds_bucket{{le="{le}"}} {v} {t}')
        latency.append(f"app_latency_seconds_count {lat[2]} {t}")
        latency.append(f"app_latency_seconds_sum {lat[2] * 0.1:.1f} {t}")
        up.append(f"app_up {_up(i)} {t}")
    path.write_text("\n".join([*lines, *errors_lines, *latency, *up, "# EOF", ""]))
    return expected


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[PrometheusServer, dict[str, dict[int, tuple[float, float]]]]]:
    promtool = require_promtool()
    require_prometheus()
    folder = tmp_path_factory.mktemp("backfill")
    expected = _write_openmetrics(folder / "data.om")
    subprocess.run([str(promtool), "tsdb", "create-blocks-from", "openmetrics", "-q",
                    "--max-block-duration=24h", str(folder / "data.om"), str(folder / "tsdb")],
                   check=True, capture_output=True, timeout=300)
    # Prometheus's time retention (15d) counts back from the newest block, not from now, so
    # data from 2024 stays; no scrape configs: the TSDB holds only the blocks.
    server = PrometheusServer({"global": {"scrape_interval": "15s"}}, folder)
    try:
        yield server, expected
    finally:
        server.stop()


def _client(server: PrometheusServer) -> PrometheusClient:
    return PrometheusClient(BackfillConfig(f"http://127.0.0.1:{server.port}", Duration(30_000)))


def _as_dict(buckets: list[Bucket]) -> dict[int, tuple[float, float]]:
    return {b.start_ms: (b.good, b.total) for b in buckets}


def _assert_equal(got: dict[int, tuple[float, float]],
                  want: dict[int, tuple[float, float]]) -> None:
    assert got.keys() == want.keys()
    for start, (good, total) in want.items():
        # Exact for this data up to float rounding of increase()'s 20/19 extrapolation factor.
        assert got[start] == (pytest.approx(good, rel=1e-9), pytest.approx(total, rel=1e-9)), \
            start


WINDOW = (T0_S * 1000, (T0_S + DAYS * 86_400) * 1000)


def test_ratio_buckets_from_real_prometheus_equal_known_increases(
        prometheus: tuple[PrometheusServer, dict[str, dict[int, tuple[float, float]]]]) -> None:
    """Per route and 5m bucket over 3 days, good and total equal the written increases, in
    chunks of 100 points (9 per query), across a counter reset."""
    server, expected = prometheus
    client = _client(server)
    slo = _slo(RatioSLI(total="app_requests_total", errors="app_errors_total"), ("route",))
    got = backfill_slo(client, slo, start_ms=WINDOW[0], end_ms=WINDOW[1], bucket_ms=BUCKET_MS,
                       max_points=100)
    client.close()
    assert set(got) == {("a",), ("b",)}
    assert len(got[("a",)]) == DAYS * 288
    _assert_equal(_as_dict(got[("a",)]), expected["ratio/a"])
    _assert_equal(_as_dict(got[("b",)]), expected["ratio/b"])
    assert client.queries == 2 * 9  # total and errors, 864 buckets in chunks of 100


def test_one_chunk_and_many_chunks_agree(
        prometheus: tuple[PrometheusServer, dict[str, dict[int, tuple[float, float]]]]) -> None:
    """Chunking changes the number of queries, never the buckets."""
    server, _ = prometheus
    slo = _slo(RatioSLI(total="app_requests_total", good="app_requests_total"))
    results = []
    for max_points in (10_000, 37):
        client = _client(server)
        results.append(backfill_slo(client, slo, start_ms=WINDOW[0], end_ms=WINDOW[1],
                                    bucket_ms=BUCKET_MS, max_points=max_points))
        client.close()
    assert results[0] == results[1]


def test_latency_and_availability_buckets_from_real_prometheus(
        prometheus: tuple[PrometheusServer, dict[str, dict[int, tuple[float, float]]]]) -> None:
    """Latency (the le=0.3 bucket over +Inf) and availability (samples of 1 over samples)
    buckets equal the written data."""
    server, expected = prometheus
    client = _client(server)
    latency = backfill_slo(client, _slo(LatencySLI("app_latency_seconds_bucket", 0.3)),
                           start_ms=WINDOW[0], end_ms=WINDOW[1], bucket_ms=BUCKET_MS)
    _assert_equal(_as_dict(latency[()]), expected["latency"])
    up = backfill_slo(client, _slo(AvailabilitySLI("app_up")), start_ms=WINDOW[0],
                      end_ms=WINDOW[1], bucket_ms=BUCKET_MS)
    _assert_equal(_as_dict(up[()]), expected["availability"])
    client.close()


def test_events_sli_and_a_window_inside_the_data(
        prometheus: tuple[PrometheusServer, dict[str, dict[int, tuple[float, float]]]]) -> None:
    """A Sloth-style events SLI over the last day only (a window that starts mid-bucket) fills
    just the whole buckets inside it."""
    server, expected = prometheus
    client = _client(server)
    sli = EventsSLI(error_query='sum(increase(app_errors_total{route="a"}[{{.window}}]))',
                    total_query='sum(increase(app_requests_total{route="a"}[{{.window}}]))')
    start = WINDOW[1] - DAY_MS + 1000
    got = backfill_slo(client, _slo(sli), start_ms=start, end_ms=WINDOW[1],
                       bucket_ms=BUCKET_MS)
    client.close()
    want = {k: v for k, v in expected["ratio/a"].items() if k >= start}
    assert min(want) == WINDOW[1] - DAY_MS + BUCKET_MS  # the partial first bucket is left out
    _assert_equal(_as_dict(got[()]), want)
