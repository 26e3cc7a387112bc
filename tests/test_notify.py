"""Alertmanager notifier: payload, batching, queue limit, resend and endsAt, auth, restarts."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from exporter.alerts import FIRING, AlertingRuleState
from exporter.config import AlertmanagerConfig, Config, load_config
from exporter.config_http import Authorization, BasicAuth, HTTPClientConfig, Secret
from exporter.daemon import Daemon
from exporter.demo.shop import ShopServer, start_shop
from exporter.durations import Duration
from exporter.errors import UserError
from exporter.labels import Labels
from exporter.notify import Notifier, go_datetime, notifier_from_config, to_notification
from exporter.notify_delivery import DeliveryLedger, Notification
from exporter.promql.values import Sample
from exporter.rules.model import AlertingRule
from exporter.selfmetrics import SelfMetrics
from exporter.state import StateStore
from tests.scrape_fixtures import wait_until

MIN = 60_000


@dataclass
class FakeAlertmanager:
    """An HTTP server on 127.0.0.1 recording every POST; `status` and `hold` steer answers."""

    status: int = 200
    posts: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = field(default_factory=list)
    hold: threading.Event | None = None  # when set up, requests wait for it before answering
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.arrived.set()
                if fake.hold is not None:
                    fake.hold.wait(30)
                fake.posts.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(fake.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def address(self) -> str:
        """host:port for static_configs."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert received, in order."""
        return [a for _, _, batch in self.posts for a in batch]

    def stop(self) -> None:
        """Shut the server down."""
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def am() -> Iterator[FakeAlertmanager]:
    fake = FakeAlertmanager()
    yield fake
    fake.stop()


def _metrics() -> SelfMetrics:
    return SelfMetrics(CollectorRegistry())


def _value(m: SelfMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    got = m.registry.get_sample_value(name, labels or {})
    return 0.0 if got is None else got


def _note(i: int, *, resolved: bool = False, ends: int = 10 * MIN) -> Notification:
    return Notification((("alertname", "A"), ("n", str(i))), (("summary", f"alert {i}"),),
                        MIN, ends, resolved, "http://sidecar/graph")


def _notifier(m: SelfMetrics, *ams: AlertmanagerConfig, **kw: Any) -> Notifier:
    return Notifier(list(ams), m, **kw)


def _cfg(fake: FakeAlertmanager, **kw: Any) -> AlertmanagerConfig:
    return AlertmanagerConfig(targets=(fake.address,), timeout=Duration(5000), **kw)


def test_batches_are_posted_in_the_v2_shape(am: FakeAlertmanager) -> None:
    """Queued alerts leave in batches of batch_size, each a v2 PostableAlert list."""
    m = _metrics()
    n = _notifier(m, _cfg(am), batch_size=2)
    n.send([_note(i) for i in range(5)])  # queued before the thread runs: batches 2, 2, 1
    n.start()
    assert wait_until(lambda: len(am.alerts()) == 5, 10)
    n.stop()
    assert [len(batch) for _, _, batch in am.posts] == [2, 2, 1]
    path, headers, batch = am.posts[0]
    assert path == "/api/v2/alerts"
    assert headers["Content-Type"] == "application/json"
    assert batch[0] == {
        "labels": {"alertname": "A", "n": "0"}, "annotations": {"summary": "alert 0"},
        # 60 000 ms and 600 000 ms after the epoch, as strfmt.DateTime writes them.
        "startsAt": "1970-01-01T00:01:00.000Z", "endsAt": "1970-01-01T00:10:00.000Z",
        "generatorURL": "http://sidecar/graph",
    }
    url = f"http://{am.address}/api/v2/alerts"
    assert _value(m, "value_exporter_notifications_sent_total", {"alertmanager": url}) == 5
    assert _value(m, "value_exporter_notifications_dropped_total") == 0
    assert _value(m, "value_exporter_notifications_alertmanagers_discovered") == 1


@pytest.mark.parametrize(("capacity", "batches", "kept", "dropped"), [
    # 5 alerts into room for 3: the 2 oldest go.
    pytest.param(3, [5], ["2", "3", "4"], 2, id="one-batch-over-capacity"),
    # 2 queued, then 3 more into room for 4: the oldest one goes.
    pytest.param(4, [2, 3], ["1", "0", "1", "2"], 1, id="queue-full-drops-oldest"),
    pytest.param(10, [2, 3], ["0", "1", "0", "1", "2"], 0, id="room-for-all"),
])
def test_queue_overflow_drops_the_oldest(am: FakeAlertmanager, capacity: int,
                                         batches: list[int], kept: list[str],
                                         dropped: int) -> None:
    """A full queue drops its oldest alerts, counts them, and keeps the newest."""
    m = _metrics()
    n = _notifier(m, _cfg(am), capacity=capacity)
    for size in batches:
        n.send([_note(i) for i in range(size)])
    assert _value(m, "value_exporter_notifications_queue_length") == len(kept)
    assert _value(m, "value_exporter_notifications_queue_capacity") == capacity
    n.start()
    assert wait_until(lambda: len(am.alerts()) == len(kept), 10)
    n.stop()
    assert [a["labels"]["n"] for a in am.alerts()] == kept
    assert _value(m, "value_exporter_notifications_dropped_total") == dropped


@pytest.mark.parametrize(("same_entry", "dropped"), [
    # One entry with a good and a bad endpoint: one success covers the entry.
    pytest.param(True, 0, id="one-entry-one-ok"),
    # Two entries, one all bad: Prometheus counts the batch dropped.
    pytest.param(False, 3, id="two-entries-one-down"),
])
def test_every_alertmanager_gets_every_batch(am: FakeAlertmanager, same_entry: bool,
                                             dropped: int) -> None:
    """Each batch goes to all Alertmanagers, with sent and error counts per endpoint."""
    bad = FakeAlertmanager(status=500)
    try:
        m = _metrics()
        if same_entry:
            cfgs = [AlertmanagerConfig(targets=(am.address, bad.address))]
        else:
            cfgs = [_cfg(am), _cfg(bad)]
        n = _notifier(m, *cfgs)
        n.send([_note(i) for i in range(3)])
        n.start()
        assert n.wait_idle(10)
        n.stop()
        assert len(am.alerts()) == 3 and len(bad.alerts()) == 3
        good_url = f"http://{am.address}/api/v2/alerts"
        bad_url = f"http://{bad.address}/api/v2/alerts"
        sent = "value_exporter_notifications_sent_total"
        errors = "value_exporter_notifications_errors_total"
        assert _value(m, sent, {"alertmanager": good_url}) == 3
        assert _value(m, errors, {"alertmanager": good_url}) == 0
        assert _value(m, sent, {"alertmanager": bad_url}) == 0
        assert _value(m, errors, {"alertmanager": bad_url}) == 3
        assert _value(m, "value_exporter_notifications_dropped_total") == dropped
        assert _value(m, "value_exporter_notification_latency_seconds_count",
                      {"alertmanager": bad_url}) == 1
    finally:
        bad.stop()


def test_a_hanging_alertmanager_does_not_block_sending(am: FakeAlertmanager) -> None:
    """While Alertmanager holds a request open, send() still returns and the queue grows."""
    am.hold = threading.Event()
    m = _metrics()
    n = _notifier(m, _cfg(am), batch_size=1)
    n.start()
    n.send([_note(0)])
    assert am.arrived.wait(10)  # the sending thread is now stuck in that request
    caller = threading.Thread(target=n.send, args=([_note(1), _note(2)],))
    caller.start()
    caller.join(10)
    assert not caller.is_alive()
    assert n.queue_length == 2
    am.hold.set()
    assert wait_until(lambda: len(am.alerts()) == 3, 10)
    n.stop()


def test_reload_swaps_alertmanagers_and_capacity(am: FakeAlertmanager) -> None:
    """A reloaded config changes where alerts go and the queue limit; unchanged keeps sessions."""
    other = FakeAlertmanager()
    try:
        m = _metrics()
        n = _notifier(m, _cfg(am))
        first = n._clients
        n.apply(Config(path="c.yaml", alertmanagers=(_cfg(am),)))
        assert n._clients is first  # same list: the same sessions
        n.apply(Config(path="c.yaml", alertmanagers=(_cfg(am), _cfg(other)),
                       notification_queue_capacity=2))
        assert _value(m, "value_exporter_notifications_alertmanagers_discovered") == 2
        n.send([_note(i) for i in range(3)])  # room for 2: the oldest goes
        n.start()
        assert n.wait_idle(10)
        n.stop()
        assert len(am.alerts()) == len(other.alerts()) == 2
        assert _value(m, "value_exporter_notifications_dropped_total") == 1
        # Dropping the second Alertmanager removes its series.
        n.apply(Config(path="c.yaml", alertmanagers=(_cfg(am),)))
        other_url = f"http://{other.address}/api/v2/alerts"
        assert m.registry.get_sample_value("value_exporter_notifications_sent_total",
                                           {"alertmanager": other_url}) is None
    finally:
        other.stop()


def _rule_state(for_ms: int = 0) -> AlertingRuleState:
    rule = AlertingRule(name="CheckoutErrors", expr="errors > 1", for_ms=for_ms,
                        annotations=(("summary", "{{ $value }} errors"),))
    return AlertingRuleState(rule)


def _fire(state: AlertingRuleState, t_ms: int, firing: bool = True) -> None:
    vector = [Sample((("__name__", "errors"), ("job", "shop")), 5.0, t_ms)] if firing else []
    state.eval(vector, t_ms)


@pytest.mark.parametrize(("resend", "interval", "sent_at"), [
    # resend 1m, evaluations every 15s: due when last + 60s < t, so 0, 75, 150, 225.
    pytest.param(MIN, 15_000, [0, 75, 150, 225], id="resend-1m-every-15s"),
    # resend 10s, evaluations every 15s: every evaluation.
    pytest.param(10_000, 15_000, [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150, 165, 180,
                                  195, 210, 225, 240], id="resend-below-interval"),
])
def test_firing_alerts_are_resent_after_the_delay(resend: int, interval: int,
                                                  sent_at: list[int]) -> None:
    """A firing alert is re-sent once the resend delay has passed (strictly), not before."""
    state = _rule_state()
    got = []
    for t_s in range(0, 241, 15):
        _fire(state, t_s * 1000)
        if state.alerts_to_send(t_s * 1000, resend, interval):
            got.append(t_s)
    assert got == sent_at


@pytest.mark.parametrize(("resend", "interval", "ends_at"), [
    # valid_until = t + 4 x max(resend, interval): 30s + 4 x 60s = 270s.
    pytest.param(MIN, 15_000, 270_000, id="resend-dominates"),
    # 30s + 4 x 120s = 510s.
    pytest.param(MIN, 120_000, 510_000, id="interval-dominates"),
])
def test_firing_ends_at_is_four_delays_ahead(resend: int, interval: int, ends_at: int) -> None:
    """A firing alert's endsAt is its valid-until time; startsAt is when it fired."""
    state = _rule_state(for_ms=15_000)
    _fire(state, 15_000)  # pending
    _fire(state, 30_000)  # firing: 15s for met
    [alert] = state.alerts_to_send(30_000, resend, interval)
    n = to_notification(alert, "u", (("cluster", "eu"), ("job", "ignored")))
    assert (n.starts_at_ms, n.ends_at_ms, n.resolved) == (30_000, ends_at, False)
    # External labels fill only what the alert lacks: job stays the alert's own.
    assert dict(n.labels) == {"alertname": "CheckoutErrors", "cluster": "eu", "job": "shop"}


def test_resolved_alerts_are_resent_for_fifteen_minutes() -> None:
    """A resolution is sent at once with endsAt = resolve time, then re-sent until retention."""
    state = _rule_state()
    _fire(state, 0)
    state.alerts_to_send(0, MIN, MIN)
    sends: list[tuple[int, int]] = []
    for t_s in range(120, 1201, 60):  # resolves at 120s, evaluated every minute
        _fire(state, t_s * 1000, firing=False)
        for alert in state.alerts_to_send(t_s * 1000, MIN, MIN):
            n = to_notification(alert, "", ())
            assert n.resolved and n.ends_at_ms == 120_000
            sends.append((t_s, n.ends_at_ms))
    # Due when last + 60s < t: every other minute from 120s; dropped once t - 120s > 900s,
    # so 960s is the last send (1020s: 960 + 60 is not below 1020; 1080s: gone).
    assert [t for t, _ in sends] == [120, 240, 360, 480, 600, 720, 840, 960]
    assert state.current_alerts() == []


@pytest.mark.parametrize(("http", "prefix", "path", "authorization"), [
    pytest.param(HTTPClientConfig(), "/", "/api/v2/alerts", None, id="none"),
    pytest.param(HTTPClientConfig(basic_auth=BasicAuth("alice", Secret("s3cret"))), "/am",
                 "/am/api/v2/alerts",
                 "Basic " + base64.b64encode(b"alice:s3cret").decode(), id="basic-prefix"),
    pytest.param(HTTPClientConfig(authorization=Authorization(credentials=Secret("tok"))), "/",
                 "/api/v2/alerts", "Bearer tok", id="bearer"),
])
def test_auth_header_and_path_prefix(am: FakeAlertmanager, http: HTTPClientConfig,
                                     prefix: str, path: str, authorization: str | None) -> None:
    """Basic auth and bearer tokens are sent as Authorization, under the path prefix."""
    n = _notifier(_metrics(), _cfg(am, http=http, path_prefix=prefix))
    n.send([_note(0)])
    n.start()
    assert n.wait_idle(10)
    n.stop()
    got_path, headers, _ = am.posts[0]
    assert got_path == path
    assert headers.get("Authorization") == authorization


def test_stop_drains_the_queue(am: FakeAlertmanager) -> None:
    """On stop, what is still queued is sent before the thread ends."""
    n = _notifier(_metrics(), _cfg(am), batch_size=1)
    n.send([_note(i) for i in range(4)])
    n.start()
    n.stop(drain_timeout_s=10)
    assert len(am.alerts()) == 4


def _restarted(am: FakeAlertmanager, tmp_path: Path, ledger_state: dict[str, Any],
               t_ms: int) -> tuple[Notifier, StateStore]:
    """A fresh notifier built from a state database that holds ledger_state."""
    state = StateStore.open(tmp_path / "state")
    state.save_many([("delivery", "alertmanager", ledger_state)], t_ms)
    state.close()
    state = StateStore.open(tmp_path / "state")
    config = Config(path="c.yaml", alertmanagers=(_cfg(am),), resend_delay=Duration(MIN))
    return notifier_from_config(config, _metrics(), state, clock=lambda: t_ms / 1000), state


@pytest.mark.parametrize(("after_s", "queued"), [
    # Delivered at 1000s, valid until 1240s: 30s later is inside the resend delay.
    pytest.param(30, 0, id="within-resend-delay"),
    # 61s later the delay has passed: the alert goes out again.
    pytest.param(61, 1, id="after-resend-delay"),
])
def test_restart_does_not_page_again(am: FakeAlertmanager, tmp_path: Path, after_s: int,
                                     queued: int) -> None:
    """A firing alert delivered before a restart waits for its resend delay after it."""
    state = _rule_state()
    _fire(state, 1_000_000)
    [alert] = state.alerts_to_send(1_000_000, MIN, MIN)
    before = DeliveryLedger()
    before.record([to_notification(alert, "", ())], 1_000_000)
    t = 1_000_000 + after_s * 1000
    notifier, store = _restarted(am, tmp_path, before.to_state(), t)
    try:
        # The rule state did not survive here; the delivery ledger alone must hold the page.
        fresh = _rule_state()
        _fire(fresh, t)
        assert notifier.send_alerts([(fresh.rule, fresh.alerts_to_send(t, MIN, MIN))], t) \
            == queued
    finally:
        store.close()


def test_restart_keeps_an_owed_resolution(am: FakeAlertmanager, tmp_path: Path) -> None:
    """An alert delivered as firing that no rule holds after a restart gets resolved."""
    firing = Notification((("alertname", "Gone"),), (("summary", "s"),), 0, 240_000, False,
                          "u")
    before = DeliveryLedger()
    before.record([firing], 0)
    notifier, store = _restarted(am, tmp_path, before.to_state(), 600_000)
    try:
        notifier.start()
        assert notifier.send_orphan_resolutions([], 600_000) == 1
        assert notifier.wait_idle(10)
        # Accepted: the ledger now holds the resolution, so nothing more is owed.
        assert notifier.send_orphan_resolutions([], 700_000) == 0
        notifier.stop()
    finally:
        store.close()
    [got] = am.alerts()
    assert got["labels"] == {"alertname": "Gone"}
    # endsAt = the time the owed resolution was found (600s after the epoch).
    assert got["endsAt"] == go_datetime(600_000) == "1970-01-01T00:10:00.000Z"


def test_live_alerts_owe_no_resolution() -> None:
    """A delivered alert a rule still holds is not resolved by the ledger."""
    state = _rule_state()
    _fire(state, 0)
    [alert] = state.alerts_to_send(0, MIN, MIN)
    ledger = DeliveryLedger()
    ledger.record([to_notification(alert, "", ())], 0)
    assert alert.state == FIRING
    live: set[Labels] = {to_notification(alert, "", ()).labels}
    assert ledger.orphans(live, MIN, MIN) == []
    assert len(ledger.orphans(set(), MIN, MIN)) == 1
    # Queued once; not again until the resend delay has passed.
    assert ledger.orphans(set(), MIN + 1, MIN) == []


@pytest.mark.parametrize(("alerting", "message"), [
    pytest.param("{resend_delay: 0s}", "alerting.resend_delay: must be above 0",
                 id="zero-resend"),
    pytest.param("{notification_queue_capacity: -1}",
                 "alerting.notification_queue_capacity: must be above 0", id="negative-queue"),
])
def test_alerting_settings_are_validated(tmp_path: Path, alerting: str, message: str) -> None:
    """Bad notifier settings are reported with file, line and column."""
    path = tmp_path / "config.yaml"
    path.write_text(f"alerting: {alerting}\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    assert any(message in line for line in info.value.lines()), info.value.lines()


def test_alerting_settings_are_read(tmp_path: Path) -> None:
    """resend_delay and notification_queue_capacity reach the config."""
    path = tmp_path / "config.yaml"
    path.write_text("targets: [{name: shop, url: 'http://127.0.0.1:1/metrics'}]\n"
                    "alerting: {resend_delay: 2s, notification_queue_capacity: 50,\n"
                    "  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9093']}]}]}\n")
    config = load_config(path)
    assert (int(config.resend_delay), config.notification_queue_capacity) == (2000, 50)


ALWAYS = "groups: [{name: g, interval: 1s, rules: [{alert: Always, expr: 'vector(1)'}]}]\n"


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    server = start_shop(deterministic=True)
    yield server
    server.stop()


def _daemon(tmp_path: Path, shop: ShopServer, am: FakeAlertmanager, rules: str) -> Daemon:
    (tmp_path / "rules.yaml").write_text(rules)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "scrape_interval": "1s", "evaluation_interval": "1s",
        "targets": [{"name": "shop", "url": f"{shop.url}/metrics"}],
        "rule_files": ["rules.yaml"], "state_dir": str(tmp_path / "state"),
        # An hour: no resend can happen during the test, so any second post is a re-page.
        "alerting": {"resend_delay": "1h",
                     "alertmanagers": [{"static_configs": [{"targets": [am.address]}]}]},
    }))
    d = Daemon(str(path))
    d.start()
    return d


def _fired_once(tmp_path: Path, shop: ShopServer, am: FakeAlertmanager) -> None:
    d = _daemon(tmp_path, shop, am, ALWAYS)
    try:
        assert wait_until(lambda: len(am.alerts()) == 1, 20)
    finally:
        d.stop()


def test_daemon_restart_does_not_page_again(tmp_path: Path, shop: ShopServer,
                                            am: FakeAlertmanager) -> None:
    """A firing alert delivered before a restart is not posted again after it."""
    _fired_once(tmp_path, shop, am)
    d = _daemon(tmp_path, shop, am, ALWAYS)
    try:
        # Three evaluations after the restart, each of which would have re-sent it.
        assert wait_until(lambda: _value(d.metrics, "value_exporter_rule_group_iterations_total",
                                         {"rule_group": "g"}) >= 3, 20)
        assert d.notifier.wait_idle(10)
    finally:
        d.stop()
    assert [a["labels"]["alertname"] for a in am.alerts()] == ["Always"]


@pytest.mark.parametrize("rules_after", [
    # The rule is gone: only the delivery ledger still knows Alertmanager holds the alert.
    pytest.param("groups: [{name: g, interval: 1s, rules: [{record: r, expr: 'vector(1)'}]}]\n",
                 id="rule-removed"),
    # The condition cleared while the sidecar was down: the restored alert resolves.
    pytest.param("groups: [{name: g, interval: 1s, rules: [{alert: Always, "
                 "expr: 'vector(1) < 0'}]}]\n", id="condition-cleared"),
])
def test_daemon_restart_keeps_the_resolution(tmp_path: Path, shop: ShopServer,
                                             am: FakeAlertmanager, rules_after: str) -> None:
    """An alert firing before a restart and resolved after it still gets its resolution."""
    _fired_once(tmp_path, shop, am)
    d = _daemon(tmp_path, shop, am, rules_after)
    try:
        assert wait_until(lambda: len(am.alerts()) == 2, 20)
    finally:
        d.stop()
    first, second = am.alerts()
    assert first["labels"] == second["labels"] == {"alertname": "Always"}
    assert first["startsAt"] == second["startsAt"]
    # Resolved: endsAt moved from four resend delays ahead back to the resolve time.
    assert second["endsAt"] < first["endsAt"]
