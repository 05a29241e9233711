"""The parent side of a diffusers engine: an `Engine` that renders in a child process.

The child is started with the `spawn` context on the first render (never
`fork`: a forked CUDA context is unusable), loads the pipeline once and stays
warm. Per render the parent sends `Render` and reads messages until `Done` or
`Failed`, calling `on_progress` per denoising step and yielding each frame,
resized to the request's size, as it arrives.

Cancel: `on_progress` raises `Cancelled` -> the parent sends `Cancel` -> the child
stops at the end of its current step and answers `Failed(cancelled=True)`. If
no answer comes within `cancel_grace_seconds` the child is killed; the next
render starts a new one. A child that dies during a render fails that render
with `EngineCrashed`; one found dead between renders is replaced silently.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from i2v.domain.errors import Cancelled, EngineCrashed, EngineError
from i2v.domain.request import GenerationRequest, PixelFormat, RGBImage
from i2v.engines.base import ProgressCallback
from i2v.engines.diffusers import messages, sizing
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.weights import find_weights

logger = logging.getLogger("i2v.engines.diffusers")

SHUTDOWN_SECONDS = 10.0  # a child asked to stop gets this long before it is killed


def _child_entry(conn: Connection, family: str, options: dict[str, Any]) -> None:
    # imported here so that the parent never imports torch by naming the target
    from i2v.engines.diffusers import child

    child.main(conn, family, options)


class ProcessEngine:
    """An `i2v.engines.base.Engine` whose pipeline lives in a spawned child process."""

    # generative pipelines make RGB frames; the encoder converts them
    pixel_format: PixelFormat = "rgb24"

    def __init__(self, family: str, options: EngineOptions) -> None:
        self.name = family
        self.family = family
        self.options = options
        self.description = ""  # what the child loaded, once it has
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._busy = False  # a render was abandoned before its Done/Failed arrived
        self.last_done: messages.Done | None = None  # timings of the last finished render

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs (tests and operators use it)."""
        if self._process is not None and self._process.is_alive():
            return self._process.pid
        return None

    def start(self) -> None:
        """Start the child and wait until it has loaded the pipeline (idempotent)."""
        if self._busy:
            # a render was abandoned without closing its iterator: stop it politely first
            self._cancel()
        if self._idle_and_alive():
            return
        if self._process is not None:
            if self._busy:
                logger.warning("%s engine: replacing a child with an unfinished render", self.name)
            else:
                logger.warning(
                    "%s engine: child process %s had died (%s); starting a new one",
                    self.name,
                    self._process.pid,
                    _exit_reason(self._process.exitcode),
                )
            self._stop(kill=True)
        self._check_weights()
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_child_entry,
            args=(child_conn, self.family, self.options.to_dict()),
            name=f"i2v-{self.family}-engine",
            daemon=True,
        )
        process.start()
        child_conn.close()  # only the child holds its end: its death then reads as EOF here
        self._process, self._conn = process, parent_conn
        message = self._receive(during="loading its pipeline")
        if isinstance(message, messages.Failed):
            self._stop(kill=True)
            if message.out_of_memory:
                raise EngineCrashed(
                    f"{self.name} engine ran out of GPU memory while loading: {message.message}",
                    out_of_memory=True,
                )
            raise EngineError(f"{self.name} engine could not load its pipeline: {message.message}")
        if not isinstance(message, messages.Ready):
            self._stop(kill=True)
            raise EngineError(f"{self.name} engine: expected Ready from the child, got {message!r}")
        self.description = message.description
        logger.info("%s engine ready: %s", self.name, message.description)

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]:
        on_progress(0, 1, "loading")  # a cancel before the (slow) first load needs no child
        self.start()
        self._connection().send(
            messages.Render(
                image=request.image,
                prompt=request.prompt,
                seed=request.seed,
                frames=request.frames,
                width=request.width,
                height=request.height,
                fps=request.fps,
                last_image=request.last_image,
                settings=dict(request.options),
            )
        )
        self._busy = True
        delivered = 0
        try:
            while True:
                message = self._receive()
                if isinstance(message, messages.Progress):
                    on_progress(message.done, message.total, message.stage)
                elif isinstance(message, messages.Frame):
                    delivered += 1
                    yield sizing.fit(message.pixels, request.width, request.height)
                elif isinstance(message, messages.Log):
                    logger.info("%s engine: %s", self.name, message.message)
                elif isinstance(message, messages.Done):
                    self._busy = False
                    self.last_done = message
                    logger.info(
                        "%s engine: %d frames in %.1f s, peak GPU memory %.2f GiB",
                        self.name,
                        message.frames,
                        message.seconds,
                        message.peak_memory_bytes / 1024**3,
                    )
                    break
                elif isinstance(message, messages.Failed):
                    self._busy = False
                    self._raise_failed(message)
        except (Cancelled, GeneratorExit):
            self._cancel()
            raise
        if delivered != request.frames:
            raise EngineError(
                f"{self.name} engine returned {delivered} frames, the request asked for "
                f"{request.frames}"
            )

    def close(self) -> None:
        self._stop(kill=False)

    # -- internals -------------------------------------------------------

    def _check_weights(self) -> None:
        """Fail before paying for a child (torch import, minutes of loading) when the
        weights cannot be there; the child's own loading still reports the rest."""
        if not self.options.local_files_only:
            return  # from_pretrained may download what is missing
        cache = Path(self.options.cache_dir) if self.options.cache_dir else None
        status = find_weights(self.options.weights, cache)
        if not status.present:
            raise EngineError(f"{self.name} engine: weights: {status.where}")

    def _idle_and_alive(self) -> bool:
        process, conn = self._process, self._conn
        if process is None or conn is None or self._busy or not process.is_alive():
            return False
        # an idle child sends nothing: a readable pipe means EOF (it died) or stale output
        return not conn.poll()

    def _raise_failed(self, message: messages.Failed) -> None:
        if message.cancelled:
            raise Cancelled()
        if message.out_of_memory:
            self._stop(kill=True)  # the child exits after an OOM; make sure of it
            raise EngineCrashed(
                f"{self.name} engine ran out of GPU memory: {message.message}", out_of_memory=True
            )
        raise EngineError(f"{self.name} engine failed: {message.message}")

    def _cancel(self) -> None:
        """Ask the child to stop and wait for its answer; kill it if none comes."""
        if not self._busy or self._conn is None:
            return
        try:
            self._conn.send(messages.Cancel())
        except OSError:
            self._stop(kill=True)
            return
        deadline = time.monotonic() + self.options.cancel_grace_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning(
                    "%s engine: no answer to cancel within %.0f s; killing the child",
                    self.name,
                    self.options.cancel_grace_seconds,
                )
                self._stop(kill=True)
                return
            try:
                message = self._receive(timeout=left)
            except EngineCrashed:
                return
            if message is None:
                continue
            if isinstance(message, messages.Done | messages.Failed):
                self._busy = False
                if isinstance(message, messages.Failed) and message.out_of_memory:
                    self._stop(kill=True)
                return

    def _receive(self, timeout: float | None = None, during: str = "a render") -> Any:
        """The child's next message; None on timeout; EngineCrashed if it died."""
        conn, process = self._connection(), self._process
        assert process is not None
        ready = wait([conn, process.sentinel], timeout)
        if not ready:
            return None
        if conn in ready or conn.poll():
            try:
                return conn.recv()
            except (EOFError, OSError):
                pass
        process.join(timeout=SHUTDOWN_SECONDS)
        reason = _exit_reason(process.exitcode)
        self._reset()
        raise EngineCrashed(f"{self.name} engine process died ({reason}) during {during}")

    def _connection(self) -> Connection:
        if self._conn is None:
            raise EngineError(f"{self.name} engine: the child process is not running")
        return self._conn

    def _stop(self, *, kill: bool) -> None:
        process, conn = self._process, self._conn
        if process is None:
            return
        if process.is_alive() and not kill and conn is not None:
            with contextlib.suppress(OSError):
                conn.send(messages.Shutdown())
            process.join(timeout=SHUTDOWN_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(timeout=SHUTDOWN_SECONDS)
        self._reset()

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.exitcode is not None:
            self._process.close()
        self._process, self._conn, self._busy = None, None, False


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-exitcode} {name}"
    return f"exit code {exitcode}"
