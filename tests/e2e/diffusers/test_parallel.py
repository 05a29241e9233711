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
from pathlib import Path
from typing import Any

import numpy as np
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
    one = plan(gpus=(3,))
    assert (one.ranks, one.options.device, one.options.gpus) == (1, "cuda:3", ())
    assert "one process on that GPU" in one.reason
    cpu = plan(gpus=(0, 1), device="cpu")
    assert (cpu.ranks, cpu.options.device) == (1, "cpu")
    assert "context parallelism runs on CUDA GPUs" in cpu.reason
    assert plan(gpus=(0, 1, 2, 3)).ranks == 4
    # after running out of memory the engine steps down to offload: one GPU can offload
    stepped = plan(gpus=(2, 3), offload="model")
    assert (stepped.ranks, stepped.options.device) == (1, "cuda:2")
    ltx = parallel.plan_launch("ltx", EngineOptions(weights="org/name", gpus=(1, 2)))
    assert (ltx.ranks, ltx.options.device) == (1, "cuda:1")
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
