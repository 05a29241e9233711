"""Prometheus metrics of one process (`Metrics`), and the worker's hook that feeds them
(`JobMetrics`). Names start with `i2v_`; docs/operations.md lists them and the scrape set-up.

Below api and worker (both import it), beside engines: it reads finished rows back from
the store, nothing else of ours.
"""

from __future__ import annotations

from i2v.metrics.jobs import JobMetrics, JobObserver, JobWatch
from i2v.metrics.registry import Metrics

__all__ = ["JobMetrics", "JobObserver", "JobWatch", "Metrics"]
