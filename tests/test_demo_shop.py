"""Tests for the demo shop: exposition, deterministic rates, bursts, control API and lifecycle."""

from __future__ import annotations

import itertools
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.demo.model import Conditions, Counts
from exporter.demo.shop import ShopServer, parse_listen, start_shop
from exporter.demo.simulation import deterministic_rates
from exporter.rules.load import load_rule_files

REPO_ROOT = Path(__file__).resolve().parent.parent
OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
START = 1_700_000_000.0

EXPECTED_TYPES = {
    "shop_http_requests": "counter",
    "shop_http_request_duration_seconds": "histogram",
    "shop_orders": "counter",
    "shop_order_value_eur": "counter",
    "shop_payments": "counter",
    "shop_journey_events": "counter",
    "shop_queue_depth": "gauge",
    "shop_sessions_active": "gauge",
    "shop_dependency_up": "gauge",
    "shop_start_time_seconds": "gauge",
    "shop_build_info": "gauge",
    "itsm_incidents_opened": "counter",
    "itsm_incidents_resolved": "counter",
    "itsm_incidents_open": "gauge",
    "itsm_incident_time_to_restore_seconds": "histogram",
    "itsm_changes_deployed": "counter",
    "itsm_changes_failed": "counter",
}

Values = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def det_shop(clock: FakeClock) -> Iterator[ShopServer]:
    shop = start_shop("127.0.0.1:0", deterministic=True, clock=clock)
    yield shop
    shop.stop()


def scrape(shop: ShopServer, *, openmetrics: bool = False) -> list[Metric]:
    headers = {"Accept": OPENMETRICS_ACCEPT} if openmetrics else {}
    response = requests.get(f"{shop.url}/metrics", headers=headers, timeout=5)
    response.raise_for_status()
    if openmetrics:
        return list(parse_openmetrics(response.text))
    return list(parse_text(response.text))


def values(families: list[Metric]) -> Values:
    return {(s.name, frozenset(s.labels.items())): float(s.value) for f in families
            for s in f.samples}


def value(vals: Values, name: str, **labels: str) -> float:
    return vals[(name, frozenset(labels.items()))]


def test_text_exposition_has_every_family_with_its_type(det_shop: ShopServer) -> None:
    """A plain scrape gets text format 0.0.4 with every documented family and type."""
    response = requests.get(f"{det_shop.url}/metrics", timeout=5)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    types = {f.name: f.type for f in parse_text(response.text)}
    assert types == EXPECTED_TYPES
    assert "# HELP shop_http_requests_total " in response.text


def test_openmetrics_when_accept_asks_for_it(det_shop: ShopServer, clock: FakeClock) -> None:
    """An OpenMetrics Accept header gets OpenMetrics that the strict parser accepts."""
    clock.now += 12.5
    response = requests.get(f"{det_shop.url}/metrics", headers={"Accept": OPENMETRICS_ACCEPT},
                            timeout=5)
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    types = {f.name: f.type for f in parse_openmetrics(response.text)}
    assert types == EXPECTED_TYPES


def test_gzip_when_accepted(det_shop: ShopServer) -> None:
    """A scraper that accepts gzip, as Prometheus does, gets a compressed body."""
    response = requests.get(f"{det_shop.url}/metrics", headers={"Accept-Encoding": "gzip"},
                            timeout=5)
    assert response.headers["Content-Encoding"] == "gzip"
    assert "shop_orders_total" in response.text


@pytest.mark.parametrize("elapsed", [0.0, 1.0, 10.0, 37.5, 3600.0])
def test_deterministic_counters_are_rate_times_elapsed(
    det_shop: ShopServer, clock: FakeClock, elapsed: float
) -> None:
    """Deterministic samples are rate x elapsed exactly; OpenMetrics floors counts and keeps
    buckets within half an observation of the floored count's share."""
    clock.now = START + elapsed
    text_vals = values(scrape(det_shop))
    om_vals = values(scrape(det_shop, openmetrics=True))
    rates = deterministic_rates(Conditions())
    for (name, labels), rate in rates.items():
        expected = rate * elapsed
        assert value(text_vals, name, **dict(labels)) == expected, name
        om = value(om_vals, name, **dict(labels))
        if name.endswith("_count"):
            assert om == math.floor(expected), name
        elif name.endswith("_bucket"):
            count_key = (name.removesuffix("_bucket") + "_count", labels[:-1])
            count_rate = rates[count_key]
            share = expected / (count_rate * elapsed) if elapsed else 0.0
            whole_count = math.floor(count_rate * elapsed)
            assert om == math.floor(om) and abs(om - whole_count * share) <= 0.5, name
        else:
            assert om == expected, name
    assert value(text_vals, "shop_start_time_seconds") == START


def test_documented_deterministic_rates(det_shop: ShopServer, clock: FakeClock) -> None:
    """The rates other tests and rule files rely on hold after 128 seconds."""
    clock.now = START + 128
    vals = values(scrape(det_shop, openmetrics=True))
    checks = {
        ("shop_http_requests_total", (("route", "/"), ("method", "GET"), ("code", "200"))):
            128 * 4 * 511 / 512,
        ("shop_http_requests_total", (("route", "/checkout"), ("method", "POST"), ("code", "500"))):
            128 * 0.5 / 512,  # 1/512 of checkouts fail when calm
        ("shop_http_request_duration_seconds_bucket", (("route", "/checkout"), ("le", "0.3"))):
            128 * 0.5 * 63 / 64,  # 63/64 answered within the latency SLO's 0.3 s
        ("shop_http_request_duration_seconds_count", (("route", "/checkout"),)): 64.0,
        ("shop_journey_events_total", (("stage", "session_started"),)): 256.0,
        ("shop_journey_events_total", (("stage", "product_viewed"),)):
            128 * 6 * (1 - 1 / 32 - 1 / 512),
        ("itsm_changes_deployed_total", ()): 128 / 256,
        ("itsm_changes_failed_total", ()): 128 / 2048,
    }
    for (name, labels), expected in checks.items():
        assert value(vals, name, **dict(labels)) == expected, name
    assert value(vals, "shop_build_info", version="1.4.2", mode="deterministic") == 1.0
    assert value(vals, "shop_dependency_up", dependency="payment_gateway") == 1.0


def _rate(rates: Counts, sample: str, **want: str) -> float:
    """Events per second of the samples whose labels include `want`."""
    return sum(v for (name, labels), v in rates.items()
               if name == sample and want.items() <= dict(labels).items())


def _checkout_errors(rates: Counts) -> float:
    return (_rate(rates, "shop_http_requests_total", route="/checkout", code="500")
            / _rate(rates, "shop_http_requests_total", route="/checkout"))


def _checkout_slow(rates: Counts) -> float:
    latency = "shop_http_request_duration_seconds"
    return 1 - (_rate(rates, f"{latency}_bucket", route="/checkout", le="0.3")
                / _rate(rates, f"{latency}_count", route="/checkout"))


def _payment_errors(provider: str) -> Callable[[Counts], float]:
    def ratio(rates: Counts) -> float:
        return (_rate(rates, "shop_payments_total", provider=provider, outcome="error")
                / _rate(rates, "shop_payments_total", provider=provider))
    return ratio


@pytest.mark.parametrize(("slo", "bad_ratio", "calm_burn", "burst_burn"), [
    # 1/512 of checkouts fail: (1/512) / 0.5 % = 0.390625; a 50 % burst: 0.5 / 0.5 % = 100.
    ("checkout-availability", _checkout_errors, 0.390625, 100.0),
    # 63/64 within 0.3 s: (1/64) / 5 % = 0.3125; the burst's degraded 5/8: (3/8) / 5 % = 7.5.
    ("checkout-latency", _checkout_slow, 0.3125, 7.5),
    # Each provider fails 1/256: (1/256) / 1 % = 0.390625; a 50 % burst: 0.5 / 1 % = 50.
    ("payment-success", _payment_errors("card"), 0.390625, 50.0),
    ("payment-success", _payment_errors("wallet"), 0.390625, 50.0),
], ids=["checkout-availability", "checkout-latency", "payment-success-card",
        "payment-success-wallet"])
def test_calm_shop_meets_its_slos_and_a_burst_burns_them(
    slo: str, bad_ratio: Callable[[Counts], float], calm_burn: float, burst_burn: float,
) -> None:
    """The calm shop burns each shop SLO's budget at under half the allowed rate, a burst at
    many times it (the scrape SLO reads `up`, which the shop does not set)."""
    slos = {s.name: s for s in load_rule_files([REPO_ROOT / "rules" / "shop-slos.yaml"]).slos}
    budget = slos[slo].error_budget
    calm = bad_ratio(deterministic_rates(Conditions())) / budget
    burst = bad_ratio(deterministic_rates(Conditions(1.0, 0.5))) / budget
    assert calm == pytest.approx(calm_burn, rel=1e-9) and calm < 0.5
    assert burst == pytest.approx(burst_burn, rel=1e-9)


@pytest.mark.parametrize(("elapsed", "count", "within"), [
    # 0.5 checkouts/s, 1/64 of them over 0.3 s: 15 x 1/64 = 0.23 rounds to no slow one, so
    # the first 30 s are not 14 of 15 within 0.3 s (floor(15 x 63/64)) as per-bucket floors
    # would give.
    (30.0, 15.0, 15.0),
    (62.0, 31.0, 31.0),  # 31/64 = 0.48: still none
    (64.0, 32.0, 31.0),  # 32/64 = 0.5 rounds up: the 32nd is the first slow one
    (600.0, 300.0, 295.0),  # 300/64 = 4.69: 5 slow ones
], ids=["30s", "62s", "64s", "600s"])
def test_openmetrics_buckets_count_whole_slow_observations(
    det_shop: ShopServer, clock: FakeClock, elapsed: float, count: float, within: float,
) -> None:
    """In OpenMetrics the share over a bucket bound arrives as whole slow observations."""
    clock.now = START + elapsed
    vals = values(scrape(det_shop, openmetrics=True))
    name = "shop_http_request_duration_seconds"
    assert value(vals, f"{name}_count", route="/checkout") == count
    assert value(vals, f"{name}_bucket", route="/checkout", le="0.3") == within


def test_openmetrics_buckets_never_decrease_across_a_burst(
    det_shop: ShopServer, clock: FakeClock
) -> None:
    """Whole-observation buckets rise over time and by bound while a burst starts and ends."""
    previous: Values = {}
    for step in range(40):
        clock.now = START + step * 7.5
        if step == 10:
            det_shop.burst(90, 0.5)
        vals = values(scrape(det_shop, openmetrics=True))
        buckets: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        for (name, labels), v in vals.items():
            if name.endswith(("_bucket", "_count")):
                assert v >= previous.get((name, labels), 0.0), (step, name, labels)
            if name.endswith("_bucket"):
                le = dict(labels)["le"]
                buckets.setdefault(labels - {("le", le)}, []).append((float(le), v))
        for series in buckets.values():
            counts = [v for _, v in sorted(series)]
            assert counts == sorted(counts), step
        previous = vals


def test_orders_and_journey_agree(det_shop: ShopServer, clock: FakeClock) -> None:
    """Paid orders, successful payments, order creations and order value tell one story."""
    clock.now = START + 64
    vals = values(scrape(det_shop))
    completed = value(vals, "shop_orders_total", status="completed")
    payments = sum(value(vals, "shop_payments_total", provider=p, outcome="success")
                   for p in ("card", "wallet"))
    assert completed == pytest.approx(payments)
    assert completed == value(vals, "shop_journey_events_total", stage="order_paid")
    assert completed == value(vals, "shop_http_requests_total", route="/api/orders",
                              method="POST", code="201")
    assert value(vals, "shop_order_value_eur_total") == pytest.approx(completed * 42.5)


def test_burst_endpoint_raises_checkout_and_payment_errors(
    det_shop: ShopServer, clock: FakeClock
) -> None:
    """POST /-/burst switches checkout and payment errors to the ratio, then expires on time."""
    calm = deterministic_rates(Conditions())
    burst = deterministic_rates(Conditions(1.0, 0.5))
    key_500 = ("shop_http_requests_total", (("route", "/checkout"), ("method", "POST"),
                                            ("code", "500")))
    key_err = ("shop_payments_total", (("provider", "card"), ("outcome", "error")))
    clock.now = START + 10
    response = requests.post(f"{det_shop.url}/-/burst?seconds=30&error_ratio=0.5", timeout=5)
    assert response.status_code == 200
    assert response.json()["burst"]["until"] == START + 40
    assert burst[key_500] == 0.25 and burst[key_500] > calm[key_500]

    clock.now = START + 40
    vals = values(scrape(det_shop))
    for name, labels in (key_500, key_err):
        expected = calm[name, labels] * 10 + burst[name, labels] * 30
        assert value(vals, name, **dict(labels)) == pytest.approx(expected, rel=1e-12)
    assert value(vals, "shop_dependency_up", dependency="payment_gateway") == 1.0

    clock.now = START + 100  # the burst ended at +40 by itself
    vals = values(scrape(det_shop))
    expected = calm[key_500] * 70 + burst[key_500] * 30
    assert value(vals, *key_500[:1], **dict(key_500[1])) == pytest.approx(expected, rel=1e-12)
    assert requests.get(f"{det_shop.url}/-/burst", timeout=5).json() == {"burst": None}


def test_burst_stop_endpoint_ends_the_burst(det_shop: ShopServer, clock: FakeClock) -> None:
    """POST /-/burst/stop returns the shop to calm rates before the burst would expire."""
    det_shop.burst(600, 0.75)
    clock.now = START + 5
    during = values(scrape(det_shop))
    assert value(during, "shop_dependency_up", dependency="payment_gateway") == 0.0
    assert requests.post(f"{det_shop.url}/-/burst/stop", timeout=5).status_code == 200
    clock.now = START + 15
    after = values(scrape(det_shop))
    calm = deterministic_rates(Conditions())
    labels = {"route": "/payment", "method": "POST", "code": "502"}
    grown = value(after, "shop_http_requests_total", **labels) - value(
        during, "shop_http_requests_total", **labels)
    rate = calm[("shop_http_requests_total", tuple(labels.items()))]
    assert grown == pytest.approx(rate * 10, rel=1e-12)
    assert value(after, "shop_dependency_up", dependency="payment_gateway") == 1.0


@pytest.mark.parametrize(
    "query", ["seconds=-1", "error_ratio=2", "error_ratio=0", "seconds=abc", "seconds=1e9"],
)
def test_burst_rejects_bad_parameters(det_shop: ShopServer, query: str) -> None:
    """A burst request with an out-of-range or unparsable parameter is a 400."""
    response = requests.post(f"{det_shop.url}/-/burst?{query}", timeout=5)
    assert response.status_code == 400
    assert response.text.startswith("Bad Request: ")


def test_random_burst_raises_error_counters() -> None:
    """In random mode a requested burst multiplies checkout 5xx and payment errors."""
    clock = FakeClock()
    with start_shop(clock=clock) as shop:
        clock.now += 600
        before = values(scrape(shop))
        shop.burst(600, 0.6)
        clock.now += 600
        after = values(scrape(shop))
    labels = {"route": "/checkout", "method": "POST", "code": "500"}
    calm_errors = value(before, "shop_http_requests_total", **labels)
    burst_errors = value(after, "shop_http_requests_total", **labels) - calm_errors
    # About 0.5 req/s x traffic (0.5..1.6) x 0.6 over 600 s, against ~0.6 when calm; the
    # bound leaves room for a random burst having hit the calm period too.
    assert burst_errors > 80
    payment_errors = sum(value(after, "shop_payments_total", provider=p, outcome="error")
                         for p in ("card", "wallet"))
    assert payment_errors > 50


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_calm_shop_stays_within_its_slos_from_the_start(seed: int) -> None:
    """A new random shop's bad shares stay under each SLO's budget at every early scrape."""
    clock = FakeClock()
    with start_shop(clock=clock, seed=seed) as shop:
        for _ in range(40):  # 10 minutes of 15 s scrapes
            clock.now += 15
            vals = values(scrape(shop))
            if shop.simulation.current_burst() is not None:
                break  # a random burst is meant to burn
            latency = "shop_http_request_duration_seconds"
            checkouts = value(vals, f"{latency}_count", route="/checkout")
            if not checkouts:
                continue
            shares = {  # bad share, budget: the rounded tally gives at most 1/256, 1/128, 1/32
                "checkout 5xx": (value(vals, "shop_http_requests_total", route="/checkout",
                                       method="POST", code="500") / checkouts, 0.005),
                "checkout slow": (1 - value(vals, f"{latency}_bucket", route="/checkout",
                                            le="0.3") / checkouts, 0.05),
            }
            for p in ("card", "wallet"):
                payments = sum(value(vals, "shop_payments_total", provider=p, outcome=o)
                               for o in ("success", "declined", "error"))
                errors = value(vals, "shop_payments_total", provider=p, outcome="error")
                shares[f"{p} errors"] = (errors / payments if payments else 0.0, 0.01)
            for what, (share, budget) in shares.items():
                assert share < budget, (clock.now - START, what, share)


def test_random_mode_is_reproducible_and_monotonic() -> None:
    """Two random shops with one seed and one clock agree, and their counters never go down."""
    clocks = [FakeClock(), FakeClock()]
    shops = [start_shop(clock=c, seed=7) for c in clocks]
    try:
        previous: Values = {}
        for step in (30.0, 30.0, 900.0):
            for c in clocks:
                c.now += step
            first, second = (values(scrape(s)) for s in shops)
            assert first == second
            for key, v in first.items():
                if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
                    assert v >= previous.get(key, 0.0), key
                    if not key[0].endswith(("_sum", "_eur_total")):
                        assert v == math.floor(v), key
            previous = first
    finally:
        for s in shops:
            s.stop()


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "random"])
def test_histogram_buckets_are_cumulative_with_a_0_3_bucket(deterministic: bool) -> None:
    """Every histogram series has rising buckets, +Inf equal to _count, and latency a 0.3 bucket."""
    clock = FakeClock()
    with start_shop(deterministic=deterministic, clock=clock) as shop:
        clock.now += 300
        families = {f.name: f for f in scrape(shop, openmetrics=True)}
    for name in ("shop_http_request_duration_seconds", "itsm_incident_time_to_restore_seconds"):
        series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        counts = {}
        for s in families[name].samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if k != "le")
            if s.name.endswith("_bucket"):
                series.setdefault(labels, []).append((float(s.labels["le"]), float(s.value)))
            elif s.name.endswith("_count"):
                counts[labels] = float(s.value)
        assert series
        for labels, buckets in series.items():
            assert [b for b, _ in buckets] == sorted(b for b, _ in buckets)
            assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))
            assert buckets[-1] == (math.inf, counts[labels])
            if name.startswith("shop_"):
                assert 0.3 in [b for b, _ in buckets]


def test_stop_frees_the_port() -> None:
    """After stop() nothing answers on the port and a new shop can listen on it again."""
    shop = start_shop()
    port = shop.port
    assert requests.get(f"{shop.url}/-/healthy", timeout=5).status_code == 200
    shop.stop()
    shop.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=2)
    with start_shop(f"127.0.0.1:{port}") as again:
        assert again.port == port
        assert requests.get(f"{again.url}/-/healthy", timeout=5).status_code == 200


def test_control_and_health_endpoints(det_shop: ShopServer) -> None:
    """Health answers GET, the burst control refuses GET, unknown paths are 404."""
    assert requests.get(f"{det_shop.url}/-/healthy", timeout=5).text == "Demo shop is Healthy.\n"
    assert requests.get(f"{det_shop.url}/-/burst/stop", timeout=5).status_code == 405
    assert requests.post(f"{det_shop.url}/metrics", timeout=5).status_code == 405
    assert requests.get(f"{det_shop.url}/nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9878", ("127.0.0.1", 9878)), ("[::1]:0", ("::1", 0)),
     ("localhost:80", ("localhost", 80)), (":9878", None), ("127.0.0.1", None),
     ("127.0.0.1:http", None), ("127.0.0.1:70000", None)],
    ids=["ipv4", "ipv6", "name", "no-host", "no-port", "named-port", "port-range"],
)
def test_parse_listen(listen: str, expected: tuple[str, int] | None) -> None:
    """Listen addresses need an explicit host and a numeric port."""
    if expected is None:
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            parse_listen(listen)
    else:
        assert parse_listen(listen) == expected


def test_shop_only_command_serves_until_sigterm() -> None:
    """`value-exporter demo --shop-only` serves on the given address and exits 0 on SIGTERM."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = ("import sys; from exporter.cli import main; sys.exit(main(['demo', '--shop-only', "
            f"'--shop-listen', '127.0.0.1:{port}', '--deterministic']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert 'shop_build_info{mode="deterministic",version="1.4.2"} 1.0' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        assert 'msg="demo shop stopped"' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
