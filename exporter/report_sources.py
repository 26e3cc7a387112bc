"""Where the report's hourly points come from: the sidecar's state database, or a Prometheus."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from exporter.backfill import BackfillError, PrometheusClient
from exporter.config import BackfillConfig
from exporter.durations import Duration
from exporter.report import HOUR_MS, Points, ReportError
from exporter.state import DB_NAME, StateStore

# Prometheus's lookback: a point at an hour end needs a sample less than 5 minutes before it.
LOOKBACK_MS = 5 * 60_000
PROMETHEUS_TIMEOUT = Duration(60_000)


class StateSource:
    """The rollups in a state database (read-only; a running sidecar keeps writing)."""

    def __init__(self, state_dir: str) -> None:
        path = Path(state_dir) / DB_NAME
        if not path.is_file():
            raise ReportError(f"{path}: no state database (has the sidecar run with this "
                              "config?); expected state_dir to hold state.db, or use "
                              "--prometheus URL")
        store = StateStore.open_read_only(path)
        if store is None:
            raise ReportError(f"{path}: not a readable value-exporter state database")
        self._store = store
        self.description = "the sidecar's state database"

    def hourly(self, names: Sequence[str], start_ms: int, end_ms: int) -> list[Points]:
        """Each hour's last sample, at the hour's end, when it is within the lookback of it."""
        by_series: dict[str, tuple[str, dict[str, str], list[tuple[int, float]]]] = {}
        for row in self._store.read_rollups(names, start_ms - HOUR_MS, end_ms):
            end = row.hour_ms + HOUR_MS
            if row.last_ms <= end - LOOKBACK_MS:
                continue  # Prometheus would return nothing at the hour's end either
            entry = by_series.setdefault(row.series, (row.name, dict(row.labels), []))
            entry[2].append((end, row.last))
        return [Points(name, labels, tuple(sorted(points)))
                for name, labels, points in by_series.values()]

    def close(self) -> None:
        """Close the database."""
        self._store.close()


class PrometheusSource:
    """`/api/v1/query_range` with a 1h step over the period, reading the same series."""

    def __init__(self, url: str) -> None:
        self._client = PrometheusClient(BackfillConfig(url, PROMETHEUS_TIMEOUT))
        self.description = f"Prometheus at {url}"

    def hourly(self, names: Sequence[str], start_ms: int, end_ms: int) -> list[Points]:
        """Every series of the names at each hour from start to end."""
        pattern = "|".join(re.escape(n) for n in names)
        try:
            matrix = self._client.query_range(f'{{__name__=~"{pattern}"}}', start_ms, end_ms,
                                              HOUR_MS)
        except BackfillError as exc:
            raise ReportError(str(exc)) from None
        out = []
        for labels, points in matrix.items():
            rest = {k: v for k, v in labels if k != "__name__"}
            name = dict(labels).get("__name__", "")
            out.append(Points(name, rest, tuple(sorted(points.items()))))
        return sorted(out, key=lambda p: (p.name, json.dumps(dict(p.labels), sort_keys=True)))

    def close(self) -> None:
        """Drop pooled connections."""
        self._client.close()
