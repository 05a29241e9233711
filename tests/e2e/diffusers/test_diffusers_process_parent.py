"""The parent side of the diffusers engines (`ProcessEngine`) against stand-in children:
real spawned processes and a real pipe, speaking the `messages` protocol, but no model.

A stand-in is a module-level function (spawn imports it by name) bound to a behaviour
with `functools.partial`; it can simulate what a CPU cannot produce on demand, such as
a CUDA out-of-memory error or a decode that outlasts the cancel limit.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.errors import Cancelled, EngineCrashed
from i2v.engines.diffusers import messages
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.process import ChildState, ProcessEngine
from jobs import generation_request


def stand_in(conn: Connection, family: str, options: EngineOptions, *, behaviour: str) -> None:
    """A child that loads nothing and renders black frames, except as `behaviour` says:

    oom_unless_sequential  every render fails with out_of_memory (and the process exits)
                           unless it was started with offload=sequential
    busy_after_cancel      after Cancel, sends Busy for 1.5 s (a decode) and then answers
    hung_after_cancel      after Cancel, sends nothing ever again
    oom_placing_auto       with offload=auto, fails its load out of memory while placing
                           the pipeline with the mode `auto` chose on a mid-size card, model
    """
    if behaviour == "oom_placing_auto" and options.offload == "auto":
        failed = "placing the pipeline with offload=model: CUDA out of memory"
        conn.send(messages.Failed(failed, out_of_memory=True, during_load=True, offload="model"))
        return
    offload = options.offload if options.offload != "auto" else "none"
    conn.send(messages.Ready(f"stand-in ({behaviour})", offload))
    while True:
        message = conn.recv()
        if isinstance(message, messages.Shutdown):
            return
        if not isinstance(message, messages.Render):
            continue  # a stale Cancel
        request = message.request
        if behaviour == "oom_unless_sequential" and offload != "sequential":
            conn.send(messages.Failed("CUDA out of memory. Tried to allocate", out_of_memory=True))
            return
        if behaviour.endswith("after_cancel") and request.seed == 1:
            conn.send(messages.Progress(1, 2, "denoising"))
            while not isinstance(conn.recv(), messages.Cancel):
                pass
            if behaviour == "hung_after_cancel":
                time.sleep(3600)
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                conn.send(messages.Busy())
                time.sleep(0.05)
            conn.send(messages.Failed("cancelled", cancelled=True))
            continue
        for index in range(request.frames):
            pixels = np.zeros((request.height, request.width, 3), np.uint8)
            conn.send(messages.Frame(index, pixels))
        conn.send(messages.Done(request.frames, 0.0))


def _engine(tmp_path: Path, behaviour: str, **options: Any) -> ProcessEngine:
    folder = tmp_path / "weights"
    folder.mkdir(exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))
    return ProcessEngine(
        "wan",
        EngineOptions(weights=str(folder), **options),
        child_main=functools.partial(stand_in, behaviour=behaviour),
    )


def _request(seed: int = 0) -> Any:
    image = np.zeros((48, 64, 3), np.uint8)
    return generation_request(image, seed=seed)


def _ignore(done: int, total: int, stage: str) -> None:
    pass


def _cancel_at_first_step(done: int, total: int, stage: str) -> None:
    if stage == "denoising":
        raise Cancelled()


def test_an_oom_restarts_the_child_one_offload_mode_further_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(tmp_path, "oom_unless_sequential", offload="auto")
    modes, pids = [], []
    try:
        with caplog.at_level(logging.WARNING, logger="i2v.engines.diffusers"):
            for _ in range(3):
                with pytest.raises(EngineCrashed) as crashed:
                    list(engine.render(_request(), _ignore))
                # the worker retries exactly these (src/i2v/worker/loop.py)
                assert crashed.value.out_of_memory is True
                modes.append(engine.offload)
                assert engine.state is ChildState.STOPPED
            frames = list(engine.render(_request(), _ignore))
            modes.append(engine.offload)
            pids.append(engine.pid)
    finally:
        engine.close()

    assert modes == ["none", "model", "group", "sequential"]
    assert len(frames) == 9
    assert "with offload=none; the next child uses offload=model" in caplog.text
    assert "with offload=group; the next child uses offload=sequential" in caplog.text


def test_an_oom_in_the_last_mode_keeps_it_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(tmp_path, "oom_unless_sequential", offload="group")
    try:
        with caplog.at_level(logging.WARNING, logger="i2v.engines.diffusers"):
            with pytest.raises(EngineCrashed):
                list(engine.render(_request(), _ignore))
            assert len(list(engine.render(_request(), _ignore))) == 9
        assert engine.offload == "sequential"
    finally:
        engine.close()


def test_a_cancelled_child_busy_past_the_silence_limit_is_kept_warm(tmp_path: Path) -> None:
    # the stand-in takes 1.5 s to answer (a decode) but sends Busy every 50 ms: a limit of
    # 0.3 s of *silence* must not kill it; the old fixed 0.3 s grace would have
    engine = _engine(tmp_path, "busy_after_cancel", cancel_silence_seconds=0.3)
    try:
        list(engine.render(_request(), _ignore))
        pid = engine.pid
        with pytest.raises(Cancelled):
            list(engine.render(_request(seed=1), _cancel_at_first_step))
        assert engine.state is ChildState.IDLE
        assert engine.pid == pid
        assert len(list(engine.render(_request(), _ignore))) == 9
        assert engine.pid == pid
    finally:
        engine.close()


def test_a_cancelled_child_that_falls_silent_is_killed_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(tmp_path, "hung_after_cancel", cancel_silence_seconds=0.3)
    try:
        list(engine.render(_request(), _ignore))
        pid = engine.pid
        with (
            caplog.at_level(logging.WARNING, logger="i2v.engines.diffusers"),
            pytest.raises(Cancelled),
        ):
            list(engine.render(_request(seed=1), _cancel_at_first_step))
        assert "silent for 0.3 s after cancel (hung); killing it" in caplog.text
        assert engine.state is ChildState.STOPPED
        assert len(list(engine.render(_request(), _ignore))) == 9
        assert engine.pid not in (None, pid)
    finally:
        engine.close()


def test_an_oom_while_loading_steps_down_from_the_mode_auto_chose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(tmp_path, "oom_placing_auto", offload="auto")
    try:
        with caplog.at_level(logging.WARNING, logger="i2v.engines.diffusers"):
            with pytest.raises(EngineCrashed) as crashed:
                list(engine.render(_request(), _ignore))
            assert crashed.value.out_of_memory is True
            assert len(list(engine.render(_request(), _ignore))) == 9
    finally:
        engine.close()
    # `auto` had chosen model, not none: one step down from it is group
    assert engine.offload == "group"
    assert "with offload=model; the next child uses offload=group" in caplog.text
