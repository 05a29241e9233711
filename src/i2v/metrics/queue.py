"""The queue depth per route, read from the database when Prometheus scrapes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from i2v.store.stats import Stats

log = logging.getLogger(__name__)


class QueueDepth(Collector):
    """`i2v_queue_depth{route}`: queued predictions, from the database, so every API
    process reports the same figure (take `max`, not `sum`, across them)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            depth = self._stats.queue_depth()
        except Exception:  # a scrape must not fail because the database is away
            log.warning("metrics: could not read the queue depth", exc_info=True)
            return
        family = GaugeMetricFamily(
            "i2v_queue_depth", "Queued predictions per route (the whole queue)", labels=["route"]
        )
        for route, count in sorted(depth.items()):
            family.add_metric([route], count)
        yield family
