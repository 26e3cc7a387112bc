"""Delivery ledger: what each alert last delivered to Alertmanager, persisted across restarts.

The rule state (exporter/alerts.py) says when an alert was handed to the notifier; this
ledger says what Alertmanager actually accepted. After a restart it keeps the sidecar from
paging again for an alert Alertmanager already holds, and from forgetting a resolution for
an alert Alertmanager still believes is firing (rule removed, state lost, long downtime).
Times are milliseconds since the epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.alerts import RESOLVED_RETENTION_MS
from exporter.labels import Labels

# The state database kind and key of the ledger blob (one blob for the whole notifier).
KIND_DELIVERY = "delivery"
DELIVERY_KEY = "alertmanager"


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert as posted to Alertmanager (labels already carry the external labels)."""

    labels: Labels
    annotations: Labels
    starts_at_ms: int
    ends_at_ms: int
    resolved: bool
    generator_url: str = ""


@dataclass(slots=True)
class Delivered:
    """The last notification Alertmanager accepted for one label set, and when."""

    notification: Notification
    sent_at_ms: int
    # Loaded from the state database: the first resend after a restart waits for the delay.
    restored: bool = False
    # When an orphan resolution was last queued, so it is not queued every evaluation.
    orphan_queued_ms: int | None = None


class DeliveryLedger:
    """Thread-safe: the notifier thread records, evaluation threads read and persist."""

    def __init__(self, retention_ms: int = RESOLVED_RETENTION_MS) -> None:
        self._retention_ms = retention_ms
        self._lock = threading.Lock()
        self._entries: dict[Labels, Delivered] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, labels: Labels) -> Delivered | None:
        """The entry of a label set, if Alertmanager ever accepted one."""
        with self._lock:
            return self._entries.get(labels)

    def record(self, batch: Iterable[Notification], t_ms: int) -> None:
        """Alertmanager accepted these notifications at t."""
        with self._lock:
            for n in batch:
                self._entries[n.labels] = Delivered(n, t_ms)
            self._prune(t_ms)

    def suppress(self, n: Notification, t_ms: int, resend_delay_ms: int) -> bool:
        """Whether a firing notification repeats, within the resend delay, one sent before a
        restart that Alertmanager still holds (a restart must not page again)."""
        with self._lock:
            entry = self._entries.get(n.labels)
            if entry is None or not entry.restored or n.resolved:
                return False
            before = entry.notification
            if before.resolved or before.ends_at_ms <= t_ms \
                    or entry.sent_at_ms + resend_delay_ms <= t_ms:
                entry.restored = False
                return False
            return True

    def orphans(self, live: set[Labels], t_ms: int, resend_delay_ms: int) -> list[Notification]:
        """Resolutions owed: alerts last delivered as firing that no rule holds any more.

        Each is queued again after the resend delay until Alertmanager accepts it.
        """
        out: list[Notification] = []
        with self._lock:
            self._prune(t_ms)
            for labels, entry in self._entries.items():
                n = entry.notification
                if n.resolved or labels in live:
                    continue
                if entry.orphan_queued_ms is not None \
                        and t_ms - entry.orphan_queued_ms < resend_delay_ms:
                    continue
                entry.orphan_queued_ms = t_ms
                out.append(Notification(n.labels, n.annotations, n.starts_at_ms, t_ms, True,
                                        n.generator_url))
        return out

    def _prune(self, t_ms: int) -> None:
        # Resolutions are kept as long as the rule keeps resending them, then forgotten.
        for labels in [k for k, e in self._entries.items()
                       if e.notification.resolved
                       and t_ms - e.notification.ends_at_ms > self._retention_ms]:
            del self._entries[labels]

    # -- persistence -------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-friendly dict of every entry; inverse of `from_state`."""
        with self._lock:
            return {"alerts": [_entry_state(e) for e in self._entries.values()]}

    def from_state(self, data: Mapping[str, Any]) -> int:
        """Replace the entries with a saved ledger; returns how many were loaded."""
        entries: dict[Labels, Delivered] = {}
        for item in data.get("alerts", ()):
            n = Notification(
                labels=_labels(item["labels"]), annotations=_labels(item.get("annotations", {})),
                starts_at_ms=int(item["startsAt"]), ends_at_ms=int(item["endsAt"]),
                resolved=bool(item["resolved"]), generator_url=str(item.get("generatorURL", "")))
            entries[n.labels] = Delivered(n, int(item["sentAt"]), restored=True)
        with self._lock:
            self._entries = entries
        return len(entries)


def _entry_state(e: Delivered) -> dict[str, Any]:
    n = e.notification
    return {"labels": dict(n.labels), "annotations": dict(n.annotations),
            "startsAt": n.starts_at_ms, "endsAt": n.ends_at_ms, "resolved": n.resolved,
            "generatorURL": n.generator_url, "sentAt": e.sent_at_ms}


def _labels(data: Mapping[str, Any] | Sequence[Any]) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in dict(data).items()))
