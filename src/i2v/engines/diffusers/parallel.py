"""Context parallelism: one render across several GPUs, one process (rank) per GPU.

With `gpus = [0, 1, ...]` the engine runs a group of spawned ranks instead of one
child. Every rank loads the whole pipeline on its own GPU and splits the
transformer's sequence with diffusers' context parallelism (Ulysses attention,
`ContextParallelConfig(ulysses_degree=N)`, on `transformer` and A14B's
`transformer_2`), so each denoising step runs on all GPUs at once. Every rank calls
the pipeline with the same request and seed; only rank 0 talks to the parent.

    parent (process.ProcessEngine)
      │ spawn               Render, Shutdown to every rank; Cancel to rank 0 only
      ├── rank 0: `lead`    the `messages` protocol: Rendezvous, Ready, Progress, Frame, ...
      ├── rank 1: `follow`  gets Rendezvous; silent, except one Failed as its last word
      └── ...

All ranks start together (each imports torch and diffusers meanwhile). Rank 0 checks
that the machine has the GPUs, listens for the others on a free local port and sends
`Rendezvous`, which the parent passes on; every rank then joins the process group
(NCCL on CUDA, gloo on CPU). Without the GPUs rank 0 serves alone and the parent
stops the others.

Requests reach each rank over its own pipe rather than by a broadcast from rank 0: a
rank idle between jobs then waits on a pipe, not inside a collective, which NCCL's
watchdog would abort after its timeout. At every step and every frame all ranks call
`Group.agree`, a broadcast of rank 0's view of the parent's Cancel or Shutdown, so
they stop at the same point and the group stays warm after a cancel.

A request refused before any collective (an `I2VError` from the renderer's checks: a
bad prompt, an fps the model does not make) is refused by every rank alike, as each
runs the same checks on the same request: rank 0 reports it and the group stays warm,
as one process would. Any other failure, or one after a collective, is a rank's last
word: it sends `Failed` on its own pipe, which the parent reads at once (rank 0 may sit
in a collective with it), and exits; the parent then stops the whole group and starts
a fresh one for the next render.

Loading is not a collective: the ranks meet on the rendezvous store once loaded, with
a limit of an hour (`LOADED_TIMEOUT_SECONDS`), before their first NCCL collective,
whose limit (`COLLECTIVE_TIMEOUT_SECONDS`) is sized for one step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from i2v.domain.errors import EngineError, I2VError
from i2v.engines.diffusers import child, messages
from i2v.engines.diffusers.child import Renderer, Stop
from i2v.engines.diffusers.options import SPLIT_MODELS, UNSPLIT, EngineOptions, heads_refusal

logger = logging.getLogger("i2v.engines.diffusers")

HOST = "127.0.0.1"  # the ranks of a group run on one machine
# A collective that waits this long means a rank is gone or hung: NCCL then aborts
# the rank, which the parent sees as a crash. Ranks meet at every step and frame, so
# the longest honest wait is one step or one VAE decode, minutes at most.
COLLECTIVE_TIMEOUT_SECONDS = 600.0
# Loading is not a collective's honest wait: each rank reads the whole checkpoint (~65 GB
# for a 14B model) from a disk the ranks share, so the fastest rank may wait for the
# slowest one far longer than COLLECTIVE_TIMEOUT_SECONDS. The ranks meet once after
# loading on the rendezvous store, with this limit, before their first collective.
LOADED_TIMEOUT_SECONDS = 3600.0
PARENT_CHECK_SECONDS = 1.0  # how often a rank > 0 checks that its parent still lives


@dataclass(frozen=True)
class Launch:
    """How the parent starts an engine's processes: `ranks` of them with `options`;
    `reason` says why one process although `gpus` names several devices."""

    ranks: int
    options: EngineOptions
    reason: str = ""


def plan_launch(family: str, options: EngineOptions) -> Launch:
    """The launch of a `family` engine with `options`, decided without torch (the parent
    never imports it); rank 0 still falls back to one GPU when the machine has fewer."""
    gpus = options.gpus
    if not gpus:
        return Launch(1, options)
    if len(gpus) == 1:
        return Launch(1, _single(options), f"gpus = {list(gpus)}: one process on that GPU")
    if family in UNSPLIT:
        return Launch(
            1,
            _single(options),
            f"gpus = {list(gpus)}: the {family} engine renders on one GPU ({UNSPLIT[family]}); "
            f"one process on GPU {gpus[0]}",
        )
    if options.device == "cpu" and not options.parallel_on_cpu:
        return Launch(
            1,
            _single(options),
            f"gpus = {list(gpus)} with device = cpu: context parallelism runs on CUDA GPUs; "
            "one CPU process",
        )
    if options.offload not in ("auto", "none"):
        # only after an out-of-memory error (the catalog refuses gpus with offload): the
        # group did not fit, and one GPU with offload may
        return Launch(
            1,
            _single(options),
            f"offload = {options.offload} after running out of memory with {len(gpus)} GPUs: "
            f"one process on GPU {gpus[0]}",
        )
    return Launch(len(gpus), options)


def _single(options: EngineOptions, device: str = "") -> EngineOptions:
    """`options` for one process on the first of its gpus (or `device`)."""
    if not device:
        device = "cpu" if options.device == "cpu" else f"cuda:{options.gpus[0]}"
    return dataclasses.replace(options, device=device, gpus=())


# -- rank 0 -----------------------------------------------------------------


def lead(conn: Connection, family: str, parsed: EngineOptions) -> None:
    """Rank 0: start the group and serve the parent as a single child would."""
    channel = child.Channel(conn)
    child.quiet_libraries()
    child.forward_logs(channel)
    ranks = len(parsed.gpus)
    _see_devices(parsed)
    shortfall = _device_shortfall(parsed)
    if shortfall:
        device = _first_device()
        logger.warning("gpus = %s: %s; rendering on %s alone", list(parsed.gpus), shortfall, device)
        child.serve(channel, family, _single(parsed, device))
        return
    try:
        store = _store(ranks, port=0)
        channel.send(messages.Rendezvous(store.port, ranks))
        group = Group.join(0, ranks, store, parsed)
    except BaseException as exc:
        channel.send(messages.Failed(child.describe(exc), during_load=True))
        return
    try:
        child.serve(channel, family, group.rank_options(parsed), group)
    finally:
        group.leave()


def _device_shortfall(options: EngineOptions) -> str:
    """Why this machine cannot give every rank its GPU; "" when it can."""
    if options.device == "cpu":
        return ""  # parallel_on_cpu: plan_launch let only that through
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device here"
    count = torch.cuda.device_count()
    if count < len(options.gpus):
        return f"only {count} of these CUDA devices are here"
    return ""


def _first_device() -> str:
    """The first of the group's GPUs (see `_see_devices`), or the CPU without CUDA."""
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _see_devices(options: EngineOptions) -> None:
    """Make the group's GPUs the only visible ones, in `gpus` order, so that rank r runs
    on cuda:r: diffusers places a rank on `rank % device_count`. The ids count among the
    worker's own visible devices when it has CUDA_VISIBLE_DEVICES. Runs before CUDA is
    initialised in this process (a fresh spawn), as the variable is read only then."""
    if options.device == "cpu":
        return
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = visible.split(",") if visible else None
    chosen = [names[g] if names is not None and g < len(names) else str(g) for g in options.gpus]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)


# -- ranks 1..N-1 -----------------------------------------------------------


def follow(conn: Connection, family: str, parsed: EngineOptions, rank: int, ranks: int) -> None:
    """Rank `rank` > 0: join rank 0's group, load, and render every request alongside it."""
    _exit_with_parent()
    child.quiet_libraries()
    _quiet_ranks()
    import torch.distributed  # noqa: F401  # while rank 0 checks the GPUs

    try:
        rendezvous = conn.recv()
    except (EOFError, OSError):
        return
    if not isinstance(rendezvous, messages.Rendezvous):
        return  # Shutdown: rank 0 serves alone
    _see_devices(parsed)
    try:
        group = Group.join(rank, ranks, _store(ranks, port=rendezvous.port), parsed)
        renderer = child.load(family, group.rank_options(parsed))
        group.prepare(renderer)
    except BaseException as exc:
        _last_word(conn, rank, exc, during_load=True)
    if _serve_along(conn, rank, renderer, group):
        group.leave()


def _serve_along(conn: Connection, rank: int, renderer: Renderer, group: Group) -> bool:
    """Render each request the parent sends; True when told to stop, False when the
    parent is gone. A failure is this rank's last word (the parent then stops the whole
    group), except a refusal every rank made alike, after which the group stays warm."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return False
        if isinstance(message, messages.Shutdown):
            return True
        if not isinstance(message, messages.Render):
            continue
        try:
            _render_along(renderer, message, group)
        except child.StopRender:
            continue  # cancelled on every rank: the group stays warm
        except child.ShutdownRequested:
            return True
        except BaseException as exc:
            if group.refused(exc):
                continue  # every rank refused the request alike; rank 0 reports it
            _last_word(conn, rank, exc)
        finally:
            renderer.pipe.maybe_free_model_hooks()


def _render_along(renderer: Renderer, render: messages.Render, group: Group) -> None:
    """Run the render as rank 0 does, meeting it wherever it checks for a cancel; the
    frames are rank 0's to send."""

    def step(done: int, total: int, stage: str) -> None:
        child.raise_stop(group.agree(Stop.NONE))

    group.begin()
    for _frame in renderer(render.request, step):
        child.raise_stop(group.agree(Stop.NONE))


def _quiet_ranks() -> None:
    """Ranks > 0 have no pipe for logs: their warnings are rank 0's, which it forwards."""
    for name in ("i2v", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _last_word(
    conn: Connection, rank: int, exc: BaseException, *, during_load: bool = False
) -> NoReturn:
    """Tell the parent why this rank stops, and exit at once: the parent reads it
    (from this rank's own pipe) and stops the whole group. Exiting without unwinding
    keeps NCCL and CUDA teardown, which can hang on a broken group, out of the way; the
    exit code 0 tells the parent that this rank reported its failure (it did not crash)."""
    failed = messages.Failed(
        f"rank {rank}: {child.describe(exc)}",
        out_of_memory=child.is_oom(exc),
        during_load=during_load,
    )
    with contextlib.suppress(OSError, ValueError):
        conn.send(failed)  # in the pipe once send returns
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


def _exit_with_parent() -> None:
    """A rank blocked in a collective reads no pipe: when the worker dies it would
    wait for the collective's timeout holding its GPU. Exit as soon as the parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="i2v-parent-watch", daemon=True).start()


# -- the group ----------------------------------------------------------------


def _store(ranks: int, *, port: int) -> Any:
    """The group's rendezvous: rank 0 (`port` 0) listens on a free port; the others
    connect to the one it announced."""
    from torch.distributed import TCPStore  # type: ignore[attr-defined]  # not in __all__

    return TCPStore(
        HOST,
        port,
        ranks,
        is_master=port == 0,
        wait_for_workers=False,
        timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS),
    )


class Group:
    """This process's place in a joined context-parallel group (`child.Ranks`)."""

    def __init__(
        self, rank: int, ranks: int, device: Any, gpus: tuple[int, ...], store: Any
    ) -> None:
        self.rank = rank
        self.ranks = ranks
        self.device = device
        self.gpus = gpus
        self._store = store
        # whether this render has reached a collective (an agreed step, or a split
        # transformer's forward, whose attention exchanges the sequence): until then a
        # rank's error comes from the checks every rank ran alike on the same request
        self._met = False

    @classmethod
    def join(cls, rank: int, ranks: int, store: Any, options: EngineOptions) -> Group:
        import torch
        import torch.distributed as dist

        if options.device == "cpu":
            device, backend = torch.device("cpu"), "gloo"
        else:
            device, backend = torch.device("cuda", rank), "nccl"
            torch.cuda.set_device(device)
        # diffusers 0.42.1 calls a deprecated torch collective at every split; once per
        # rank, in the worker's log it says nothing an operator can act on
        warnings.filterwarnings("ignore", message=".*all_gather_tensor.*", category=FutureWarning)
        dist.init_process_group(
            backend,
            store=store,
            rank=rank,
            world_size=ranks,
            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS),
        )
        return cls(rank, ranks, device, options.gpus, store)

    def leave(self) -> None:
        """Leave the group on the way out (exiting without it takes seconds longer)."""
        import torch.distributed as dist

        dist.destroy_process_group()

    def rank_options(self, options: EngineOptions) -> EngineOptions:
        # offload "auto" would size the pipeline against one GPU and may choose to
        # offload, which the group cannot do: every rank keeps the whole pipeline
        return dataclasses.replace(options, device=str(self.device), offload="none")

    def prepare(self, renderer: Renderer) -> str:
        """Split the loaded transformer(s) across the ranks, and wait until every rank
        has; the description for Ready."""
        from diffusers import ContextParallelConfig

        pipe = renderer.pipe
        models = [getattr(pipe, name, None) for name in SPLIT_MODELS]
        for model in models:
            if model is None:
                continue
            # the catalog checked this already when the weights were on disk then
            refusal = heads_refusal(self.ranks, model.config.num_attention_heads)
            if refusal:
                raise EngineError(f"gpus: {refusal}")
        self._all_loaded()
        for model in models:
            if model is None:
                continue
            with _one_device_per_rank_on_cpu(self.device):
                model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=self.ranks))
            model.register_forward_pre_hook(self._meet)
        where = (
            f"{self.ranks} CPU ranks (gloo)"
            if self.device.type == "cpu"
            else f"GPUs {', '.join(map(str, self.gpus))} (NCCL)"
        )
        return f"{renderer.description}, context parallel (Ulysses) over {where}"

    def begin(self) -> None:
        self._met = False

    def refused(self, exc: BaseException) -> bool:
        # Every rank runs the same checks on the same request, so an I2VError raised
        # before any collective (a bad prompt, a last image the model takes none of) is
        # raised by every rank at the same point: all of them are back waiting for the
        # next request and the group stays warm. After a collective the ranks may stand
        # at different points of the pipeline, and only a new group is trusted.
        return isinstance(exc, I2VError) and not self._met

    def _meet(self, *_: Any) -> None:
        self._met = True

    def agree(self, stop: Stop) -> Stop:
        import torch
        import torch.distributed as dist

        self._met = True
        decision = torch.tensor([int(stop)], dtype=torch.int64, device=self.device)
        dist.broadcast(decision, src=0)
        return Stop(int(decision.item()))

    def _all_loaded(self) -> None:
        """Wait until every rank has loaded, on the store with LOADED_TIMEOUT_SECONDS
        rather than in a collective: NCCL would abort a wait this long. A rank that
        fails to load reports it, and the parent then stops the whole group."""
        self._store.set(f"loaded/{self.rank}", "1")
        self._store.wait(
            [f"loaded/{rank}" for rank in range(self.ranks)],
            datetime.timedelta(seconds=LOADED_TIMEOUT_SECONDS),
        )


@contextlib.contextmanager
def _one_device_per_rank_on_cpu(device: Any) -> Iterator[None]:
    """diffusers 0.42.1 places a rank on `rank % torch.accelerator.device_count()`,
    which divides by zero on a machine without an accelerator; the CPU ranks (tests)
    all run on "the" CPU, so count one device there. CUDA ranks are left alone."""
    if device.type != "cpu":
        yield
        return
    import torch

    counted = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = counted
