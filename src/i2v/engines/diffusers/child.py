"""The engine process: load the pipeline once, then serve renders until told to stop.

Started with the `spawn` context by `process.ProcessEngine`, so it begins with a
fresh interpreter (no CUDA state inherited from the worker). Every message it
sends is one of `messages.FromChild`. Cancellation is cooperative: the step
callback polls the pipe for `Cancel` and raises `_StopRender`, which unwinds
the pipeline; `maybe_free_model_hooks()` then returns offloaded models to CPU.
During a render a thread sends a `Busy` heartbeat every few seconds, so that the
parent, waiting for a cancelled render to stop, can tell a child busy in one long
step or a VAE decode from a hung one.
A CUDA out-of-memory error is reported and ends the process, so the next render
starts with an empty allocator.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np

from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import messages
from i2v.engines.diffusers.options import EngineOptions


class Renderer(Protocol):
    description: str
    pipe: Any
    loaded: Any

    def __call__(
        self, request: GenerationRequest, step: Callable[[int, int, str], None]
    ) -> Iterator[np.ndarray]: ...


#: At most this long between two heartbeats during a render (a quarter of the route's
#: cancel_silence_seconds when that is shorter).
HEARTBEAT_SECONDS = 5.0


class Channel:
    """The child's end of the pipe. Sends are serialised by a lock: the heartbeat
    thread and log records from any thread share the pipe with the render."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.RLock()  # a log record emitted while sending must not deadlock

    def send(self, message: messages.FromChild) -> None:
        with self._lock:
            self.conn.send(message)

    def poll(self) -> bool:
        return self.conn.poll()

    def recv(self) -> Any:
        return self.conn.recv()


class Sender(Protocol):
    def send(self, message: messages.FromChild) -> None: ...


@contextlib.contextmanager
def heartbeat(channel: Sender, interval: float) -> Iterator[None]:
    """Send `Busy` every `interval` seconds until the block ends; the last heartbeat
    is sent before this returns, so nothing follows the render's Done or Failed."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                channel.send(messages.Busy())
            except (OSError, ValueError):
                return  # the parent is gone; the render notices on its next send

    thread = threading.Thread(target=beat, name="i2v-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class _StopRender(Exception):
    """Raised from the step callback when the parent sent Cancel."""


class _ShutdownRequested(Exception):
    """The parent asked the child to exit while a render was running."""


def main(conn: Connection, family: str, options: dict[str, Any]) -> None:
    channel = Channel(conn)
    _quiet_libraries()
    _forward_logs(channel)
    parsed = EngineOptions(**options)
    interval = min(HEARTBEAT_SECONDS, parsed.cancel_silence_seconds / 4)
    try:
        renderer = _load(family, parsed)
    except BaseException as exc:
        channel.send(messages.Failed(_describe(exc), out_of_memory=_is_oom(exc), during_load=True))
        return
    channel.send(messages.Ready(renderer.description, renderer.loaded.offload))
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if isinstance(message, messages.Shutdown):
            return
        if isinstance(message, messages.Render):
            try:
                keep_going = _serve(channel, renderer, message, interval)
            except (BrokenPipeError, EOFError, OSError):
                return
            if not keep_going:
                return
        # a Cancel that arrived after its render had finished is stale: dropped here


def _serve(
    channel: Channel, renderer: Renderer, render: messages.Render, heartbeat_seconds: float
) -> bool:
    """Run one render; False when the process should exit afterwards."""
    from i2v.engines.diffusers import loading

    started = time.perf_counter()
    device = renderer.loaded.device
    loading.reset_peak_memory(device)
    outcome = _render(channel, renderer, render, heartbeat_seconds)
    if isinstance(outcome, messages.Failed):
        channel.send(outcome)
        return not outcome.out_of_memory
    if outcome is None:
        return False
    seconds = time.perf_counter() - started
    channel.send(messages.Done(outcome, seconds, loading.peak_memory_bytes(device)))
    return True


def _render(
    channel: Channel, renderer: Renderer, render: messages.Render, heartbeat_seconds: float
) -> int | messages.Failed | None:
    """Stream one render's frames: the frame count, the failure to report, or None
    when the parent asked the process to exit. The heartbeat has stopped on return."""

    def step(done: int, total: int, stage: str) -> None:
        channel.send(messages.Progress(done, total, stage))
        _check_cancel(channel)

    count = 0
    try:
        with heartbeat(channel, heartbeat_seconds):
            for frame in renderer(render.request, step):
                channel.send(messages.Frame(count, frame))
                count += 1
                _check_cancel(channel)
    except _StopRender:
        return messages.Failed("cancelled", cancelled=True)
    except _ShutdownRequested:
        return None
    except Exception as exc:
        return messages.Failed(_describe(exc), out_of_memory=_is_oom(exc))
    finally:
        renderer.pipe.maybe_free_model_hooks()
    return count


def _check_cancel(channel: Channel) -> None:
    while channel.poll():
        message = channel.recv()
        if isinstance(message, messages.Cancel):
            raise _StopRender
        if isinstance(message, messages.Shutdown):
            raise _ShutdownRequested


def _load(family: str, options: EngineOptions) -> Renderer:
    if family == "wan":
        from i2v.engines.diffusers.wan import WanRenderer

        return WanRenderer(options)
    if family == "ltx":
        from i2v.engines.diffusers.ltx import LTXRenderer

        return LTXRenderer(options)
    raise ValueError(f"engine family must be wan or ltx, got {family!r}")


def _is_oom(exc: BaseException) -> bool:
    from i2v.engines.diffusers import loading

    return loading.is_out_of_memory(exc)


def _describe(exc: BaseException) -> str:
    from i2v.domain.errors import I2VError

    if isinstance(exc, I2VError):
        return exc.message
    # the last frame of the traceback says where a library failed
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    location = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{location}"


def _quiet_libraries() -> None:
    """Progress bars from loading would interleave with the worker's own logs."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


class _PipeLogHandler(logging.Handler):
    """Sends log records to the parent as `Log` messages (it logs them in the worker)."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.send(messages.Log(f"{record.name}: {record.getMessage()}"))
        except (OSError, ValueError):
            self.handleError(record)


def _forward_logs(channel: Channel) -> None:
    """diffusers' warnings (frame counts rounded, sizes floored) and our own
    segment notes go to the worker's log instead of the child's stderr."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_default_handler()
    handler = _PipeLogHandler(channel)
    for name, level in (("diffusers", logging.WARNING), ("i2v", logging.INFO)):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
