"""Export stage: the series rules recorded, as a prometheus-client Collector over the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.labels import METRIC_NAME, Matcher, MatchType
from exporter.store import SeriesStore


@dataclass(frozen=True, slots=True)
class ExportedFamily:
    """One metric name to export, with the help text that says where it comes from."""

    name: str
    help: str
    type: str = "gauge"


class RecordedSeriesCollector(Collector):
    """Yields the newest value of each exported series, as of now.

    A series counts as present when its newest sample is within the lookback and is not a
    stale marker, which is exactly when an instant query would return it.
    """

    def __init__(
        self,
        store: SeriesStore,
        families: Callable[[], Sequence[ExportedFamily]],
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._families = families
        self._clock_ms = clock_ms

    def collect(self) -> Iterator[Metric]:
        now = self._clock_ms()
        lookback = self._store.lookback_ms
        for family in self._families():
            metric = Metric(family.name, family.help, family.type)
            selector = [Matcher.of(METRIC_NAME, MatchType.EQUAL, family.name)]
            for series in self._store.select(selector):
                point = series.value_at(now, lookback)
                if point is None:
                    continue
                labels = {k: v for k, v in series.labels if k != METRIC_NAME}
                metric.add_sample(family.name, labels, point[1])
            if metric.samples:
                yield metric

    def describe(self) -> Iterator[Metric]:
        # Families change with every rule reload; describing none keeps the registry from
        # treating them as fixed names that would clash on re-registration.
        return iter(())
