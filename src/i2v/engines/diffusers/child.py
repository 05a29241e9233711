"""The engine process: load the pipeline once, then serve renders until told to stop.

Started with the `spawn` context by `process.ProcessEngine`, so it begins with a
fresh interpreter (no CUDA state inherited from the worker). Every message it
sends is one of `messages.FromChild`. Cancellation is cooperative: the step
callback polls the pipe for `Cancel` and raises `StopRender`, which unwinds
the pipeline; `maybe_free_model_hooks()` then returns offloaded models to CPU.
During a render a thread sends a `Busy` heartbeat every few seconds, so that the
parent, waiting for a cancelled render to stop, can tell a child busy in one long
step or a VAE decode from a hung one.
A CUDA out-of-memory error is reported and ends the process, so the next render
starts with an empty allocator.

With several GPUs every rank of a context-parallel group (`parallel`) runs this same
loop, `serve`, with the group as `Ranks`: it prepares the loaded pipeline, makes the
ranks agree how each render started and stop at the same step when the parent cancels,
and turns a failure into the rank's last word. Rank 0 speaks for the group; the other
ranks run with a quiet `Channel`, which sends only that last word.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, NoReturn, Protocol

import numpy as np

from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import messages, offload
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
    thread and log records from any thread share the pipe with the render. A `quiet`
    channel (a group's rank > 0) sends nothing but `say`s and reads no Cancel: rank 0
    speaks and decides for the group."""

    def __init__(self, conn: Connection, *, quiet: bool = False) -> None:
        self.conn = conn
        self.quiet = quiet
        self._lock = threading.RLock()  # a log record emitted while sending must not deadlock

    def send(self, message: messages.FromChild) -> None:
        if not self.quiet:
            self.say(message)

    def say(self, message: messages.FromChild) -> None:
        """Send `message` even on a quiet channel (a rank's last word)."""
        with self._lock:
            self.conn.send(message)

    def poll(self) -> bool:
        return not self.quiet and self.conn.poll()

    def recv(self) -> Any:
        return self.conn.recv()


class Stop(enum.IntEnum):
    """What the parent asked for during a render (ranks of a group agree on it)."""

    NONE = 0
    CANCEL = 1
    SHUTDOWN = 2


class Ranks(Protocol):
    """The context-parallel group this process serves in (see `parallel`)."""

    def prepare(self, renderer: Renderer) -> str:
        """Split the loaded transformer(s) across the ranks; the description for Ready."""
        ...

    def agree(self, stop: Stop) -> Stop:
        """Every rank calls this at the same points of a render; all get rank 0's `stop`."""
        ...

    def begin(self) -> None:
        """A render starts (before the renderer runs its checks)."""
        ...

    def refused(self, exc: BaseException) -> bool:
        """Whether `exc` refused this render on every rank alike, leaving the group warm
        (a collective: every rank that fails calls it)."""
        ...

    def last_word(self, channel: Channel, failed: messages.Failed) -> NoReturn:
        """Report `failed` as this rank's last word and exit: the group is done."""
        ...


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


class StopRender(Exception):
    """Raised from the step callback when the parent sent Cancel."""


class ShutdownRequested(Exception):
    """The parent asked the child to exit while a render was running."""


class PeerFailed(EngineError):
    """Another rank of the group could not start the render this rank was ready for."""


def main(conn: Connection, family: str, options: EngineOptions) -> None:
    channel = Channel(conn)
    quiet_libraries()
    forward_logs(channel)
    serve(channel, family, options)


def serve(
    channel: Channel, family: str, options: EngineOptions, ranks: Ranks | None = None
) -> bool:
    """Load the pipeline, say Ready, then serve renders until told to stop: True when
    the parent asked for the stop, False when it is gone or the process must exit."""
    interval = min(HEARTBEAT_SECONDS, options.cancel_silence_seconds / 4)
    try:
        renderer = load(family, options)
        description = renderer.description if ranks is None else ranks.prepare(renderer)
    except BaseException as exc:
        _report(
            channel,
            ranks,
            messages.Failed(
                describe(exc),
                out_of_memory=is_oom(exc),
                during_load=True,
                offload=exc.offload if isinstance(exc, offload.PlacementError) else "",
            ),
        )
        return False
    channel.send(messages.Ready(description, renderer.loaded.offload))
    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            return False  # the parent is gone
        if isinstance(message, messages.Shutdown):
            return True
        if isinstance(message, messages.Render):
            try:
                outcome = _serve(channel, renderer, message, interval, ranks)
            except (BrokenPipeError, EOFError, OSError):
                return False
            if outcome is not None:
                return outcome
        # a Cancel that arrived after its render had finished is stale: dropped here


def _report(channel: Channel, ranks: Ranks | None, failed: messages.Failed) -> None:
    """Send `failed`; in a group, unless every rank refused alike or stopped on a cancel,
    it is this rank's last word (the process exits)."""
    if ranks is not None and not (failed.refused or failed.cancelled):
        ranks.last_word(channel, failed)
    channel.send(failed)


def _serve(
    channel: Channel,
    renderer: Renderer,
    render: messages.Render,
    heartbeat_seconds: float,
    ranks: Ranks | None,
) -> bool | None:
    """Run one render; None to go on serving, else `serve`'s answer: the process exits."""
    from i2v.engines.diffusers import loading

    started = time.perf_counter()
    device = renderer.loaded.device
    loading.reset_peak_memory(device)
    outcome = _render(channel, renderer, render, heartbeat_seconds, ranks)
    if isinstance(outcome, messages.Failed):
        _report(channel, ranks, outcome)
        return False if outcome.out_of_memory else None
    if outcome is None:
        return True  # Shutdown during the render, at the same point on every rank
    seconds = time.perf_counter() - started
    channel.send(messages.Done(outcome, seconds, loading.peak_memory_bytes(device)))
    return None


def _render(
    channel: Channel,
    renderer: Renderer,
    render: messages.Render,
    heartbeat_seconds: float,
    ranks: Ranks | None,
) -> int | messages.Failed | None:
    """Stream one render's frames: the frame count, the failure to report, or None
    when the parent asked the process to exit. The heartbeat has stopped on return."""

    def step(done: int, total: int, stage: str) -> None:
        channel.send(messages.Progress(done, total, stage))
        _check_cancel(channel, ranks)

    count = 0
    if ranks is not None:
        ranks.begin()
    try:
        with heartbeat(channel, heartbeat_seconds):
            for frame in renderer(render.request, step):
                channel.send(messages.Frame(count, frame))
                count += 1
                _check_cancel(channel, ranks)
    except StopRender:
        return messages.Failed("cancelled", cancelled=True)
    except ShutdownRequested:
        return None
    except Exception as exc:
        refused = ranks is not None and ranks.refused(exc)
        return messages.Failed(
            describe(exc),
            out_of_memory=is_oom(exc),
            refused=refused,
            after_peer=isinstance(exc, PeerFailed),
        )
    finally:
        renderer.pipe.maybe_free_model_hooks()
    return count


def _check_cancel(channel: Channel, ranks: Ranks | None) -> None:
    stop = _requested_stop(channel)
    if ranks is not None:
        stop = ranks.agree(stop)
    raise_stop(stop)


def _requested_stop(channel: Channel) -> Stop:
    while channel.poll():
        message = channel.recv()
        if isinstance(message, messages.Cancel):
            return Stop.CANCEL
        if isinstance(message, messages.Shutdown):
            return Stop.SHUTDOWN
    return Stop.NONE


def raise_stop(stop: Stop) -> None:
    """Unwind the render as `stop` says (nothing for Stop.NONE)."""
    if stop is Stop.CANCEL:
        raise StopRender
    if stop is Stop.SHUTDOWN:
        raise ShutdownRequested


def load(family: str, options: EngineOptions) -> Renderer:
    if family == "wan":
        from i2v.engines.diffusers.wan import WanRenderer

        return WanRenderer(options)
    if family == "ltx":
        from i2v.engines.diffusers.ltx import LTXRenderer

        return LTXRenderer(options)
    raise ValueError(f"engine family must be wan or ltx, got {family!r}")


def is_oom(exc: BaseException) -> bool:
    from i2v.engines.diffusers import loading

    return loading.is_out_of_memory(exc)


def describe(exc: BaseException) -> str:
    from i2v.domain.errors import I2VError

    if isinstance(exc, I2VError):
        return exc.message
    # the last frame of the traceback says where a library failed
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    location = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{location}"


def quiet_libraries() -> None:
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


def forward_logs(channel: Channel) -> None:
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
