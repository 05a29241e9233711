"""The worker loop: claim -> render -> encode -> store output -> finish, forever.

Every write after the claim is fenced by (attempt, worker id) in the store, so a
worker that lost its lease (paused, partitioned, too slow) cannot overwrite the
attempt that replaced it. Each attempt writes its own output object (see
`i2v.storage.keys`) and the prediction is marked succeeded only after the object exists.
The job itself is rendered by `i2v.pipeline`, the same pipeline `i2v generate` runs.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from i2v.domain.errors import (
    Cancelled,
    DatabaseUnavailable,
    EngineCrashed,
    I2VError,
    LeaseLost,
    StorageUnavailable,
)
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.engines import registry
from i2v.engines.base import Engine
from i2v.metrics.jobs import NO_WATCH, JobObserver, JobWatch
from i2v.pipeline import load_request, render_to_file
from i2v.safety import SafetyChecker
from i2v.storage.base import Storage
from i2v.storage.keys import output_key
from i2v.store import Store
from i2v.worker.lease import Lease
from i2v.worker.sweeper import Sweeper

log = logging.getLogger("i2v.worker")

EngineFactory = Callable[[str, dict[str, Any]], Engine]
T = TypeVar("T")

# Waits between tries of a storage call within one attempt (about 15 s in all): enough to
# ride out an S3 restart without spending one of the job's attempts, which a failed
# attempt does at once (it goes straight back to the queue).
STORAGE_RETRY_WAITS = (0.5, 1.0, 2.0, 4.0, 8.0)
# ...and no longer than this in all, the calls' own time included: the S3 client retries
# each call for up to 15 s itself, and six such calls would hold the job for 100 s
STORAGE_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerConfig:
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    engines: frozenset[str] | None = None  # engine names this worker serves; None = all
    safety: SafetyChecker | None = None  # None: outputs are never checked
    sweeper: Sweeper | None = None  # retention, run between claims; None: never swept
    storage_retry_waits: tuple[float, ...] = STORAGE_RETRY_WAITS
    storage_retry_seconds: float = STORAGE_RETRY_SECONDS
    observer: JobObserver | None = None  # told of each job (`i2v.metrics.JobMetrics`)
    # `i2v worker --gpus`: every GPU engine renders on the same GPUs (a split engine with
    # one process on each), so at most one of them is kept warm
    shared_gpus: bool = False


class Worker:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        create_engine: EngineFactory,
        config: WorkerConfig,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.config = config
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self._create_engine = create_engine
        self._engines: dict[str, Engine] = {}

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; the current job finishes first.

        Nothing ends the loop but `stop`: a database that is locked, restarting or
        unreachable is retried after a poll interval, so accepted work resumes when
        the database comes back instead of waiting for a worker that died."""
        log.info("%s started", self.worker_id)
        try:
            while not stop.is_set():
                try:
                    if self.config.sweeper is not None:
                        self.config.sweeper.maybe_sweep()  # at most every sweep_seconds
                    if not self.run_once():
                        self.store.changes.wait_for_work(self.config.poll_seconds)
                except Exception:
                    log.exception("%s: worker loop error; retrying", self.worker_id)
                    stop.wait(self.config.poll_seconds)
        finally:
            self.close()

    def run_once(self) -> bool:
        """Claim and process one job; False when the queue had nothing for us."""
        job = self.store.queue.claim(
            self.worker_id, lease_seconds=self.config.lease_seconds, engines=self.config.engines
        )
        if job is None:
            return False
        watch = self.config.observer.claimed(job) if self.config.observer else NO_WATCH
        try:
            self.process(job, watch)
        finally:
            watch.finished()
        return True

    def process(self, job: Prediction, watch: JobWatch = NO_WATCH) -> None:
        log.info("%s claimed %s (attempt %d)", self.worker_id, job.id, job.attempt)
        started = time.monotonic()
        try:
            with Lease(
                self.store,
                job,
                self.worker_id,
                self.config.lease_seconds,
                self.config.heartbeat_seconds,
            ) as lease:
                key, nsfw = self._render(job, lease, watch)
            self._succeed(job, key, nsfw, int((time.monotonic() - started) * 1000))
        except Cancelled:
            try:
                self.store.queue.acknowledge_cancel(
                    job.id, attempt=job.attempt, worker_id=self.worker_id
                )
                log.info("%s cancelled %s", self.worker_id, job.id)
            except LeaseLost:
                log.warning("%s lost the lease on %s while cancelling it", self.worker_id, job.id)
        except LeaseLost:
            log.warning("%s lost the lease on %s; its new owner carries on", self.worker_id, job.id)
        except EngineCrashed as exc:
            self._forget_engine(job)
            self._fail(job, f"engine process died: {exc.message}", retry=exc.out_of_memory)
        except StorageUnavailable as exc:
            # Nothing wrong with the job: another attempt (after the storage recovers) may do.
            self._fail(job, exc.message, retry=True)
        except DatabaseUnavailable as exc:
            # Recording anything needs the database: leave the job to its lease, which
            # returns it to the queue once the database answers again.
            log.warning("%s left %s to its lease: %s", self.worker_id, job.id, exc.message)
        except I2VError as exc:
            self._fail(job, exc.message)
        except Exception as exc:
            # A bug, not the user's fault: fail the job with a message and keep serving.
            log.exception("%s crashed on %s", self.worker_id, job.id)
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")

    def _succeed(self, job: Prediction, key: str, nsfw: bool, elapsed_ms: int) -> None:
        try:
            done = self.store.queue.succeed(
                job.id,
                attempt=job.attempt,
                worker_id=self.worker_id,
                output_key=key,
                inference_ms=elapsed_ms,
                nsfw=[nsfw],
            )
        except LeaseLost:
            self.storage.delete(key)  # the attempt that replaced us writes its own
            raise
        if done.status is Status.CANCELLED:
            self.storage.delete(key)
            log.info("%s cancelled %s as it finished", self.worker_id, job.id)
        else:
            log.info("%s finished %s in %d ms", self.worker_id, job.id, elapsed_ms)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()
        self._engines.clear()

    # -- steps -------------------------------------------------------------------

    def _render(self, job: Prediction, lease: Lease, watch: JobWatch) -> tuple[str, bool]:
        """Render, encode and store the video; its key, and whether it was flagged."""
        request = self._stored(lambda: load_request(job.spec, self.storage), lease)
        checker = self.config.safety if job.flags.enable_safety_checker else None
        key = output_key(job.id, job.attempt)
        with tempfile.TemporaryDirectory(prefix="i2v-") as tmp:
            rendered = render_to_file(
                request,
                self._engine(job),
                Path(tmp) / "video.mp4",
                on_progress=watch.steps(lease.report),
                on_frame=watch.frames(lease.encoded),
                safety=checker,
            )
            # The object exists before the row says succeeded.
            self._stored(lambda: self.storage.put_file(key, rendered.path), lease)
        return key, rendered.nsfw

    def _stored(self, action: Callable[[], T], lease: Lease) -> T:
        """`action` on object storage, tried again within this attempt (the lease still
        held, a cancel still heard) while the storage is unavailable, within
        `storage_retry_seconds` in all."""
        deadline = time.monotonic() + self.config.storage_retry_seconds
        for wait in self.config.storage_retry_waits:
            try:
                return action()
            except StorageUnavailable as exc:
                if time.monotonic() + wait >= deadline:
                    raise
                log.warning("%s: %s; trying again in %g s", self.worker_id, exc.message, wait)
            lease.check()
            time.sleep(wait)
        return action()

    def _engine(self, job: Prediction) -> Engine:
        """Engines are kept warm per (engine, route options): loading weights is slow."""
        key = _engine_key(job)
        engine = self._engines.get(key)
        if engine is None:
            if self.config.shared_gpus and registry.info(job.engine).gpu:
                self._close_gpu_engines()
            options = dict(job.spec.engine_options)
            engine = self._engines[key] = self._create_engine(job.engine, options)
        return engine

    def _close_gpu_engines(self) -> None:
        """Close the warm GPU engines: with shared GPUs another one loads next, and two
        would hold the same devices' memory (whole groups of ranks, under --gpus)."""
        for key in [key for key in self._engines if registry.info(_engine_name(key)).gpu]:
            self._engines.pop(key).close()

    def _forget_engine(self, job: Prediction) -> None:
        engine = self._engines.pop(_engine_key(job), None)
        if engine is not None:
            engine.close()

    def _fail(self, job: Prediction, error: str, *, retry: bool = False) -> None:
        log.warning("%s failed %s: %s", self.worker_id, job.id, error)
        try:
            self.store.queue.fail(
                job.id, attempt=job.attempt, worker_id=self.worker_id, error=error, retry=retry
            )
        except LeaseLost:
            log.warning("%s lost the lease on %s before failing it", self.worker_id, job.id)
        except Exception:
            # The store is unreachable: the lease expires and another attempt runs.
            log.exception("%s could not record the failure of %s", self.worker_id, job.id)


def _engine_key(job: Prediction) -> str:
    return f"{job.engine}:{json.dumps(dict(job.spec.engine_options), sort_keys=True)}"


def _engine_name(key: str) -> str:
    """The engine name of an `_engine_key`."""
    return key.partition(":")[0]
