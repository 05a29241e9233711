"""What a worker tells the metrics, and the event log, about each job it runs.

The worker loop holds an optional `JobObserver` (`WorkerConfig.observer`); for each
claimed job it gets a `JobWatch`, passes the engine's and the encoder's callbacks through
it, and calls `finished()` whatever happened. `JobMetrics` is the Prometheus one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from i2v.domain.owners import key_id
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.metrics.registry import Metrics
from i2v.store import Store

log = logging.getLogger(__name__)
events = logging.getLogger("i2v.jobs")  # one line per claim and per outcome

Progress = Callable[[int, int, str], None]  # i2v.engines.base.ProgressCallback
Frames = Callable[[int], None]


class JobWatch(Protocol):
    def steps(self, report: Progress) -> Progress:
        """`report`, with each engine step seen on the way."""
        ...

    def frames(self, encoded: Frames) -> Frames:
        """`encoded`, with each frame reaching the encoder seen on the way."""
        ...

    def finished(self) -> None:
        """The worker is done with the job, however it ended (even by an exception)."""
        ...


class JobObserver(Protocol):
    def claimed(self, job: Prediction) -> JobWatch: ...


class _Unwatched:
    def steps(self, report: Progress) -> Progress:
        return report

    def frames(self, encoded: Frames) -> Frames:
        return encoded

    def finished(self) -> None:
        pass


NO_WATCH: JobWatch = _Unwatched()


class JobMetrics:
    """Records each job of this process's workers in `metrics`: time in queue, busy
    workers, seconds per step, render and encode seconds, and the final status, read back
    from the store (the worker may have lost its lease, or the job may be retried); and
    logs an event when a job is claimed and when its attempt ends."""

    def __init__(self, metrics: Metrics, store: Store) -> None:
        self._metrics = metrics
        self._store = store

    def started(self, workers: int) -> None:
        """This process runs `workers` more worker threads."""
        self._metrics.workers.inc(workers)

    def claimed(self, job: Prediction) -> JobWatch:
        return _Watch(self._metrics, self._store, job)


class _Watch:
    def __init__(self, metrics: Metrics, store: Store, job: Prediction) -> None:
        self._metrics = metrics
        self._store = store
        self._job = job
        self._lock = threading.Lock()  # the encoder's and the engine's callbacks may race
        self._started = time.monotonic()
        self._last_step: tuple[str, int, float] | None = None  # stage, done, when
        self._engine_done: float | None = None  # when the engine reported its last step
        self._last_frame: float | None = None
        claimed_at = job.started_at or datetime.now(UTC)
        waited = max(0.0, (claimed_at - job.created_at).total_seconds())
        metrics.queue_wait.labels(job.model).observe(waited)
        metrics.busy_workers.inc()
        events.info(
            "prediction claimed", extra={**self._fields(), "event": "claimed", "queue_s": waited}
        )

    def _fields(self) -> dict[str, object]:
        job = self._job
        return {
            "prediction_id": job.id,
            "route": job.model,
            "key_id": key_id(job.owner),
            "attempt": job.attempt,
        }

    def steps(self, report: Progress) -> Progress:
        def on_progress(done: int, total: int, stage: str) -> None:
            self._step(done, total, stage)
            report(done, total, stage)

        return on_progress

    def frames(self, encoded: Frames) -> Frames:
        def on_frame(count: int) -> None:
            with self._lock:
                self._last_frame = time.monotonic()
            encoded(count)

        return on_frame

    def _step(self, done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_step
            if last is not None and last[0] == stage and done > last[1]:
                each = (now - last[2]) / (done - last[1])
                steps = self._metrics.step_seconds.labels(self._job.engine, stage)
                for _ in range(done - last[1]):
                    steps.observe(each)
            self._last_step = (stage, done, now)
            if total and done >= total:
                self._engine_done = now

    def finished(self) -> None:
        self._metrics.busy_workers.dec()
        job = self._job
        took = round(time.monotonic() - self._started, 3)
        try:
            after = self._store.predictions.get(job.id)
        except Exception:  # the database is away: the job's metrics are lost, not the job
            log.warning("metrics: could not read %s back; its outcome is not counted", job.id)
            return
        ours = after.attempt == job.attempt
        status = after.status.value if ours else "superseded"
        extra = {**self._fields(), "event": "finished", "status": status, "duration_s": took}
        if ours and after.error:
            extra["error"] = after.error
        events.info("prediction attempt ended", extra=extra)
        if not after.status.is_terminal or not ours:
            return  # to be retried, or another attempt's now (which counts it)
        self._metrics.predictions.labels(job.model, after.status.value).inc()
        if after.status is Status.SUCCEEDED:
            end = time.monotonic()
            with self._lock:
                engine_done = self._engine_done or end
            self._metrics.render_seconds.labels(job.model, job.engine).observe(
                engine_done - self._started
            )
            self._metrics.encode_seconds.labels(job.model, job.engine).observe(end - engine_done)
