"""Keeping a claimed job's lease alive and its progress visible while it renders."""

from __future__ import annotations

import logging
import threading
import time

from i2v.domain.errors import Cancelled, LeaseLost
from i2v.domain.prediction import Prediction
from i2v.store import Store

log = logging.getLogger("i2v.worker")

PROGRESS_WRITE_SECONDS = 0.5  # how often progress reaches the store (and so the API)


class Lease:
    """A background heartbeat for one claimed prediction.

    The engine's progress callback only records numbers in memory and checks two
    flags; the thread writes them to the store at most every PROGRESS_WRITE_SECONDS
    and renews the lease, so a render stuck in one long step (model load, VAE
    decode) still holds its lease, and a cancel or a lost lease reaches the
    engine at its next step.
    """

    def __init__(
        self,
        store: Store,
        job: Prediction,
        worker_id: str,
        lease_seconds: float,
        heartbeat_seconds: float,
    ) -> None:
        self._store = store
        self._job = job
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._interval = min(heartbeat_seconds, PROGRESS_WRITE_SECONDS)
        self._heartbeat_every = heartbeat_seconds
        self._frames = job.spec.frames
        self._engine_part = 0.0
        self._encoded = 0
        self._stage = "starting"
        self._progress = 0.0
        self._message = ""
        self._dirty = False
        self._cancel_requested = job.cancel_requested
        self._lost: LeaseLost | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id[:8]}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, done: int, total: int, stage: str) -> None:
        """The engine's ProgressCallback: raises when the job must stop."""
        self.check()
        with self._lock:
            self._engine_part = done / total if total else 0.0
            self._stage = f"{stage} {done}/{total}"
            self._publish()

    def encoded(self, count: int) -> None:
        """The encoder's per-frame callback: progress, and a cancel point after the engine's
        own steps (a diffusion engine finishes denoising before its frames stream out)."""
        self.check()
        with self._lock:
            self._encoded = count
            self._publish()

    def check(self) -> None:
        """Raise `LeaseLost` or `Cancelled` when the job must stop; a no-op otherwise."""
        if self._lost is not None:
            raise self._lost
        if self._cancel_requested:
            raise Cancelled()

    def _publish(self) -> None:
        # Half the engine's own progress, half the frames encoded: a motion render moves
        # both together; a diffusion model fills the first half while it denoises.
        encoded = self._encoded / self._frames if self._frames else 0.0
        self._progress = max(self._progress, (self._engine_part + encoded) / 2)
        self._message = f"{self._stage}, encoded {self._encoded}/{self._frames}"
        self._dirty = True

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self._interval):
            with self._lock:
                dirty, progress, message = self._dirty, self._progress, self._message
                self._dirty = False
            if not dirty and time.monotonic() - last_beat < self._heartbeat_every:
                continue
            try:
                self._cancel_requested = self._store.queue.heartbeat(
                    self._job.id,
                    attempt=self._job.attempt,
                    worker_id=self._worker_id,
                    lease_seconds=self._lease_seconds,
                    progress=progress if dirty else None,
                    message=message if dirty else None,
                )
            except LeaseLost as exc:
                self._lost = exc
                return
            except Exception:
                # A locked or restarting database: keep rendering, try again next tick.
                log.warning("heartbeat for %s failed; retrying", self._job.id, exc_info=True)
                continue
            last_beat = time.monotonic()
