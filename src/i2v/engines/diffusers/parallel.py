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

Every rank runs `child.serve`, the loop a single child runs, with the group as its
`child.Ranks`; rank 0 with a channel that speaks, the others with a quiet one. One
`gpus` id runs `lead` too, as a group of one, so that one GPU and several are placed
and checked alike (`_placed`).

All ranks start together (each imports torch and diffusers meanwhile). Rank 0 checks
that the machine has the GPUs, listens for the others on a loopback port and sends
`Rendezvous`, which the parent passes on; every rank then joins the process group
(NCCL on CUDA, gloo on CPU). A machine without CUDA at all, on a route whose device is
`auto`, renders on the CPU in rank 0 alone and the parent stops the others; too few
GPUs is a load failure that names the ids and what this worker sees.

Requests reach each rank over its own pipe rather than by a broadcast from rank 0: a
rank idle between jobs then waits on a pipe, not inside a collective, which NCCL's
watchdog would abort after its timeout. The ranks agree at three kinds of points:
- once per render, before its first collective (the first transformer forward or
  step), every rank says how the renderer's checks and LoRA selection went (`_settle`:
  ok, refused, failed). Only when every rank refused alike does the group stay warm
  (each raises the same refusal, rank 0 reports it); any disagreement or any other
  failure stops the group, so no rank is left in a collective the others never reach;
- at every step and every decoded frame (`Group.agree`), a broadcast of rank 0's view of the
  parent's Cancel or Shutdown, so they stop at the same point and the group stays
  warm after a cancel;
- once after loading, on the rendezvous store (`_all_loaded`).

A failure after the first agreement is a rank's last word: it sends `Failed` on its own
pipe, which the parent reads at once (another rank may sit in a collective with it), and
exits; the parent then stops the whole group and starts a fresh one for the next render.

Loading is not a collective: the ranks meet on the rendezvous store once loaded, with
a limit of an hour (`LOADED_TIMEOUT_SECONDS`), before their first NCCL collective,
whose limit (`COLLECTIVE_TIMEOUT_SECONDS`) is sized for one step. Every rank exits as
soon as the worker is gone (`_exit_with_parent`), wherever it waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import logging
import multiprocessing
import os
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, NoReturn

from i2v.domain.errors import EngineError, I2VError
from i2v.engines.diffusers import child, messages
from i2v.engines.diffusers.child import Renderer, Stop
from i2v.engines.diffusers.options import SPLIT_MODELS, UNSPLIT, EngineOptions, heads_refusal

logger = logging.getLogger("i2v.engines.diffusers")

# The rendezvous listens on loopback only: the ranks of a group run on one machine, and
# nothing else may join the group or read its store.
LOOPBACK = "127.0.0.1"
# A collective that waits this long means a rank is gone or hung: NCCL then aborts
# the rank, which the parent sees as a crash. Ranks meet at every step and frame, so
# the longest honest wait is one step or one VAE decode, minutes at most.
COLLECTIVE_TIMEOUT_SECONDS = 600.0
# Loading is not a collective's honest wait: each rank reads the whole checkpoint (~65 GB
# for a 14B model) from a disk the ranks share, so the fastest rank may wait for the
# slowest one far longer than COLLECTIVE_TIMEOUT_SECONDS. The ranks meet once after
# loading on the rendezvous store, with this limit, before their first collective.
LOADED_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Launch:
    """How the parent starts an engine's processes: `ranks` of them with `options`;
    `reason` says why one process although `gpus` names several devices."""

    ranks: int
    options: EngineOptions
    reason: str = ""


def plan_launch(family: str, options: EngineOptions) -> Launch:
    """The launch of a `family` engine with `options`, decided without torch (the parent
    never imports it). A launch whose options keep `gpus` runs `lead` (rank 0), which
    checks that the machine has them."""
    gpus = options.gpus
    if not gpus:
        return Launch(1, options)
    if options.device == "cpu" and not options.parallel_on_cpu:
        return Launch(
            1,
            dataclasses.replace(options, gpus=()),
            f"gpus = {list(gpus)} with device = cpu: context parallelism runs on CUDA GPUs; "
            "one CPU process",
        )
    first = dataclasses.replace(options, gpus=gpus[:1])
    if len(gpus) == 1:
        return Launch(1, first, f"gpus = {list(gpus)}: one process on that GPU")
    if family in UNSPLIT:
        return Launch(
            1,
            first,
            f"gpus = {list(gpus)}: the {family} engine renders on one GPU ({UNSPLIT[family]}); "
            f"one process on GPU {gpus[0]}",
        )
    if options.offload not in ("auto", "none"):
        # only after an out-of-memory error (the catalog refuses gpus with offload): the
        # group did not fit, and one GPU with offload may
        return Launch(
            1,
            first,
            f"offload = {options.offload} after running out of memory with {len(gpus)} GPUs: "
            f"one process on GPU {gpus[0]}",
        )
    return Launch(len(gpus), options)


# -- where the ranks run --------------------------------------------------------


def visible_devices(gpus: tuple[int, ...], visible: str | None) -> tuple[str, str]:
    """The CUDA_VISIBLE_DEVICES that shows exactly `gpus`, in order, given the worker's
    own value `visible` (None: unset), and why it cannot ("" when it can). The ids count
    among the worker's visible devices, so a rank never reaches a GPU the worker was not
    given; an empty value gives the worker no GPU at all."""
    if visible is None:
        return ",".join(map(str, gpus)), ""
    names = [name.strip() for name in visible.split(",") if name.strip()]
    if not names:
        return "", ""  # no GPU: `_placed` finds no CUDA
    beyond = [gpu for gpu in gpus if gpu >= len(names)]
    if beyond:
        return "", (
            f"CUDA_VISIBLE_DEVICES={visible} shows this worker {len(names)} GPU(s) "
            f"(ids 0..{len(names) - 1}); {beyond} are not among them"
        )
    return ",".join(names[gpu] for gpu in gpus), ""


def _see_devices(options: EngineOptions) -> str:
    """Make the process's GPUs the only visible ones, in `gpus` order, so that rank r
    runs on cuda:r (diffusers places a rank on `rank % device_count`); why it cannot, or
    "". Runs before torch is imported in this process (a fresh spawn): CUDA reads the
    variable once, when it starts."""
    if options.device == "cpu":
        return ""
    chosen, shortfall = visible_devices(options.gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    return shortfall


def _placed(options: EngineOptions, shortfall: str) -> EngineOptions:
    """The options this process serves with once its GPUs are visible: its own, or one
    CPU process for a route whose device is `auto` on a machine with no CUDA at all.
    Raises EngineError when the machine has CUDA but not these GPUs: rendering a GPU
    route on the CPU would take hours."""
    if options.device == "cpu":
        return options  # parallel_on_cpu: plan_launch let only that through
    import torch

    gpus = list(options.gpus)
    if not shortfall and not torch.cuda.is_available():
        if options.device == "auto":
            logger.warning("gpus = %s: no CUDA device here; rendering on cpu alone", gpus)
            return dataclasses.replace(options, device="cpu", gpus=())
        shortfall = "no CUDA device here"
    elif not shortfall and torch.cuda.device_count() < len(gpus):
        shortfall = f"only {torch.cuda.device_count()} of them are visible"
    if shortfall:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise EngineError(
            f"gpus = {gpus}: {shortfall} (CUDA_VISIBLE_DEVICES of this engine: "
            f"{seen if seen is not None else 'unset'})"
        )
    if len(gpus) == 1:
        return dataclasses.replace(options, device="cuda:0", gpus=())  # the one visible
    return options


def _loopback_only() -> None:
    """Keep the group's own connections on loopback unless the operator chose an
    interface: NCCL and gloo otherwise listen on the host's address."""
    for name in ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        os.environ.setdefault(name, "lo")


# -- rank 0 -----------------------------------------------------------------


def lead(conn: Connection, family: str, parsed: EngineOptions) -> None:
    """Rank 0 (or the one process of a single `gpus` id): start the group and serve the
    parent as a single child would."""
    _exit_with_parent()
    shortfall = _see_devices(parsed)
    channel = child.Channel(conn)
    child.quiet_libraries()
    child.forward_logs(channel)
    try:
        options = _placed(parsed, shortfall)
    except EngineError as exc:
        channel.send(messages.Failed(exc.message, during_load=True))
        return
    ranks = len(options.gpus)
    if ranks < 2:
        child.serve(channel, family, options)
        return
    _loopback_only()
    try:
        listener, store = _listen(ranks)
        channel.send(messages.Rendezvous(listener.getsockname()[1], ranks))
        group = Group.join(0, ranks, store, options)
    except BaseException as exc:
        channel.send(messages.Failed(child.describe(exc), during_load=True))
        return
    _stay_or_go(child.serve(channel, family, group.rank_options(options), group), group)


# -- ranks 1..N-1 -----------------------------------------------------------


def follow(conn: Connection, family: str, parsed: EngineOptions, rank: int, ranks: int) -> None:
    """Rank `rank` > 0: join rank 0's group, load, and render every request alongside it."""
    _exit_with_parent()
    _see_devices(parsed)  # rank 0 reports a shortfall; this rank then gets Shutdown
    channel = child.Channel(conn, quiet=True)
    child.quiet_libraries()
    _quiet_ranks()
    import torch.distributed  # noqa: F401  # while rank 0 checks the GPUs

    try:
        rendezvous = conn.recv()
    except (EOFError, OSError):
        return
    if not isinstance(rendezvous, messages.Rendezvous):
        return  # Shutdown: rank 0 serves alone
    _loopback_only()
    try:
        group = Group.join(rank, ranks, _connect(ranks, rendezvous.port), parsed)
    except BaseException as exc:
        failed = messages.Failed(f"rank {rank}: {child.describe(exc)}", during_load=True)
        _last_word(channel, failed)
    _stay_or_go(child.serve(channel, family, group.rank_options(parsed), group), group)


def _quiet_ranks() -> None:
    """Ranks > 0 have no pipe for logs: their warnings are rank 0's, which it forwards."""
    for name in ("i2v", "diffusers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _stay_or_go(clean: bool, group: Group) -> None:
    """After `child.serve`: leave the group when the parent asked for the stop, which
    every rank reached at the same point; otherwise (the parent is gone) exit at once,
    as leaving could wait on a collective another rank never finishes."""
    if clean:
        group.leave()
        return
    _exit_now(0)


def _last_word(channel: child.Channel, failed: messages.Failed) -> NoReturn:
    """Tell the parent why this rank stops, and exit at once: the parent reads it
    (from this rank's own pipe) and stops the whole group. Exiting without unwinding
    keeps NCCL and CUDA teardown, which can hang on a broken group, out of the way; the
    exit code 0 tells the parent that this rank reported its failure (it did not crash)."""
    with contextlib.suppress(OSError, ValueError):
        channel.say(failed)  # in the pipe once send returns
    _exit_now(0)


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _exit_with_parent() -> None:
    """A rank blocked in a collective or in the store's wait reads no pipe: when the
    worker dies it would wait for that wait's limit (up to an hour) holding its GPU and
    the group's port. Exit as soon as the parent is gone: its sentinel becomes ready
    when it exits, however it exits."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="i2v-parent-watch", daemon=True).start()


# -- the group ----------------------------------------------------------------


def _listen(ranks: int) -> tuple[socket.socket, Any]:
    """Rank 0's rendezvous store, on a socket bound to loopback (TCPStore would bind
    every interface); the socket is kept open for the process's life."""
    from torch.distributed import TCPStore  # type: ignore[attr-defined]  # not in __all__

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(ranks)
    store = TCPStore(
        LOOPBACK,
        listener.getsockname()[1],
        ranks,
        is_master=True,
        wait_for_workers=False,
        timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS),
        master_listen_fd=listener.fileno(),
    )
    return listener, store


def _connect(ranks: int, port: int) -> Any:
    """A rank > 0's end of the store rank 0 announced."""
    from torch.distributed import TCPStore  # type: ignore[attr-defined]  # not in __all__

    return TCPStore(
        LOOPBACK,
        port,
        ranks,
        is_master=False,
        timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS),
    )


class Start(enum.IntEnum):
    """How a rank's render went up to its first collective (ordered: worst last)."""

    OK = 0
    REFUSED = 1
    FAILED = 2


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
        # whether this render's ranks have agreed how its start went (`_settle`); until
        # then a rank's error comes before any collective of the render
        self._settled = False

    @classmethod
    def join(cls, rank: int, ranks: int, store: Any, options: EngineOptions) -> Group:
        import torch
        import torch.distributed as dist

        extra: dict[str, Any] = {}
        if options.device == "cpu":
            device, backend = torch.device("cpu"), "gloo"
        else:
            device, backend = torch.device("cuda", rank), "nccl"
            torch.cuda.set_device(device)
            # NCCL connects the ranks now, so that a broken group fails the load rather
            # than the first render
            extra["device_id"] = device
        # diffusers 0.42.1 calls a deprecated torch collective at every split; once per
        # rank, in the worker's log it says nothing an operator can act on
        warnings.filterwarnings("ignore", message=".*all_gather_tensor.*", category=FutureWarning)
        dist.init_process_group(
            backend,
            store=store,
            rank=rank,
            world_size=ranks,
            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT_SECONDS),
            **extra,
        )
        return cls(rank, ranks, device, options.gpus, store)

    def leave(self) -> None:
        """Leave the group on a clean stop (exiting without it takes seconds longer)."""
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
        # a new render: its ranks have not agreed yet how its start went
        self._settled = False

    def refused(self, exc: BaseException) -> bool:
        # A rank failing before the render's first collective tells the others, which
        # wait for it there (`_meet`, `agree`): the render is refused, and the group
        # stays warm, only when every rank refused it alike (the same I2VError from the
        # same checks on the same request). A failure after that agreement, or any
        # disagreement, leaves ranks at different points: only a new group is trusted.
        if self._settled:
            return False
        refusal = isinstance(exc, I2VError) and not child.is_oom(exc)
        try:
            worst, best = self._settle(Start.REFUSED if refusal else Start.FAILED)
        except Exception:
            return False  # the group is broken: this rank's failure is its last word
        return worst is Start.REFUSED and best is Start.REFUSED

    def last_word(self, channel: child.Channel, failed: messages.Failed) -> NoReturn:
        if self.rank:
            failed = dataclasses.replace(failed, message=f"rank {self.rank}: {failed.message}")
        _last_word(channel, failed)

    def _meet(self, *_: Any) -> None:
        # the transformer's forward exchanges the sequence between the ranks: every rank
        # must first know that all of them got this far (see `refused`)
        self._ready()

    def agree(self, stop: Stop) -> Stop:
        import torch
        import torch.distributed as dist

        self._ready()
        decision = torch.tensor([int(stop)], dtype=torch.int64, device=self.device)
        dist.broadcast(decision, src=0)
        return Stop(int(decision.item()))

    def _ready(self) -> None:
        """This rank's render starts its first collective: check that every rank did."""
        if self._settled:
            return
        worst, _ = self._settle(Start.OK)
        if worst is not Start.OK:
            raise child.PeerFailed("another rank could not start this render")

    def _settle(self, start: Start) -> tuple[Start, Start]:
        """Every rank's `start` of this render: the worst and the best of them."""
        import torch
        import torch.distributed as dist

        self._settled = True
        # one all_reduce gives both: the max of the starts and the max of their negations
        values = torch.tensor([int(start), -int(start)], dtype=torch.int64, device=self.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return Start(int(values[0].item())), Start(-int(values[1].item()))

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
