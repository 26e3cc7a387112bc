"""Alertmanager notifier (notifier/notifier.go): alerts due → bounded queue → POST /api/v2/alerts.

Evaluation threads only append to the queue under a lock; one background thread takes
batches from its front and posts each batch to every configured Alertmanager at once. A slow
or dead Alertmanager therefore delays nothing but the queue, which drops its oldest entries
when full, counting them, as Prometheus's notifier does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote_plus

import requests

from exporter.alerts import DEFAULT_RESEND_DELAY_MS, Alert
from exporter.config import DEFAULT_NOTIFICATION_QUEUE_CAPACITY, AlertmanagerConfig, Config
from exporter.labels import Labels
from exporter.notify_delivery import DELIVERY_KEY, KIND_DELIVERY, DeliveryLedger, Notification
from exporter.rules.model import AlertingRule
from exporter.scrape_http import (
    USER_AGENT,
    FetchError,
    TLSServerNameAdapter,
    auth_header,
    configure_tls,
)
from exporter.selfmetrics import SelfMetrics
from exporter.state import StateStore

log = logging.getLogger("value_exporter")

DEFAULT_BATCH_SIZE = 256  # Prometheus's maxBatchSize


def go_datetime(t_ms: int) -> str:
    """Milliseconds as strfmt.DateTime marshals them (RFC 3339, always 3 decimals, UTC)."""
    stamp = datetime.fromtimestamp(t_ms / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_json(n: Notification) -> dict[str, object]:
    """One alert in Alertmanager's v2 PostableAlert shape."""
    return {"labels": dict(n.labels), "annotations": dict(n.annotations),
            "startsAt": go_datetime(n.starts_at_ms), "endsAt": go_datetime(n.ends_at_ms),
            "generatorURL": n.generator_url}


def generator_url(external_url: str, expr: str) -> str:
    """Link to the expression's table view, as strutil.TableLinkForExpression builds it."""
    return f"{external_url.rstrip('/')}/graph?g0.expr={quote_plus(expr)}&g0.tab=1"


def to_notification(alert: Alert, url: str, external_labels: Labels) -> Notification:
    """A rule's alert as sent: external labels fill labels the alert lacks (relabelAlerts);
    startsAt is when it fired, endsAt its resolve time or else its valid-until time."""
    labels = dict(alert.labels)
    for name, value in external_labels:
        if not labels.get(name):
            labels[name] = value
    resolved = alert.resolved_at is not None
    ends = alert.resolved_at if alert.resolved_at is not None else alert.valid_until
    starts = alert.fired_at if alert.fired_at is not None else alert.active_at
    return Notification(tuple(sorted(labels.items())), alert.annotations, starts or 0,
                        ends or 0, resolved, url)


class AlertmanagerClient:
    """One `alertmanagers[]` entry: its endpoints, timeout and HTTP client settings."""

    def __init__(self, config: AlertmanagerConfig) -> None:
        self.config = config
        self.urls = config.urls()
        self.timeout_s = config.timeout / 1000
        session = requests.Session()
        session.trust_env = False  # as for scrapes: no proxy variables or .netrc unless told
        session.mount("https://", TLSServerNameAdapter(config.http.tls_config.server_name))
        configure_tls(session, config.http.tls_config)
        session.headers.update({"User-Agent": USER_AGENT, "Content-Type": "application/json"})
        self._session = session

    def post(self, url: str, payload: bytes, timeout_s: float) -> str | None:
        """POST one batch; None on any 2xx answer, else why it failed (no secrets)."""
        try:
            auth = auth_header(self.config.http)
        except FetchError as exc:
            return exc.message
        headers = {"Authorization": auth} if auth else {}
        try:
            resp = self._session.post(url, data=payload, headers=headers, timeout=timeout_s)
        except requests.RequestException as exc:
            return f"request failed: {type(exc).__name__}"
        resp.close()
        if resp.status_code // 100 != 2:
            return f"bad response status {resp.status_code} {resp.reason}"
        return None

    def close(self) -> None:
        """Drop pooled connections."""
        self._session.close()


class Notifier:
    """The queue and its sending thread; `start()`, `send_alerts()` any time, `stop()`."""

    def __init__(self, alertmanagers: Sequence[AlertmanagerConfig], metrics: SelfMetrics, *,
                 external_labels: Labels = (), external_url: str = "",
                 capacity: int = DEFAULT_NOTIFICATION_QUEUE_CAPACITY,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 resend_delay_ms: int = DEFAULT_RESEND_DELAY_MS,
                 ledger: DeliveryLedger | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.external_labels = external_labels
        self.external_url = external_url
        self.batch_size = batch_size
        self.resend_delay_ms = resend_delay_ms
        self.ledger = ledger or DeliveryLedger()
        self._clock = clock
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)
        self._queue: deque[Notification] = deque()
        self._capacity = capacity
        self._clients: list[AlertmanagerClient] = []
        self._stopping = False
        self._drain_deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._idle = True
        self.configure(alertmanagers, capacity)

    # -- configuration -------------------------------------------------------------------

    def configure(self, alertmanagers: Sequence[AlertmanagerConfig], capacity: int) -> None:
        """Use these Alertmanagers and this capacity from now on (a config reload)."""
        same = [c.config for c in self._clients] == list(alertmanagers)
        # An unchanged list keeps its sessions, so a reload never cuts a request in flight.
        clients = self._clients if same else [AlertmanagerClient(cfg) for cfg in alertmanagers]
        with self._lock:
            old, self._clients = self._clients, clients
            self._capacity = capacity
            self._trim()
        if not same:
            for client in old:
                client.close()
        urls = [u for c in clients for u in c.urls]
        for url in urls:  # counters start at 0, so rate() works from the first failure on
            self.metrics.notifications_sent.labels(url)
            self.metrics.notifications_errors.labels(url)
        for url in {u for c in old for u in c.urls} - set(urls):  # gone after a reload
            for family in (self.metrics.notifications_sent, self.metrics.notifications_errors,
                           self.metrics.notification_latency):
                with contextlib.suppress(KeyError):  # never observed
                    family.remove(url)
        self.metrics.notifications_alertmanagers.set(len(urls))
        self.metrics.notifications_queue_capacity.set(capacity)

    def apply(self, config: Config) -> None:
        """Take the notifier settings of a (re)loaded config."""
        self.external_labels = config.external_labels
        self.resend_delay_ms = int(config.resend_delay)
        self.configure(config.alertmanagers, config.notification_queue_capacity)

    def state_blob(self) -> tuple[str, str, dict[str, object]]:
        """The delivery ledger as a `StateStore.save_many` item."""
        return KIND_DELIVERY, DELIVERY_KEY, self.ledger.to_state()

    # -- enqueueing (evaluation threads) ----------------------------------------------------

    def send_alerts(self, due: Iterable[tuple[AlertingRule, list[Alert]]], t_ms: int) -> int:
        """Queue the alerts a group evaluation found due (AlertingRule.sendAlerts output)."""
        out: list[Notification] = []
        for rule, alerts in due:
            url = generator_url(self.external_url, rule.expr)
            for alert in alerts:
                n = to_notification(alert, url, self.external_labels)
                if not self.ledger.suppress(n, t_ms, self.resend_delay_ms):
                    out.append(n)
        self.send(out)
        return len(out)

    def send_orphan_resolutions(self, live: Iterable[Alert], t_ms: int) -> int:
        """Queue resolutions owed for delivered firing alerts that no rule holds any more."""
        keys = {to_notification(a, "", self.external_labels).labels for a in live}
        owed = self.ledger.orphans(keys, t_ms, self.resend_delay_ms)
        self.send(owed)
        return len(owed)

    def send(self, notifications: Sequence[Notification]) -> None:
        """Append to the queue, dropping the oldest entries beyond its capacity (never blocks
        on the network)."""
        if not notifications or not self._clients:
            return
        with self._lock:
            self._queue.extend(notifications)
            self._trim()
            self._more.notify()

    def _trim(self) -> None:
        # Called with the lock held: newer alerts win over older ones, as in Manager.Send.
        over = len(self._queue) - self._capacity
        if over > 0:
            for _ in range(over):
                self._queue.popleft()
            self.metrics.notifications_dropped.inc(over)
            log.warning("event=notification_queue_full dropped=%d", over)
        self.metrics.notifications_queue_length.set(len(self._queue))

    @property
    def queue_length(self) -> int:
        """Notifications waiting to be sent."""
        with self._lock:
            return len(self._queue)

    # -- sending thread --------------------------------------------------------------------

    def start(self) -> None:
        """Start the sending thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
            self._thread.start()

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Send what is queued for at most drain_timeout_s (as Prometheus drains on shutdown),
        then stop the thread; notifications still queued then are lost, and counted dropped."""
        with self._lock:
            self._stopping = True
            self._drain_deadline = time.monotonic() + drain_timeout_s
            self._more.notify()
        if self._thread is not None:
            self._thread.join(drain_timeout_s + 1)
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            if left:
                self.metrics.notifications_dropped.inc(left)
            self.metrics.notifications_queue_length.set(0)
        for client in self._clients:
            client.close()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until the queue is empty and no batch is in flight (for tests and shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._queue and self._idle:
                    return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._more.wait()
                if not self._queue or (self._drain_deadline is not None
                                       and time.monotonic() >= self._drain_deadline):
                    return
                batch = [self._queue.popleft()
                         for _ in range(min(self.batch_size, len(self._queue)))]
                self.metrics.notifications_queue_length.set(len(self._queue))
                clients = list(self._clients)
                self._idle = False
            try:
                if not self.send_all(batch, clients):
                    self.metrics.notifications_dropped.inc(len(batch))
            except Exception:  # the thread must outlive any surprise, or delivery stops
                log.exception("event=notification_batch_failed count=%d", len(batch))
                self.metrics.notifications_dropped.inc(len(batch))
            finally:
                with self._lock:
                    self._idle = True

    def send_all(self, batch: Sequence[Notification],
                 clients: Sequence[AlertmanagerClient] | None = None) -> bool:
        """POST a batch to every Alertmanager concurrently; True when each `alertmanagers[]`
        entry had at least one endpoint accept it (Manager.sendAll)."""
        clients = self._clients if clients is None else clients
        if not batch or not clients:
            return True
        payload = json.dumps([notification_json(n) for n in batch]).encode()
        begin = time.monotonic()
        jobs = [(i, c, url) for i, c in enumerate(clients) for url in c.urls]
        covered = [False] * len(clients)

        def one(job: tuple[int, AlertmanagerClient, str]) -> None:
            i, client, url = job
            timeout = client.timeout_s
            if self._drain_deadline is not None:  # shutting down: never past the deadline
                timeout = max(0.05, min(timeout, self._drain_deadline - time.monotonic()))
            error = client.post(url, payload, timeout)
            duration = time.monotonic() - begin
            if error is None:
                self.metrics.notifications_sent.labels(url).inc(len(batch))
                covered[i] = True
            else:
                self.metrics.notifications_errors.labels(url).inc(len(batch))
                log.error("event=notification_failed alertmanager=%s count=%d error=%r "
                          "duration_s=%.3f", url, len(batch), error, duration)
            self.metrics.notification_latency.labels(url).observe(duration)

        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="notify") as pool:
            list(pool.map(one, jobs))
        ok = all(covered)
        if ok:
            self.ledger.record(batch, int(self._clock() * 1000))
        return ok


def notifier_from_config(config: Config, metrics: SelfMetrics, state: StateStore,
                         clock: Callable[[], float] = time.time) -> Notifier:
    """A notifier for the config, its delivery ledger restored from the state database."""
    ledger = DeliveryLedger()
    blob = state.load(KIND_DELIVERY, DELIVERY_KEY)
    if blob is not None:
        try:
            loaded = ledger.from_state(blob)
            log.info("event=delivery_state_restored alerts=%d", loaded)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.error("event=state_restore_failed delivery error=%r", str(exc))
    notifier = Notifier((), metrics, ledger=ledger, clock=clock)
    notifier.apply(config)
    return notifier
