"""The diffusers engines end to end on tiny random pipelines: real loading code,
real spawned child process, real pipe. No hub access (folders built in code)."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.errors import Cancelled, EngineCrashed, EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines import registry
from i2v.engines.diffusers import ProcessEngine, create_ltx_engine
from jobs import generation_request

# tiny renders: one 32-pixel block for TI2V/LTX, 16x16 for the 14B-shaped models
TINY = {"steps": 2, "max_sequence_length": 16, "cancel_silence_seconds": 20.0}


def _image(seed: int = 0, width: int = 64, height: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _request(last_image: np.ndarray | None = None, **spec: Any) -> GenerationRequest:
    return generation_request(_image(), last_image, **spec)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done: int, total: int, stage: str) -> None:
        self.calls.append((done, total, stage))

    def steps(self) -> list[tuple[int, int]]:
        return [(d, t) for d, t, s in self.calls if s == "denoising"]


def test_renders_the_requested_frames_at_the_requested_size(wan: ProcessEngine) -> None:
    progress = Recorder()
    frames = list(wan.render(_request(), progress))

    assert len(frames) == 9
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert progress.steps() == [(1, 2), (2, 2)]
    assert "Wan2.2 TI2V-5B" in wan.description
    assert "from tiny-org/wan-ti2v" in wan.description  # a repo id, found in the HF cache


def test_same_seed_gives_the_same_video_and_another_seed_does_not(wan: ProcessEngine) -> None:
    first = np.stack(list(wan.render(_request(seed=11), Recorder())))
    again = np.stack(list(wan.render(_request(seed=11), Recorder())))
    other = np.stack(list(wan.render(_request(seed=12), Recorder())))

    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_long_videos_chain_segments_from_the_last_frame(
    wan: ProcessEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # max_frames_per_segment = 9: 17 frames are two 9-frame segments sharing one frame
    progress = Recorder()
    with caplog.at_level(logging.INFO, logger="i2v.engines.diffusers"):
        frames = list(wan.render(_request(frames=17), progress))

    assert len(frames) == 17
    assert progress.steps() == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # the child's log records arrive as Log messages and are logged by the parent
    assert "segment 2/2: 9 frames at 32x32 from the previous segment's last frame" in caplog.text


def test_frame_counts_off_the_4k_plus_1_grid_are_cut_to_the_request(wan: ProcessEngine) -> None:
    assert len(list(wan.render(_request(frames=6), Recorder()))) == 6


def test_request_options_override_the_route_steps(wan: ProcessEngine) -> None:
    progress = Recorder()
    list(wan.render(_request(num_inference_steps=3), progress))

    assert progress.steps() == [(1, 3), (2, 3), (3, 3)]


def test_cancel_stops_the_child_within_a_step_and_keeps_it_warm(wan: ProcessEngine) -> None:
    list(wan.render(_request(), Recorder()))
    pid = wan.pid
    seen: list[int] = []

    def cancel_at_first_step(done: int, total: int, stage: str) -> None:
        if stage == "denoising":
            seen.append(done)
            if done == 1:
                raise Cancelled()

    frames: list[np.ndarray] = []
    with pytest.raises(Cancelled):
        frames.extend(wan.render(_request(num_inference_steps=50), cancel_at_first_step))

    assert frames == []
    assert seen == [1]
    assert wan.pid == pid  # stopped cooperatively, not killed
    assert len(list(wan.render(_request(), Recorder()))) == 9


def test_a_child_killed_mid_render_fails_that_render_and_the_next_one_works(
    wan: ProcessEngine,
) -> None:
    list(wan.render(_request(), Recorder()))
    pid = wan.pid
    assert pid is not None

    def kill_at_first_step(done: int, total: int, stage: str) -> None:
        if stage == "denoising" and done == 1:
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(EngineCrashed) as crashed:
        list(wan.render(_request(num_inference_steps=50), kill_at_first_step))

    assert "process died" in crashed.value.message
    assert "SIGKILL" in crashed.value.message
    assert crashed.value.out_of_memory is False
    assert len(list(wan.render(_request(), Recorder()))) == 9
    assert wan.pid not in (None, pid)


def test_a_child_killed_between_renders_is_replaced_on_the_next_render(
    wan: ProcessEngine,
) -> None:
    list(wan.render(_request(), Recorder()))
    pid = wan.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _wait_until_dead(wan)

    assert len(list(wan.render(_request(), Recorder()))) == 9
    assert wan.pid not in (None, pid)


def test_a_last_image_is_refused_by_ti2v_and_the_child_stays_usable(wan: ProcessEngine) -> None:
    with pytest.raises(EngineError, match="last_image"):
        list(wan.render(_request(last_image=_image(1)), Recorder()))

    assert len(list(wan.render(_request(), Recorder()))) == 9


# The families below render in this process (what the child adds is shown above on the
# shared Wan engine and on LTX): each spawned child costs seconds of torch import.
def _renderer(weights: Path, **options: Any) -> Any:
    from i2v.engines.diffusers.ltx import LTXRenderer
    from i2v.engines.diffusers.options import parse_options
    from i2v.engines.diffusers.wan import WanRenderer

    ltx = "ltx" in weights.name
    parsed = parse_options({"weights": str(weights)} | TINY | options, "ltx" if ltx else "wan")
    return LTXRenderer(parsed) if ltx else WanRenderer(parsed)


def _frames(renderer: Any, request: GenerationRequest, progress: Recorder) -> np.ndarray:
    return np.stack(list(renderer(request, progress)))


def test_two_expert_a14b_renders_and_chains_with_a_last_image(weights: dict[str, Path]) -> None:
    renderer = _renderer(weights["wan-a14b"], max_area=16 * 16, max_frames_per_segment=9)
    progress = Recorder()
    frames = _frames(renderer, _request(frames=17, fps=16, last_image=_image(3)), progress)
    assert frames.shape[:2] == (17, 16)  # native frames; the child's parent resizes
    assert progress.steps()[-1] == (4, 4)
    assert "Wan2.2 I2V-A14B" in renderer.description


def test_flf2v_uses_the_last_image(weights: dict[str, Path]) -> None:
    renderer = _renderer(weights["wan-flf2v"], max_area=16 * 16)
    one = _frames(renderer, _request(fps=16, last_image=_image(1)), Recorder())
    two = _frames(renderer, _request(fps=16, last_image=_image(2)), Recorder())
    assert one.shape[0] == 9
    assert not np.array_equal(one, two)
    with pytest.raises(EngineError, match=r"last_image: Wan2\.1 FLF2V-14B needs a last frame"):
        _frames(renderer, _request(fps=16), Recorder())


def test_ltx_renders_8k_plus_1_frames_and_chains(weights: dict[str, Path]) -> None:
    engine = create_ltx_engine(
        {"weights": str(weights["ltx"]), "max_area": 32 * 32, "max_frames_per_segment": 9} | TINY
    )
    try:
        assert len(list(engine.render(_request(), Recorder()))) == 9
        progress = Recorder()
        frames = list(engine.render(_request(frames=17, seed=3), progress))
        assert len(frames) == 17
        assert progress.steps()[-1] == (4, 4)
        assert "LTXImageToVideoPipeline" in engine.description
    finally:
        engine.close()


def test_missing_weights_fail_with_a_clear_message_before_a_child_starts(
    tmp_path: Path,
) -> None:
    folder = registry.create("wan", {"weights": str(tmp_path)})
    with pytest.raises(EngineError, match=r"weights: .* has no model_index\.json"):
        list(folder.render(_request(), Recorder()))
    uncached = registry.create("ltx", {"weights": "org/not-downloaded", "cache_dir": str(tmp_path)})
    with pytest.raises(EngineError, match=r"not in the Hugging Face cache \(huggingface-cli"):
        list(uncached.render(_request(), Recorder()))
    assert folder.pid is None
    assert uncached.pid is None


def _wait_until_dead(engine: ProcessEngine, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.pid is not None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_an_abandoned_render_is_stopped_before_the_next_one(wan: ProcessEngine) -> None:
    abandoned = wan.render(_request(num_inference_steps=50), Recorder())
    next(abandoned)  # the child is now busy with a 50-step render nobody reads
    pid = wan.pid

    assert len(list(wan.render(_request(), Recorder()))) == 9
    assert wan.pid == pid  # cancelled cooperatively, the same child kept
    abandoned.close()


def test_ltx_condition_pipeline_takes_a_last_image(weights: dict[str, Path]) -> None:
    renderer = _renderer(weights["ltx"], max_area=32 * 32, pipeline="condition")
    one = _frames(renderer, _request(last_image=_image(1)), Recorder())
    two = _frames(renderer, _request(last_image=_image(2)), Recorder())
    assert one.shape[0] == 9
    assert not np.array_equal(one, two)
    assert "LTXConditionPipeline" in renderer.description
