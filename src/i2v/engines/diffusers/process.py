"""The parent side of a diffusers engine: an `Engine` that renders in a child process.

The child is started with the `spawn` context on the first render (never
`fork`: a forked CUDA context is unusable), loads the pipeline once and stays
warm. Per render the parent sends `Render` and reads messages until `Done` or
`Failed`, calling `on_progress` per denoising step and yielding each frame,
resized to the request's size, as it arrives.

Cancel: `on_progress` raises `Cancelled` -> the parent sends `Cancel` -> the child
stops at the end of its current step (or after the decode it is in) and answers
`Failed(cancelled=True)`. The parent waits for that answer as long as the child
keeps sending anything (it sends a `Busy` heartbeat every few seconds while
rendering); only after `cancel_silence_seconds` of total silence is the child taken
for hung and killed, so a healthy warm child is never lost to a cancel. A child that
dies during a render fails that render with `EngineCrashed`; one found dead between
renders is replaced silently.

Out of memory: the child exits and the render fails with
`EngineCrashed(out_of_memory=True)`, which the worker retries. The engine remembers
to start the next child one offload mode further down (none -> model -> group ->
sequential, see `offload.step_down`), so the retried attempt uses less memory.

Several GPUs (`gpus`, see `parallel`): the child is rank 0 of a context-parallel
group. The parent starts the other ranks beside it, passes rank 0's `Rendezvous` on
to them (or stops them when rank 0 serves alone on a machine without CUDA), sends each
render to every rank and watches all of them (their pipes too: a rank's `Failed` is
read as soon as it is sent). One that dies or fails takes the whole group down: the
parent reads every rank's last word and exit before it says why (`_fail_group`: an
out-of-memory error first, then a rank that died, then the failure a rank reported
itself rather than because of another), and the next render starts a fresh group. A
request every rank refused alike (`Failed.refused`) leaves the group warm, as one child
stays warm after any failed render. A group that ran out of memory is followed by one
process on the first GPU with model offload. A cancelled group whose rank 0 sends only
heartbeats, no step or frame, for `parallel.COLLECTIVE_TIMEOUT_SECONDS` sits in a
wedged collective: it is killed then rather than waited on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NoReturn

from i2v.domain.errors import Cancelled, EngineCrashed, EngineError
from i2v.domain.request import GenerationRequest, PixelFormat, RGBImage
from i2v.engines.base import ProgressCallback
from i2v.engines.diffusers import messages, offload, parallel, sizing
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.weights import find_weights

logger = logging.getLogger("i2v.engines.diffusers")

SHUTDOWN_SECONDS = 10.0  # the processes asked to stop get this long, all together, before a kill
PEER_EXIT_SECONDS = 1.0  # after a group's failure, how long to wait for its ranks' exits


class ChildState(enum.Enum):
    """Where the engine's child process stands, as the parent knows it.

        STOPPED ──start──> LOADING ──Ready──> IDLE ──Render──> RENDERING ──Done/Failed──> IDLE
                              │                 ^                  │
                              └─Failed─> STOPPED └──answer── CANCELLING <──Cancel──┘

    Any state goes to STOPPED when the child dies or is stopped.
    """

    STOPPED = "stopped"  #: no child process
    LOADING = "loading"  #: started; loading its pipeline until Ready or Failed
    IDLE = "idle"  #: loaded, waiting for a render
    RENDERING = "rendering"  #: a Render was sent; its Done or Failed has not arrived
    CANCELLING = "cancelling"  #: Cancel was sent during a render; waiting for the answer


def _child_entry(conn: Connection, family: str, options: EngineOptions) -> None:
    # imported here so that the parent never imports torch by naming the target
    from i2v.engines.diffusers import child

    child.main(conn, family, options)


ChildMain = Callable[[Connection, str, EngineOptions], None]


@dataclass
class _Rank:
    """A rank > 0 of a context-parallel group, as the parent holds it."""

    process: BaseProcess
    conn: Connection


class ProcessEngine:
    """An `i2v.engines.base.Engine` whose pipeline lives in a spawned child process.

    `child_main` is what the child runs (a module-level function, for `spawn`); tests
    pass a stand-in that speaks the `messages` protocol without loading a model."""

    # generative pipelines make RGB frames; the encoder converts them
    pixel_format: PixelFormat = "rgb24"

    def __init__(
        self, family: str, options: EngineOptions, *, child_main: ChildMain | None = None
    ) -> None:
        self.name = family
        self.family = family
        self.options = options
        self.description = ""  # what the child loaded, once it has
        self.offload = ""  # the offload mode the child runs with, once it has loaded
        self._offload_after_oom: str | None = None  # set by an out-of-memory error
        self._child_main = child_main or _child_entry
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None  # the child (rank 0 of a group)
        self._conn: Connection | None = None
        self._peers: list[_Rank] = []  # ranks 1..N-1 of a group
        self.state = ChildState.STOPPED
        self.last_done: messages.Done | None = None  # timings of the last finished render

    @property
    def pid(self) -> int | None:
        """The child's process id while one runs (tests and operators use it)."""
        if self._process is not None and self._process.is_alive():
            return self._process.pid
        return None

    @property
    def rank_pids(self) -> list[int]:
        """Every live process of the engine, rank 0 (the child) first."""
        processes = [self._process, *(peer.process for peer in self._peers)]
        return [p.pid for p in processes if p is not None and p.is_alive() and p.pid is not None]

    def start(self) -> None:
        """Start the child and wait until it has loaded the pipeline (idempotent)."""
        if self.state is ChildState.RENDERING:
            # a render was abandoned without closing its iterator: stop it politely first
            self._cancel()
        if self._idle_and_alive():
            return
        if self._process is not None:
            logger.warning(
                "%s engine: child process %s is %s (%s); starting a new one",
                self.name,
                self._process.pid,
                self.state.value,
                _exit_reason(self._process.exitcode),
            )
            self._stop(kill=True)
        self._check_weights()
        options = self.options
        if self._offload_after_oom is not None:
            options = dataclasses.replace(options, offload=self._offload_after_oom)
        launch = parallel.plan_launch(self.family, options)
        if launch.reason:
            logger.info("%s engine: %s", self.name, launch.reason)
        # `gpus` kept: rank 0 places the process on them and checks the machine has them
        target = parallel.lead if launch.options.gpus else self._child_main
        self._process, self._conn = self._spawn(target, "engine", launch.options)
        # the other ranks import torch and diffusers while rank 0 checks the GPUs
        self._start_peers(launch)
        self.state = ChildState.LOADING
        message = self._receive(during="loading its pipeline")
        met = False  # rank 0 said where the group meets
        # loading warnings come before Ready; a group's rank 0 says where to meet
        while isinstance(message, messages.Log | messages.Rendezvous):
            if isinstance(message, messages.Rendezvous):
                met = True
                self._send_peers(message)
            else:
                logger.info("%s engine: %s", self.name, message.message)
            message = self._receive(during="loading its pipeline")
        if isinstance(message, messages.Ready) and not met:
            self._stop_peers()  # rank 0 found too few GPUs and serves alone (it logged why)
        if isinstance(message, messages.Failed):
            self._stop(kill=True)
            if message.out_of_memory:
                # from the mode the child placed with (what `auto` chose), when it got there
                tried = message.offload or (
                    options.offload if options.offload != "auto" else "none"
                )
                self._step_down(tried)
                raise EngineCrashed(
                    f"{self.name} engine ran out of GPU memory while loading: {message.message}",
                    out_of_memory=True,
                )
            raise EngineError(f"{self.name} engine could not load its pipeline: {message.message}")
        if not isinstance(message, messages.Ready):
            self._stop(kill=True)
            raise EngineError(f"{self.name} engine: expected Ready from the child, got {message!r}")
        self.state = ChildState.IDLE
        self.description = message.description
        self.offload = message.offload
        logger.info("%s engine ready: %s", self.name, message.description)

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]:
        on_progress(0, 1, "loading")  # a cancel before the (slow) first load needs no child
        self.start()
        self._send_all(messages.Render(request))
        self.state = ChildState.RENDERING
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
                elif isinstance(message, messages.Busy):
                    pass  # a heartbeat; it matters only while a cancel waits
                elif isinstance(message, messages.Done):
                    self.state = ChildState.IDLE
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
                    self.state = ChildState.IDLE
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

    def _spawn(
        self, target: Callable[..., None], role: str, *args: Any
    ) -> tuple[BaseProcess, Connection]:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=target,
            args=(child_conn, self.family, *args),
            name=f"i2v-{self.family}-{role}",
            daemon=True,
        )
        process.start()
        child_conn.close()  # only the child holds its end: its death then reads as EOF here
        return process, parent_conn

    def _start_peers(self, launch: parallel.Launch) -> None:
        """Ranks 1..N-1 of a group; they wait for rank 0's Rendezvous."""
        for rank in range(1, launch.ranks):
            process, conn = self._spawn(
                parallel.follow, f"rank{rank}", launch.options, rank, launch.ranks
            )
            self._peers.append(_Rank(process, conn))

    def _stop_peers(self) -> None:
        peers, self._peers = self._peers, []
        _end([(peer.process, peer.conn) for peer in peers], kill=False)

    def _send_peers(self, message: messages.ToChild) -> None:
        self._send(message, [peer.conn for peer in self._peers])

    def _send_all(self, message: messages.ToChild) -> None:
        """`message` to the child and every other rank of its group."""
        self._send(message, [self._connection(), *(peer.conn for peer in self._peers)])

    def _send(self, message: messages.ToChild, conns: list[Connection]) -> None:
        try:
            for conn in conns:
                conn.send(message)
        except OSError as exc:
            self._stop(kill=True)
            raise EngineCrashed(f"{self.name} engine process is gone: {exc}") from exc

    def _idle_and_alive(self) -> bool:
        process, conn = self._process, self._conn
        if self.state is not ChildState.IDLE or process is None or conn is None:
            return False
        # an idle rank sends nothing: a readable pipe means EOF (it died) or stale output
        ranks = [(process, conn), *((peer.process, peer.conn) for peer in self._peers)]
        return all(p.is_alive() and not c.poll() for p, c in ranks)

    def _raise_failed(self, message: messages.Failed) -> None:
        if message.cancelled:
            raise Cancelled()
        if message.out_of_memory:
            self._stop(kill=True)  # the child exits after an OOM; make sure of it
            self._step_down(self.offload or "none")
            raise EngineCrashed(
                f"{self.name} engine ran out of GPU memory: {message.message}", out_of_memory=True
            )
        raise EngineError(f"{self.name} engine failed: {message.message}")

    def _step_down(self, mode: str) -> None:
        """After an out-of-memory error in `mode`, start later children one offload
        mode further down (kept for this engine's life: the route did not fit)."""
        following = offload.step_down(mode)
        if following is None:
            logger.warning(
                "%s engine ran out of GPU memory with offload=%s, the most memory-saving "
                "mode; the retry uses it again",
                self.name,
                mode,
            )
            return
        logger.warning(
            "%s engine ran out of GPU memory with offload=%s; the next child uses offload=%s",
            self.name,
            mode,
            following,
        )
        self._offload_after_oom = following

    def _cancel(self) -> None:
        """Ask the child to stop and wait for its answer while it shows signs of life;
        kill it only after `cancel_silence_seconds` without any message (hung)."""
        if self.state is not ChildState.RENDERING or self._conn is None:
            return
        try:
            self._conn.send(messages.Cancel())
        except OSError:
            self._stop(kill=True)
            return
        self.state = ChildState.CANCELLING
        silence = self.options.cancel_silence_seconds
        # a group's rank 0 sends heartbeats while it waits in a collective that never
        # ends (a rank wedged): only a step or a frame shows the group still moves
        moving = parallel.COLLECTIVE_TIMEOUT_SECONDS if self._peers else None
        moved = time.monotonic()
        while True:
            timeout = silence
            if moving is not None:
                left = moving - (time.monotonic() - moved)
                if left <= 0:
                    logger.warning(
                        "%s engine: no step or frame for %g s after cancel (a collective "
                        "is wedged); killing the group",
                        self.name,
                        moving,
                    )
                    self._stop(kill=True)
                    return
                timeout = min(silence, left)
            try:
                message = self._receive(timeout=timeout)
            except EngineError:
                return  # the group failed or a process died: stopped; the cancel stands
            if message is None and timeout < silence:
                continue  # the group's limit: checked above
            if isinstance(message, messages.Progress | messages.Frame):
                moved = time.monotonic()
            if message is None:
                logger.warning(
                    "%s engine: child silent for %g s after cancel (hung); killing it",
                    self.name,
                    silence,
                )
                self._stop(kill=True)
                return
            if isinstance(message, messages.Log):
                logger.info("%s engine: %s", self.name, message.message)
            elif isinstance(message, messages.Done | messages.Failed):
                self.state = ChildState.IDLE
                if isinstance(message, messages.Failed) and message.out_of_memory:
                    self._stop(kill=True)
                    self._step_down(self.offload or "none")
                return
            # Progress, Frame, Busy: alive and on its way to the next step boundary

    def _receive(self, timeout: float | None = None, during: str = "a render") -> Any:
        """The child's next message; None on timeout; EngineCrashed if it died. A group
        fails as a whole (`_fail_group`) on any rank's last word or exit."""
        if self._peers:
            return self._receive_from_group(timeout, during)
        conn, process = self._connection(), self._process
        assert process is not None
        ready = wait([conn, process.sentinel], timeout)
        if not ready:
            return None
        if conn in ready or conn.poll():
            with contextlib.suppress(EOFError, OSError):
                return conn.recv()
        process.join(timeout=SHUTDOWN_SECONDS)
        reason = _exit_reason(process.exitcode)
        self._stop(kill=True)
        raise EngineCrashed(f"{self.name} engine process died ({reason}) during {during}")

    def _receive_from_group(self, timeout: float | None, during: str) -> Any:
        """Rank 0's next message, or the group's failure raised: a rank > 0 sends only
        its last word, which comes first, as rank 0 may be stuck in a collective with
        the failed rank (until NCCL's timeout), sending only Busy."""
        ranks = self._ranks()
        ready = wait([*(c for _, c in ranks), *(p.sentinel for p, _ in ranks)], timeout)
        if not ready:
            return None
        conn = ranks[0][1]
        failures: dict[int, messages.Failed] = {}
        if conn in ready and not any(c in ready or p.sentinel in ready for p, c in ranks[1:]):
            with contextlib.suppress(EOFError, OSError):
                message = conn.recv()
                if not isinstance(message, messages.Failed):
                    return message
                if message.refused or message.cancelled:
                    return message  # every rank stopped alike: the group stays warm
                failures[0] = message
        self._fail_group(during, failures)

    def _fail_group(self, during: str, failures: dict[int, messages.Failed]) -> NoReturn:
        """Stop the group after a rank's last word or exit, and raise what went wrong:
        an out-of-memory error (retried, with less memory), else a rank that died
        (`EngineCrashed`: rank 0 included), else the failure a rank reported itself
        rather than because another rank failed. Every rank's pipe and exit is read
        first: a rank that sees a killed rank's sockets close reports it a moment before
        the killed rank's exit shows."""
        ranks = self._ranks()
        _join_all([process for process, _ in ranks], PEER_EXIT_SECONDS)
        for rank, (_, conn) in enumerate(ranks):
            with contextlib.suppress(EOFError, OSError):
                while conn.poll():
                    message = conn.recv()
                    if isinstance(message, messages.Failed):
                        failures.setdefault(rank, message)
        exits = [process.exitcode for process, _ in ranks]
        self._stop(kill=True)
        loading = during.startswith("loading")
        said = [failures[rank] for rank in sorted(failures)]
        said.sort(key=lambda failed: failed.after_peer)  # a rank's own failure first
        oom = [failed for failed in said if failed.out_of_memory]
        if oom:
            self._step_down(oom[0].offload or self.offload or "none")
            raise EngineCrashed(
                f"{self.name} engine ran out of GPU memory"
                f"{' while loading' if loading else ''}: {oom[0].message}",
                out_of_memory=True,
            )
        dead = [
            f"rank {rank} ({_exit_reason(code)})"
            for rank, code in enumerate(exits)
            if code not in (None, 0)
        ]
        if dead:
            cause = f" ({said[0].message})" if said else ""
            raise EngineCrashed(
                f"{self.name} engine: {', '.join(dead)} of {len(ranks)} died during "
                f"{during}{cause}; the next render starts a new group"
            )
        if said and loading:
            raise EngineError(f"{self.name} engine could not load its pipeline: {said[0].message}")
        if said:
            raise EngineError(f"{self.name} engine failed: {said[0].message}")
        raise EngineCrashed(
            f"{self.name} engine: a rank of {len(ranks)} closed its pipe during {during}; "
            "the next render starts a new group"
        )

    def _ranks(self) -> list[tuple[BaseProcess, Connection]]:
        """Every process of the engine with its pipe, rank 0 (the child) first."""
        process, conn = self._process, self._connection()
        assert process is not None
        return [(process, conn), *((peer.process, peer.conn) for peer in self._peers)]

    def _connection(self) -> Connection:
        if self._conn is None:
            raise EngineError(f"{self.name} engine: the child process is not running")
        return self._conn

    def _stop(self, *, kill: bool) -> None:
        """Stop the child and the other ranks of its group (`kill`: without asking)."""
        if self._process is not None:
            ranks = [(self._process, self._conn), *((p.process, p.conn) for p in self._peers)]
            _end(ranks, kill=kill)
        self._process, self._conn, self._peers = None, None, []
        self.state = ChildState.STOPPED


def _end(ranks: list[tuple[BaseProcess, Connection | None]], *, kill: bool) -> None:
    """Ask each process to exit (unless `kill`), kill those still running after
    SHUTDOWN_SECONDS (for all of them together: the worker's own stop has a grace
    period too), and close them and their pipes."""
    if not kill:
        for process, conn in ranks:
            if process.is_alive() and conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(messages.Shutdown())
        _join_all([process for process, _ in ranks], SHUTDOWN_SECONDS)
    for process, conn in ranks:
        if process.is_alive():
            process.kill()
            process.join(timeout=SHUTDOWN_SECONDS)
        if conn is not None:
            conn.close()
        if process.exitcode is not None:
            process.close()


def _join_all(processes: list[BaseProcess], seconds: float) -> None:
    """Wait until every process has exited, or `seconds` have passed for all of them."""
    deadline = time.monotonic() + seconds
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))


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
