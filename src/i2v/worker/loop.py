"""The worker loop: claim -> render -> encode -> store output -> finish, forever.

Every write after the claim is fenced by (attempt, worker id) in the store, so a
worker that lost its lease (paused, partitioned, too slow) cannot overwrite the
attempt that replaced it. Outputs go to `outputs/{id}/{attempt}.mp4` and the
prediction is marked succeeded only after the object exists.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2v.domain.errors import Cancelled, EngineCrashed, I2VError, LeaseLost, StorageUnavailable
from i2v.domain.prediction import Prediction, attempt_output_key
from i2v.domain.status import Status
from i2v.engines.base import Engine
from i2v.safety import SafetyChecker, frames_to_check
from i2v.safety.checker import to_rgb
from i2v.storage.base import Storage
from i2v.store.sql import Store
from i2v.video import encode
from i2v.worker.job import build_request
from i2v.worker.lease import Lease

log = logging.getLogger("i2v.worker")

EngineFactory = Callable[[str, dict[str, Any]], Engine]


@dataclass(frozen=True)
class WorkerConfig:
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    engines: frozenset[str] | None = None  # engine names this worker serves; None = all
    safety: SafetyChecker | None = None  # None: outputs are never checked


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
                    if not self.run_once():
                        self.store.wait_for_work(self.config.poll_seconds)
                except Exception:
                    log.exception("%s: worker loop error; retrying", self.worker_id)
                    stop.wait(self.config.poll_seconds)
        finally:
            self.close()

    def run_once(self) -> bool:
        """Claim and process one job; False when the queue had nothing for us."""
        job = self.store.claim(
            self.worker_id, lease_seconds=self.config.lease_seconds, engines=self.config.engines
        )
        if job is None:
            return False
        self.process(job)
        return True

    def process(self, job: Prediction) -> None:
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
                key, nsfw = self._render(job, lease)
            self._succeed(job, key, nsfw, int((time.monotonic() - started) * 1000))
        except Cancelled:
            try:
                self.store.acknowledge_cancel(job.id, attempt=job.attempt, worker_id=self.worker_id)
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
        except I2VError as exc:
            self._fail(job, exc.message)
        except Exception as exc:
            # A bug, not the user's fault: fail the job with a message and keep serving.
            log.exception("%s crashed on %s", self.worker_id, job.id)
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")

    def _succeed(self, job: Prediction, key: str, nsfw: bool, elapsed_ms: int) -> None:
        try:
            done = self.store.succeed(
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

    def _render(self, job: Prediction, lease: Lease) -> tuple[str, bool]:
        """Render, encode and store the video; its key, and whether it was flagged."""
        # 1. Rebuild the request from the stored, already validated inputs.
        request = build_request(job, self.storage)
        # 2. Render and encode at once: the encoder pulls frames as they are made, and the
        #    safety checker keeps copies of the few it will look at.
        engine = self._engine(job)
        checker = self.config.safety if job.options.get("enable_safety_checker", True) else None
        kept: list[Any] = []
        frames = engine.render(request, lease.report)
        if checker is not None:
            frames = _keeping(frames, frames_to_check(request.frames), kept)
        key = attempt_output_key(job.id, job.attempt)
        with tempfile.TemporaryDirectory(prefix="i2v-") as tmp:
            path = Path(tmp) / "video.mp4"
            encode(
                frames,
                path,
                fps=request.fps,
                width=request.width,
                height=request.height,
                pixel_format=engine.pixel_format,
                expected_frames=request.frames,
                on_frame=lease.encoded,
            )
            # 3. Check the kept frames (flagged outputs are kept and marked, as WaveSpeed does).
            nsfw = checker is not None and any(
                checker.is_explicit(to_rgb(frame, engine.pixel_format)) for frame in kept
            )
            # 4. The object exists before the row says succeeded.
            self.storage.put_file(key, path)
        return key, nsfw

    def _engine(self, job: Prediction) -> Engine:
        """Engines are kept warm per (engine, route options): loading weights is slow."""
        key = _engine_key(job)
        engine = self._engines.get(key)
        if engine is None:
            options: dict[str, Any] = dict(job.params.get("route_options", {}))
            engine = self._engines[key] = self._create_engine(job.engine, options)
        return engine

    def _forget_engine(self, job: Prediction) -> None:
        engine = self._engines.pop(_engine_key(job), None)
        if engine is not None:
            engine.close()

    def _fail(self, job: Prediction, error: str, *, retry: bool = False) -> None:
        log.warning("%s failed %s: %s", self.worker_id, job.id, error)
        try:
            self.store.fail(
                job.id, attempt=job.attempt, worker_id=self.worker_id, error=error, retry=retry
            )
        except LeaseLost:
            log.warning("%s lost the lease on %s before failing it", self.worker_id, job.id)
        except Exception:
            # The store is unreachable: the lease expires and another attempt runs.
            log.exception("%s could not record the failure of %s", self.worker_id, job.id)


def _keeping(frames: Iterable[Any], indices: frozenset[int], kept: list[Any]) -> Iterator[Any]:
    """`frames` passed through, with copies of those at `indices` appended to `kept`
    (copies: an engine may reuse its buffers for the next frame)."""
    for i, frame in enumerate(frames):
        if i in indices:
            kept.append(frame.copy())
        yield frame


def _engine_key(job: Prediction) -> str:
    return f"{job.engine}:{json.dumps(job.params.get('route_options', {}), sort_keys=True)}"
