"""One render across several devices (`parallel`): a real context-parallel group of
two CPU ranks (gloo) on the tiny TI2V Wan, against one process with the same seed.

diffusers 0.42.1 cannot enable context parallelism on a machine without an
accelerator as it is (it places a rank on `rank % torch.accelerator.device_count()`,
a division by zero); `parallel` counts one device for CPU ranks, which tests use
through `parallel_on_cpu`. Everything else (gloo all-to-all in attention, the
rendezvous, the agreed cancel) is the code CUDA ranks run, with NCCL there.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import typer
from typer.testing import CliRunner

import tiny
from i2v.cli import wiring
from i2v.cli.worker import worker
from i2v.domain.catalog import CatalogError
from i2v.domain.errors import Cancelled, EngineCrashed, EngineError
from i2v.engines import registry
from i2v.engines.diffusers import create_wan_engine, messages, parallel, process
from i2v.engines.diffusers.options import EngineOptions, parse_options
from i2v.engines.diffusers.process import ProcessEngine
from jobs import generation_request

# 64x32 renders 2 tokens per latent frame: Ulysses splits the sequence evenly in two
SIZE = {"width": 64, "height": 32}


def _options(weights: dict[str, Path], **changes: Any) -> dict[str, Any]:
    values = {"max_area": 64 * 32, "device": "cpu", "cancel_silence_seconds": 20.0} | changes
    return tiny.tiny_options("wan-ti2v", weights["wan-ti2v"], **values)


@pytest.fixture(scope="module")
def group(weights: dict[str, Path]) -> Iterator[ProcessEngine]:
    """Two CPU ranks, kept warm from one test to the next (a group starts in seconds)."""
    engine = create_wan_engine(_options(weights, gpus=[0, 1], parallel_on_cpu=True))
    yield engine
    engine.close()


def _render(engine: ProcessEngine, seed: int = 5) -> np.ndarray:
    image = np.full((32, 64, 3), 90, np.uint8)
    request = generation_request(image, seed=seed, **SIZE)
    return np.stack(list(engine.render(request, lambda *_: None)))


def _cancel_at_first_step(engine: ProcessEngine) -> None:
    image = np.full((32, 64, 3), 90, np.uint8)

    def cancel(done: int, total: int, stage: str) -> None:
        if stage == "denoising":
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(engine.render(generation_request(image, seed=5, **SIZE), cancel))


def test_two_cpu_ranks_render_what_one_process_renders(
    weights: dict[str, Path], group: ProcessEngine
) -> None:
    single = create_wan_engine(_options(weights))
    try:
        alone = _render(single)
        split = _render(group)
        ranks = group.rank_pids
        assert len(ranks) == 2
        assert "context parallel (Ulysses) over 2 CPU ranks" in group.description
        # the same seed, the attention computed in halves: float32 rounding at most
        assert split.shape == alone.shape == (9, 32, 64, 3)
        assert np.abs(split.astype(int) - alone.astype(int)).max() <= 1

        # a cancel stops every rank at the same step, and the group stays warm
        _cancel_at_first_step(group)
        again = _render(group)
        assert group.rank_pids == ranks
        assert np.array_equal(again, split)
    finally:
        single.close()


def test_a_refused_request_keeps_the_group_and_a_dead_rank_crashes_it(
    group: ProcessEngine,
) -> None:
    image = np.full((32, 64, 3), 90, np.uint8)
    group.start()
    first = group.rank_pids
    assert len(first) == 2
    # every rank refuses the same request in the same check, before any collective: the
    # group stays warm, as one process does, and renders the next request
    with pytest.raises(EngineError, match="non-empty prompt"):
        list(group.render(generation_request(image, prompt=" ", **SIZE), lambda *_: None))
    assert group.rank_pids == first
    assert _render(group).shape == (9, 32, 64, 3)
    assert group.rank_pids == first

    def kill_rank_1(done: int, total: int, stage: str) -> None:
        if stage == "denoising" and done == 1:
            os.kill(first[1], signal.SIGKILL)

    with pytest.raises(EngineCrashed, match="rank 1"):
        list(group.render(generation_request(image, seed=5, **SIZE), kill_rank_1))
    assert group.rank_pids == []  # rank 0 went with it

    frames = _render(group)
    assert frames.shape == (9, 32, 64, 3)
    fresh = group.rank_pids
    assert len(fresh) == 2
    assert not set(fresh) & set(first)


def rank_0_in_a_stuck_collective(conn: Any, family: str, options: EngineOptions) -> None:
    """A stand-in rank 0 that, once rendering, waits in a collective for a rank that
    failed: it sends only heartbeats, until the collective's timeout (30 s here)."""
    conn.send(messages.Ready("stand-in rank 0"))
    while not isinstance(conn.recv(), messages.Render):
        pass
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        conn.send(messages.Busy())
        time.sleep(0.1)
    conn.send(messages.Failed("collective timed out"))
    conn.recv()


def rank_1_failing_slow_to_exit(conn: Any, family: str, options: EngineOptions) -> None:
    """A stand-in rank 1 that fails its render and then takes its time to exit (say a
    CUDA teardown that hangs)."""
    while not isinstance(conn.recv(), messages.Render):
        pass
    conn.send(messages.Failed("rank 1: RuntimeError: a kernel failed"))
    conn.recv()


def test_a_failed_rank_is_heard_while_rank_0_waits_for_it(tmp_path: Path) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    engine = ProcessEngine(
        "wan", EngineOptions(weights=str(folder)), child_main=rank_0_in_a_stuck_collective
    )
    try:
        engine.start()
        # the parent's side of a group: its ranks > 0, started as `_start_peers` does
        conn = engine._spawn(rank_1_failing_slow_to_exit, "rank1", engine.options)
        engine._peers.append(process._Rank(*conn))
        image = np.full((32, 64, 3), 90, np.uint8)
        with pytest.raises(EngineError, match="rank 1: RuntimeError: a kernel failed"):
            list(engine.render(generation_request(image, **SIZE), lambda *_: None))
        assert engine.rank_pids == []
    finally:
        engine.close()


def rank_1_silent(conn: Any, family: str, options: EngineOptions) -> None:
    """A stand-in rank 1 that renders without a word (as a healthy rank 1 does)."""
    while not isinstance(conn.recv(), messages.Shutdown):
        pass


def test_a_cancel_does_not_wait_on_a_wedged_collective(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    # rank 0 sends heartbeats only (no step, no frame) for 30 s: far past this limit
    monkeypatch.setattr(parallel, "COLLECTIVE_TIMEOUT_SECONDS", 0.5)
    engine = ProcessEngine(
        "wan", EngineOptions(weights=str(folder)), child_main=rank_0_in_a_stuck_collective
    )
    try:
        engine.start()
        engine._peers.append(process._Rank(*engine._spawn(rank_1_silent, "rank1", engine.options)))
        image = np.full((32, 64, 3), 90, np.uint8)
        # what `render` does before it waits for the first frame, which never comes here
        engine._send_all(messages.Render(generation_request(image, **SIZE)))
        engine.state = process.ChildState.RENDERING
        with caplog.at_level(logging.WARNING, logger="i2v.engines.diffusers"):
            engine._cancel()
        assert "no step or frame for 0.5 s after cancel" in caplog.text
        assert engine.rank_pids == []
    finally:
        engine.close()


def test_a_machine_without_the_gpus_renders_in_one_process(
    weights: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # device auto: rank 0 starts, finds no CUDA device and serves alone on the CPU
    engine = create_wan_engine(_options(weights, gpus=[0, 1], device="auto"))
    try:
        with caplog.at_level(logging.INFO, logger="i2v.engines.diffusers"):
            frames = _render(engine)
        assert frames.shape == (9, 32, 64, 3)
        assert len(engine.rank_pids) == 1
        assert "no CUDA device here; rendering on cpu alone" in caplog.text
    finally:
        engine.close()


def test_launch_plans() -> None:
    def plan(**changes: Any) -> parallel.Launch:
        return parallel.plan_launch("wan", EngineOptions(weights="org/name", **changes))

    assert plan() == parallel.Launch(1, EngineOptions(weights="org/name"))
    # one id is placed as several are: rank 0 (`lead`) checks the machine has it
    one = plan(gpus=(3,))
    assert (one.ranks, one.options.gpus) == (1, (3,))
    assert "one process on that GPU" in one.reason
    cpu = plan(gpus=(0, 1), device="cpu")
    assert (cpu.ranks, cpu.options.device, cpu.options.gpus) == (1, "cpu", ())
    assert "context parallelism runs on CUDA GPUs" in cpu.reason
    assert plan(gpus=(0, 1, 2, 3)).ranks == 4
    # after running out of memory the engine steps down to offload: one GPU can offload
    stepped = plan(gpus=(2, 3), offload="model")
    assert (stepped.ranks, stepped.options.gpus) == (1, (2,))
    ltx = parallel.plan_launch("ltx", EngineOptions(weights="org/name", gpus=(1, 2)))
    assert (ltx.ranks, ltx.options.gpus) == (1, (1,))
    assert "the ltx engine renders on one GPU" in ltx.reason


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("offload", "model"),
        ("attention_backend", "flex"),
        ("first_block_cache", 0.1),
        ("device", "cuda:1"),
        ("compile", True),
    ],
)
def test_the_catalog_refuses_what_context_parallelism_cannot_do(option: str, value: Any) -> None:
    with pytest.raises(CatalogError, match=rf"gpus = \(0, 1\) cannot be combined with {option}"):
        parse_options({"weights": "org/name", "gpus": [0, 1], option: value}, "wan")


def test_the_catalog_refuses_gpus_that_do_not_divide_the_heads(
    weights: dict[str, Path],
) -> None:
    # the tiny Wan has 2 attention heads: 3 ranks cannot each take whole heads
    options = _options(weights, gpus=[0, 1, 2], parallel_on_cpu=True)
    with pytest.raises(
        CatalogError, match=r"gpus: \[0, 1, 2\].* 3 GPUs do not divide .* 2 attention heads.*\(2\)"
    ):
        parse_options(options, "wan")
    assert parse_options(_options(weights, gpus=[0, 1]), "wan").gpus == (0, 1)


def test_an_engine_that_does_not_split_takes_options_a_group_cannot(
    weights: dict[str, Path],
) -> None:
    # LTX renders alone on the first GPU, so what a group refuses is fine on its routes
    options = tiny.tiny_options(
        "ltx", weights["ltx"], offload="model", first_block_cache=0.1, device="cpu"
    )
    ltx = wiring.engine_factory((0, 1))("ltx", options)
    try:
        assert isinstance(ltx, ProcessEngine)
        assert ltx.options.gpus == (0, 1)
        assert parallel.plan_launch("ltx", ltx.options).ranks == 1
    finally:
        ltx.close()


def test_gpus_must_be_device_ids() -> None:
    for value in ("0,1", [0, 0], [-1], [True]):
        with pytest.raises(CatalogError, match="gpus"):
            parse_options({"weights": "org/name", "gpus": value}, "wan")
    assert parse_options({"weights": "org/name", "gpus": [1, 0]}, "wan").gpus == (1, 0)


def test_the_worker_flag_reaches_the_gpu_engines() -> None:
    create = wiring.engine_factory((2, 3))
    wan = create("wan", {"weights": "org/name"})
    own = create("ltx", {"weights": "org/name", "gpus": [1]})
    fake = create("fake", {})
    try:
        assert isinstance(wan, ProcessEngine)
        assert isinstance(own, ProcessEngine)
        assert wan.options.gpus == (2, 3)
        assert own.options.gpus == (1,)  # a route naming its own devices keeps them
    finally:
        for engine in (wan, own, fake):
            engine.close()
    assert wiring.engine_factory(()) is registry.create
    with pytest.raises(CatalogError, match=r"gpus = \(2, 3\) cannot be combined with offload"):
        create("wan", {"weights": "org/name", "offload": "model"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpus", "0,1", "--workers", "2"], "one worker thread uses them"),
        (["--gpus", "0,x"], "a list of CUDA device ids"),
        (["--gpus", "1,1"], "names a device twice"),
    ],
)
def test_the_worker_refuses_bad_gpus(args: list[str], message: str, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(worker)
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def _listening(pids: list[int]) -> list[str]:
    """The addresses the processes `pids` listen on."""
    return [
        f"{c.laddr.ip}:{c.laddr.port}"
        for pid in pids
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def test_a_group_listens_on_loopback_only(group: ProcessEngine) -> None:
    group.start()
    addresses = _listening(group.rank_pids)
    assert addresses  # the rendezvous store, at least
    assert all(a.startswith(("127.", "::1")) for a in addresses), addresses


def test_rank_0_killed_mid_render_is_named(group: ProcessEngine) -> None:
    image = np.full((32, 64, 3), 90, np.uint8)
    group.start()
    first = group.rank_pids

    def kill_rank_0(done: int, total: int, stage: str) -> None:
        if stage == "denoising" and done == 1:
            os.kill(first[0], signal.SIGKILL)

    # rank 1 reports the broken collective and exits 0; what broke it is rank 0's death
    with pytest.raises(EngineCrashed, match=r"rank 0 \(killed by signal 9"):
        list(group.render(generation_request(image, seed=5, **SIZE), kill_rank_0))
    assert group.rank_pids == []


def _group_of_two_under(parent_conn: Any) -> None:
    """A stand-in worker: starts rank 0 and rank 1 of a group of three, so both wait in
    the group's rendezvous for a rank that never comes, and reports their pids."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    options = EngineOptions(weights="org/name", device="cpu", gpus=(0, 1, 2), parallel_on_cpu=True)
    ends = [context.Pipe() for _ in range(2)]
    lead = context.Process(target=parallel.lead, args=(ends[0][1], "wan", options))
    follow = context.Process(target=parallel.follow, args=(ends[1][1], "wan", options, 1, 3))
    lead.start()
    follow.start()
    message = ends[0][0].recv()
    while not isinstance(message, messages.Rendezvous):
        message = ends[0][0].recv()
    ends[1][0].send(message)
    parent_conn.send([lead.pid, follow.pid])
    time.sleep(3600)  # until the test kills this process


def test_the_ranks_exit_when_the_worker_dies() -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    # not a daemon: a daemon process may not start processes of its own
    worker = context.Process(target=_group_of_two_under, args=(theirs,))
    worker.start()
    alive: list[psutil.Process] = []
    try:
        assert wait([ours, worker.sentinel], 120) == [ours], "the stand-in did not start"
        ranks = [psutil.Process(pid) for pid in ours.recv()]
        # both ranks wait in the rendezvous, where no pipe is read
        assert all(rank.is_running() for rank in ranks)
        os.kill(worker.pid or 0, signal.SIGKILL)
        _, alive = psutil.wait_procs(ranks, timeout=60)
        assert alive == []
    finally:
        worker.kill()
        worker.join()
        for rank in alive:
            rank.kill()


def _agreeing_rank(rank: int, ports: Any, starts: list[str], results: Any) -> None:
    """One rank of a gloo group of two: for each render, how its start went (`starts`),
    and what the group made of it."""
    from i2v.engines.diffusers import child

    options = EngineOptions(weights="org/name", device="cpu", gpus=(0, 1), parallel_on_cpu=True)
    if rank == 0:
        listener, store = parallel._listen(2)
        ports.put(listener.getsockname()[1])
    else:
        store = parallel._connect(2, ports.get())
    group = parallel.Group.join(rank, 2, store, options)
    failures = {
        "refused": EngineError("prompt: Wan needs a non-empty prompt"),
        "oom": EngineError("lora: RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"),
        "failed": RuntimeError("a kernel failed"),
    }
    seen = []
    for start in starts:
        group.begin()
        if start == "ok":
            try:
                group._meet()
                seen.append("met")
            except child.PeerFailed:
                seen.append("peer failed")
        else:
            seen.append("refused" if group.refused(failures[start]) else "failed")
        # the group still meets after each render's agreement
        group.agree(child.Stop.NONE)
    results.put((rank, seen))


# each render: how its start went on rank 0 and on rank 1, and what each rank then does
STARTS = [
    ("ok", "ok", "met", "met"),
    ("refused", "refused", "refused", "refused"),  # the group stays warm
    ("refused", "ok", "failed", "peer failed"),  # rank 0 alone refused: the group stops
    ("ok", "refused", "peer failed", "failed"),
    ("refused", "oom", "failed", "failed"),  # out of memory is never a refusal
    ("failed", "refused", "failed", "failed"),
    ("ok", "ok", "met", "met"),  # and every render after those starts in step
]


def test_the_ranks_agree_how_a_render_started() -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ports, results = context.Queue(), context.Queue()
    ranks = [
        context.Process(
            target=_agreeing_rank,
            args=(rank, ports, [starts[rank] for starts in STARTS], results),
        )
        for rank in (0, 1)
    ]
    for each in ranks:
        each.start()
    try:
        seen = dict(results.get(timeout=120) for _ in ranks)
        assert list(zip(seen[0], seen[1], strict=True)) == [s[2:] for s in STARTS]
    finally:
        for each in ranks:
            each.join(timeout=30)
            each.kill()


def test_gpu_ids_count_among_the_workers_visible_gpus() -> None:
    assert parallel.visible_devices((0, 1), None) == ("0,1", "")
    assert parallel.visible_devices((1, 0), "4,5") == ("5,4", "")
    assert parallel.visible_devices((0,), "GPU-a1, GPU-b2") == ("GPU-a1", "")
    chosen, shortfall = parallel.visible_devices((0, 1, 2), "4,5")
    assert chosen == ""
    assert "CUDA_VISIBLE_DEVICES=4,5 shows this worker 2 GPU(s)" in shortfall
    assert "[2] are not among them" in shortfall
    # an empty value hides every GPU: none becomes visible again
    assert parallel.visible_devices((0, 1), "") == ("", "")
    assert parallel.visible_devices((0,), " ") == ("", "")


@pytest.mark.parametrize(
    ("gpus", "device", "visible", "refusal"),
    [
        # one id and several take the same path (each case starts and loads a group)
        ([0, 1], "cuda", None, r"gpus = \[0, 1\]: no CUDA device here"),
        ([1], "auto", "3", r"gpus = \[1\]: CUDA_VISIBLE_DEVICES=3 shows this worker 1"),
    ],
)
def test_a_gpu_route_never_renders_on_the_cpu_without_its_gpus(
    weights: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    gpus: list[int],
    device: str,
    visible: str | None,
    refusal: str,
) -> None:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)  # the spawned ranks inherit it
    engine = create_wan_engine(_options(weights, gpus=gpus, device=device))
    try:
        with pytest.raises(EngineError, match=f"could not load its pipeline: {refusal}"):
            engine.start()
        assert engine.rank_pids == []
    finally:
        engine.close()
