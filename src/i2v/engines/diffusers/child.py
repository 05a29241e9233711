"""The engine process: load the pipeline once, then serve renders until told to stop.

Started with the `spawn` context by `process.ProcessEngine`, so it begins with a
fresh interpreter (no CUDA state inherited from the worker). Every message it
sends is one of `messages.FromChild`. Cancellation is cooperative: the step
callback polls the pipe for `Cancel` and raises `_StopRender`, which unwinds
the pipeline; `maybe_free_model_hooks()` then returns offloaded models to CPU.
A CUDA out-of-memory error is reported and ends the process, so the next render
starts with an empty allocator.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, Protocol

import numpy as np

from i2v.engines.diffusers import messages
from i2v.engines.diffusers.options import EngineOptions


class Renderer(Protocol):
    description: str
    pipe: Any
    loaded: Any

    def __call__(
        self, render: messages.Render, step: Callable[[int, int, str], None]
    ) -> Iterator[np.ndarray]: ...


class _StopRender(Exception):
    """Raised from the step callback when the parent sent Cancel."""


class _ShutdownRequested(Exception):
    """The parent asked the child to exit while a render was running."""


def main(conn: Connection, family: str, options: dict[str, Any]) -> None:
    _quiet_libraries()
    _forward_logs(conn)
    try:
        renderer = _load(family, EngineOptions(**options))
    except BaseException as exc:
        conn.send(messages.Failed(_describe(exc), out_of_memory=_is_oom(exc), during_load=True))
        return
    conn.send(messages.Ready(renderer.description))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if isinstance(message, messages.Shutdown):
            return
        if isinstance(message, messages.Render):
            try:
                keep_going = _serve(conn, renderer, message)
            except (BrokenPipeError, EOFError, OSError):
                return
            if not keep_going:
                return


def _serve(conn: Connection, renderer: Renderer, render: messages.Render) -> bool:
    """Run one render; False when the process should exit afterwards."""
    from i2v.engines.diffusers import loading

    started = time.perf_counter()
    device = renderer.loaded.device
    loading.reset_peak_memory(device)

    def step(done: int, total: int, stage: str) -> None:
        conn.send(messages.Progress(done, total, stage))
        _check_cancel(conn)

    count = 0
    try:
        for frame in renderer(render, step):
            conn.send(messages.Frame(count, frame))
            count += 1
            _check_cancel(conn)
    except _StopRender:
        conn.send(messages.Failed("cancelled", cancelled=True))
        return True
    except _ShutdownRequested:
        return False
    except Exception as exc:
        oom = _is_oom(exc)
        conn.send(messages.Failed(_describe(exc), out_of_memory=oom))
        return not oom
    finally:
        renderer.pipe.maybe_free_model_hooks()
    seconds = time.perf_counter() - started
    conn.send(messages.Done(count, seconds, loading.peak_memory_bytes(device)))
    return True


def _check_cancel(conn: Connection) -> None:
    while conn.poll():
        message = conn.recv()
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

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.conn.send(messages.Log(f"{record.name}: {record.getMessage()}"))
        except (OSError, ValueError):
            self.handleError(record)


def _forward_logs(conn: Connection) -> None:
    """diffusers' warnings (frame counts rounded, sizes floored) and our own
    segment notes go to the worker's log instead of the child's stderr."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_default_handler()
    handler = _PipeLogHandler(conn)
    for name, level in (("diffusers", logging.WARNING), ("i2v", logging.INFO)):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
