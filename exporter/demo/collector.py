"""Demo shop exposition: a prometheus-client Collector over a simulation snapshot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.demo.model import LATENCY_BUCKETS, RESTORE_BUCKETS, Counts, LabelPairs, format_le
from exporter.demo.simulation import Simulation, Snapshot

SHOP_VERSION = "1.4.2"


@dataclass(frozen=True)
class FamilySpec:
    """One exposed metric family: name without `_total`, type, help and label names."""

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("shop_http_requests", "counter", "HTTP requests served by the shop.",
               ("route", "method", "code")),
    FamilySpec("shop_http_request_duration_seconds", "histogram",
               "Time to serve an HTTP request, by route template.", ("route",), LATENCY_BUCKETS),
    FamilySpec("shop_orders", "counter",
               "Orders by final status: completed (paid), failed (checkout or payment error, "
               "declined) or abandoned (checkout started, never paid).", ("status",)),
    FamilySpec("shop_order_value_eur", "counter", "Value of completed orders in euros."),
    FamilySpec("shop_payments", "counter", "Payment attempts by provider and outcome.",
               ("provider", "outcome")),
    FamilySpec("shop_journey_events", "counter",
               "Customer purchase journey events, by funnel stage.", ("stage",)),
    FamilySpec("shop_queue_depth", "gauge", "Messages waiting in a background work queue.",
               ("queue",)),
    FamilySpec("shop_sessions_active", "gauge", "Shopper sessions active in the last 5 minutes."),
    FamilySpec("shop_dependency_up", "gauge",
               "Whether a dependency of the shop answers its health check (1) or not (0).",
               ("dependency",)),
    FamilySpec("shop_start_time_seconds", "gauge",
               "Unix time the demo shop started; deterministic counters grow from here."),
    FamilySpec("shop_build_info", "gauge", "Demo shop version and simulation mode; always 1.",
               ("version", "mode")),
    FamilySpec("itsm_incidents_opened", "counter", "Incidents opened for the shop, by severity.",
               ("severity",)),
    FamilySpec("itsm_incidents_resolved", "counter",
               "Incidents restored for the shop, by severity.", ("severity",)),
    FamilySpec("itsm_incidents_open", "gauge", "Incidents open right now, by severity.",
               ("severity",)),
    FamilySpec("itsm_incident_time_to_restore_seconds", "histogram",
               "Time from opening an incident to restoring service, observed when restored.",
               ("severity",), RESTORE_BUCKETS),
    FamilySpec("itsm_changes_deployed", "counter", "Changes deployed to the shop."),
    FamilySpec("itsm_changes_failed", "counter",
               "Deployed changes that failed (caused an incident, rollback or hotfix)."),
)


def _label_values(spec: FamilySpec, labels: LabelPairs) -> list[str]:
    values = dict(labels)
    return [values[name] for name in spec.labels]


def _by_sample_name(counts: Counts) -> dict[str, list[tuple[LabelPairs, float]]]:
    grouped: dict[str, list[tuple[LabelPairs, float]]] = defaultdict(list)
    for (name, labels), value in counts.items():
        grouped[name].append((labels, value))
    return grouped


def build_families(snapshot: Snapshot) -> list[Metric]:
    """All metric families for one snapshot, series sorted by label values for stable output."""
    counters = _by_sample_name(snapshot.counters)
    gauges = _by_sample_name(snapshot.gauges)
    gauges["shop_start_time_seconds"] = [((), snapshot.start_time)]
    mode = "deterministic" if snapshot.deterministic else "random"
    gauges["shop_build_info"] = [((("version", SHOP_VERSION), ("mode", mode)), 1.0)]
    families: list[Metric] = []
    for spec in FAMILIES:
        if spec.kind == "counter":
            counter = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, value in sorted(counters[f"{spec.name}_total"]):
                counter.add_metric(_label_values(spec, labels), value)
            families.append(counter)
        elif spec.kind == "gauge":
            gauge = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, value in sorted(gauges[spec.name]):
                gauge.add_metric(_label_values(spec, labels), value)
            families.append(gauge)
        else:
            families.append(_histogram(spec, snapshot.counters, counters))
    return families


def _histogram(
    spec: FamilySpec, counts: Counts, grouped: dict[str, list[tuple[LabelPairs, float]]]
) -> HistogramMetricFamily:
    histogram = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    les = [format_le(b) for b in spec.buckets] + ["+Inf"]
    for labels, total in sorted(grouped[f"{spec.name}_sum"]):
        buckets = [(le, counts[(f"{spec.name}_bucket", (*labels, ("le", le)))]) for le in les]
        histogram.add_metric(_label_values(spec, labels), buckets, total)
    return histogram


class ShopCollector(Collector):
    """Computes every family from the simulation at scrape time."""

    def __init__(self, simulation: Simulation, *, whole_buckets: bool = True) -> None:
        self.simulation = simulation
        self.whole_buckets = whole_buckets

    def collect(self) -> Iterator[Metric]:
        yield from build_families(self.simulation.snapshot(self.whole_buckets))
