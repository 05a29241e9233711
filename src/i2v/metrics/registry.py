"""`Metrics`: every metric one process exports, in a registry of its own.

One per process, built by the CLI: the API process records requests and webhooks, its
in-process workers (`i2v serve`) their jobs, and `i2v worker` processes serve theirs on
`--metrics-port`. Several processes are several scrape targets; Prometheus sums them.
A registry per instance (not the global default) keeps tests that start several apps
in one process apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

# Seconds: from a sub-second fake render to a 10-minute diffusion run.
JOB_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 300, float("inf"))

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The metric objects of one process; thread-safe (prometheus_client's own locks)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.predictions = Counter(
            "i2v_predictions",
            "Predictions a worker of this process saw to a final status",
            ["route", "status"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "i2v_queue_wait_seconds",
            "Time from submit to a worker's claim (each attempt)",
            ["route"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.render_seconds = Histogram(
            "i2v_render_seconds",
            "Time from claim to the engine's last step (loading, rendering, and the encoding "
            "that streams alongside)",
            ["route", "engine"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.encode_seconds = Histogram(
            "i2v_encode_seconds",
            "Time from the engine's last step to the last frame encoded and stored",
            ["route", "engine"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "i2v_step_seconds",
            "Seconds per engine step (stage=denoising: a diffusion step; rendering: a frame)",
            ["engine", "stage"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.workers = Gauge("i2v_workers", "Worker threads in this process", registry=r)
        self.busy_workers = Gauge(
            "i2v_workers_busy", "Workers of this process holding a job", registry=r
        )
        self.webhooks = Counter(
            "i2v_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, retrying, gave_up)",
            ["outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "i2v_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "i2v_http_request_duration_seconds",
            "HTTP request latency, to the end of the response body",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )

    def add(self, collector: Collector) -> None:
        """Export what `collector` reads at scrape time (e.g. the queue depth)."""
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
