"""Fixes to the diffusers engines found by reading them against the real checkpoints
(issue 10), each on a tiny random pipeline: generator device, the LTX distilled preset,
guidance_scale_2 without a second transformer, cancel keeping the warm child."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.errors import Cancelled, EngineError
from i2v.engines.diffusers import ProcessEngine, create_ltx_engine
from i2v.engines.diffusers.options import EngineOptions, parse_options
from jobs import generation_request

TINY = {"max_sequence_length": 16, "max_area": 32 * 32}
DISTILLED_TIMESTEPS = [1000, 993, 987, 981, 975, 909, 725, 0.03]  # diffusers ltx_video docs


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def _ignore(done: int, total: int, stage: str) -> None:
    pass


class Spy:
    """Wraps a pipeline: records each call's keyword arguments and runs the real call."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.pipe(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


@pytest.fixture(scope="module")
def ltx_timestep_vae(weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LTX folder with a timestep-conditioned VAE, as every 0.9.1+ checkpoint
    has: its decode draws noise with `torch.randn(..., generator=g, device=device)`."""
    from diffusers import AutoencoderKLLTXVideo

    folder = tmp_path_factory.mktemp("ltx-timestep-vae") / "ltx"
    shutil.copytree(weights["ltx"], folder)
    config = dict(json.loads((folder / "vae" / "config.json").read_text()))
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    vae = AutoencoderKLLTXVideo.from_config({**config, "timestep_conditioning": True})
    vae.save_pretrained(folder / "vae")
    return folder


def _ltx_renderer(folder: Path, **options: Any) -> Any:
    from i2v.engines.diffusers.ltx import LTXRenderer

    return LTXRenderer(parse_options({"weights": str(folder)} | TINY | options, "ltx"))


def test_ltx_draws_its_noise_on_the_execution_device(
    ltx_timestep_vae: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a CPU can show: the renderer asks `loading.generator` for the device the
    pipeline runs on, and the generator it gets is there. It cannot show a CUDA decode
    (the original crash: a CPU generator handed to torch.randn(device="cuda")); the
    CUDA test below does, where a GPU is present. Here the renderer is told it runs on
    "cuda" while the spy still hands back a CPU generator, so the render completes."""
    import torch

    from i2v.engines.diffusers import loading

    renderer = _ltx_renderer(ltx_timestep_vae, steps=2, max_frames_per_segment=9)
    asked: list[torch.device] = []
    real = loading.generator

    def spy(seed: int, device: torch.device) -> torch.Generator:
        asked.append(device)
        # where CUDA is, the pipeline really runs there and needs the real thing
        return real(seed, device if torch.cuda.is_available() else torch.device("cpu"))

    assert real(3, renderer.pipe._execution_device).device == renderer.pipe._execution_device
    monkeypatch.setattr(loading, "generator", spy)
    renderer.loaded.device = torch.device("cuda")
    request = generation_request(_image(), frames=17)
    frames = list(renderer(request, _ignore))

    assert len(frames) == 17
    assert asked == [torch.device("cuda")] * 2  # one generator per segment


def test_ltx_with_a_timestep_conditioned_vae_renders_on_cuda(ltx_timestep_vae: Path) -> None:
    """The original crash, where a GPU is present: before the fix this failed in the
    decode with "Expected a 'cuda' device type for generator"."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    renderer = _ltx_renderer(ltx_timestep_vae, steps=2, device="cuda")
    assert len(list(renderer(generation_request(_image()), _ignore))) == 9


def test_the_distilled_preset_calls_the_condition_pipeline_with_its_schedule(
    weights: dict[str, Path],
) -> None:
    renderer = _ltx_renderer(weights["ltx"], preset="distilled")
    assert type(renderer.pipe).__name__ == "LTXConditionPipeline"
    spy = renderer.pipe = Spy(renderer.pipe)
    steps: list[tuple[int, int]] = []

    def progress(done: int, total: int, stage: str) -> None:
        if stage == "denoising":
            steps.append((done, total))

    frames = list(renderer(generation_request(_image()), progress))

    (call,) = spy.calls
    assert call["timesteps"] == DISTILLED_TIMESTEPS
    assert call["num_inference_steps"] == 8
    assert call["guidance_scale"] == 1.0
    assert call["guidance_rescale"] == 0.7
    assert call["image_cond_noise_scale"] == 0.0
    assert len(frames) == 9
    assert steps[-1] == (8, 8)  # the real pipeline ran the eight timesteps


def test_a_request_can_still_ask_the_distilled_model_for_other_steps_and_guidance(
    weights: dict[str, Path],
) -> None:
    renderer = _ltx_renderer(weights["ltx"], preset="distilled")
    spy = renderer.pipe = Spy(renderer.pipe)
    request = generation_request(_image(), num_inference_steps=3, guidance_scale=2.0)
    list(renderer(request, _ignore))

    (call,) = spy.calls
    assert "timesteps" not in call  # the scheduler's own spacing for 3 steps
    assert call["num_inference_steps"] == 3
    assert call["guidance_scale"] == 2.0


def test_guidance_scale_2_without_a_second_transformer_fails_the_first_load(
    weights: dict[str, Path],
) -> None:
    # the catalog check cannot see weights that are not downloaded yet; the child can
    engine = ProcessEngine(
        "wan",
        EngineOptions(weights=str(weights["wan-flf2v"]), guidance_scale_2=2.0, steps=2),
    )
    try:
        with pytest.raises(EngineError) as failed:
            list(engine.render(generation_request(_image(), last_image=_image(1)), _ignore))
        assert "could not load its pipeline: guidance_scale_2" in failed.value.message
        assert str(weights["wan-flf2v"]) in failed.value.message
        assert "no transformer_2" in failed.value.message
        assert engine.pid is None
    finally:
        engine.close()


@pytest.fixture(scope="module")
def ltx(weights: dict[str, Path]) -> Iterator[ProcessEngine]:
    # a short silence limit makes the child send a heartbeat every 50 ms during renders
    engine = create_ltx_engine(
        {
            "weights": str(weights["ltx"]),
            "steps": 2,
            "max_frames_per_segment": 9,
            "cancel_silence_seconds": 0.2,
        }
        | TINY
    )
    yield engine
    engine.close()


def test_cancel_after_a_decode_is_answered_and_the_same_child_renders_next(
    ltx: ProcessEngine,
) -> None:
    list(ltx.render(generation_request(_image()), _ignore))
    pid = ltx.pid

    def cancel_after_the_first_decode(done: int, total: int, stage: str) -> None:
        if stage == "decoded":
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(ltx.render(generation_request(_image(), frames=17), cancel_after_the_first_decode))

    assert ltx.pid == pid  # answered at the next boundary, not killed
    for _ in range(3):  # heartbeats never outlive a render: the warm child is kept
        assert len(list(ltx.render(generation_request(_image()), _ignore))) == 9
        assert ltx.pid == pid
