"""Distilled presets, native frame rates and segment seams, on the real-shaped tiny
pipelines (the renderers run in this process; the tests watch the pipeline they drive).

- `lightx2v` on A14B: 4 steps at lightx2v's own timesteps, no CFG, two steps per expert,
  with a distillation LoRA in each expert.
- `dmd` on TI2V-5B: 3 steps at FastVideo's noise levels, re-noised from a seeded stream.
- A 14B model renders only at its training 16 fps.
- Wan2.1 conditions every segment of a chain on the original photo's CLIP embedding.
- LTX Condition starts each later segment from the previous one's last 9 frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import tiny
from i2v.domain.catalog import CatalogError
from i2v.domain.errors import EngineError
from i2v.engines.diffusers import sizing
from i2v.engines.diffusers.ltx import LTXRenderer
from i2v.engines.diffusers.options import EngineOptions, parse_options
from i2v.engines.diffusers.schedulers import RenoisingEuler
from i2v.engines.diffusers.wan import WanRenderer
from jobs import generation_request

# lightx2v's schedule: denoising_step_list [1000, 750, 500, 250] at shift 5 (LightX2V's
# step_distill scheduler), which UniPC at shift 5 with 4 steps reproduces
LIGHTX2V_TIMESTEPS = [999, 937, 833, 625]
DMD_TIMESTEPS = [1000.0, 757.0, 522.0]  # FastVideo dmd_denoising_steps for FastWan TI2V-5B


def _renderer(weights: dict[str, Path], name: str, **options: Any) -> Any:
    family = "ltx" if name.startswith("ltx") else "wan"
    parsed = parse_options(tiny.tiny_options(name, weights[name], **options), family)
    return LTXRenderer(parsed) if family == "ltx" else WanRenderer(parsed)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def _render(renderer: Any, **spec: Any) -> np.ndarray:
    fps = renderer.variant.fps if hasattr(renderer, "variant") else 24
    request = generation_request(_image(), **({"frames": 5, "fps": fps} | spec))
    return np.stack(list(renderer(request, lambda done, total, stage: None)))


class Calls:
    """Counts a module's forward calls and keeps the keyword arguments of each."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.kwargs: list[dict[str, Any]] = []
        self.handle = module.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.kwargs.append(kwargs)

    def __len__(self) -> int:
        return len(self.kwargs)


@pytest.fixture
def watch() -> Iterator[Any]:
    watchers: list[Calls] = []

    def start(module: torch.nn.Module) -> Calls:
        watchers.append(Calls(module))
        return watchers[-1]

    yield start
    for calls in watchers:
        calls.handle.remove()


def test_lightx2v_samples_a14b_in_four_steps_without_cfg_two_per_expert(
    weights: dict[str, Path], tmp_path: Path, watch: Any
) -> None:
    high = tiny.build_tiny_lora(weights["wan-a14b"], tmp_path / "high.safetensors", seed=1)
    low = tiny.build_tiny_lora(weights["wan-a14b"], tmp_path / "low.safetensors", seed=2)
    loras = [{"path": high, "expert": "high"}, {"path": low, "expert": "low"}]
    # the tiny options' `steps = 2` would override the preset: a preset route sets none
    renderer = _renderer(weights, "wan-a14b", preset="lightx2v", loras=loras, steps=0)
    first, second = watch(renderer.pipe.transformer), watch(renderer.pipe.transformer_2)

    _render(renderer)

    pipe = renderer.pipe
    assert [round(float(t)) for t in pipe.scheduler.timesteps] == LIGHTX2V_TIMESTEPS
    assert pipe.scheduler.config.flow_shift == 5.0
    assert (pipe.guidance_scale, pipe._guidance_scale_2) == (1.0, 1.0)
    assert not pipe.do_classifier_free_guidance  # one forward per step
    # boundary 0.9: t >= 900 on the high-noise expert, the rest on the low-noise one
    assert (len(first), len(second)) == (2, 2)
    assert set(renderer.adapters.loaded) == {(high, "transformer"), (low, "transformer_2")}
    assert "preset lightx2v" in renderer.description


def test_a_request_may_still_ask_for_more_steps_and_cfg_under_a_preset(
    weights: dict[str, Path], tmp_path: Path, watch: Any
) -> None:
    high = tiny.build_tiny_lora(weights["wan-a14b"], tmp_path / "high.safetensors")
    loras = [{"path": high, "expert": "both"}]
    renderer = _renderer(weights, "wan-a14b", preset="lightx2v", loras=loras, steps=0)
    experts = watch(renderer.pipe.transformer), watch(renderer.pipe.transformer_2)
    _render(renderer, num_inference_steps=3, guidance_scale=2.0)
    # CFG on both experts: two forwards per step; the request's scale is both experts'
    assert sum(len(calls) for calls in experts) == 6
    assert renderer.pipe._guidance_scale_2 == 2.0


def test_dmd_samples_ti2v_at_its_three_levels_with_seeded_renoise(
    weights: dict[str, Path], watch: Any
) -> None:
    renderer = _renderer(weights, "wan-ti2v", preset="dmd", steps=0)
    calls = watch(renderer.pipe.transformer)

    one = _render(renderer, seed=3)

    scheduler = renderer.pipe.scheduler
    assert isinstance(scheduler, RenoisingEuler)
    assert scheduler.config.stochastic_sampling
    assert [round(float(t)) for t in scheduler.timesteps] == DMD_TIMESTEPS
    assert len(calls) == 3  # no CFG
    # the re-noise is drawn from the seed: same seed, same video; another seed, another
    assert np.array_equal(_render(renderer, seed=3), one)
    assert not np.array_equal(_render(renderer, seed=4), one)
    with pytest.raises(EngineError, match=r"flow_shift: the dmd preset samples at the fixed"):
        _render(renderer, flow_shift=3.0)


def test_a_preset_refuses_weights_of_another_family(weights: dict[str, Path]) -> None:
    # weights here when the catalog loads: refused then
    with pytest.raises(CatalogError, match=r"preset: 'dmd' is for .* is Wan2\.2 I2V-A14B"):
        _renderer(weights, "wan-a14b", preset="dmd", steps=0)
    # weights that arrived later: refused when the child loads them
    late = EngineOptions(weights=str(weights["wan-a14b"]), preset="dmd")
    with pytest.raises(EngineError, match=r"preset: 'dmd' is for .* is Wan2\.2 I2V-A14B"):
        WanRenderer(late)


def test_a_14b_model_renders_only_at_its_training_fps(weights: dict[str, Path]) -> None:
    renderer = _renderer(weights, "wan-i2v")
    assert renderer.variant.fps == 16
    with pytest.raises(EngineError) as refused:
        _render(renderer, fps=24)
    assert "fps: Wan2.1 I2V-14B was trained at 16 fps" in refused.value.message
    assert "frames = [81, 161]" in refused.value.message
    assert len(_render(renderer, fps=16)) == 5


def test_wan21_keeps_the_photos_clip_embedding_on_every_segment(
    weights: dict[str, Path], watch: Any
) -> None:
    renderer = _renderer(weights, "wan-i2v", max_frames_per_segment=5)
    encoder, transformer = watch(renderer.pipe.image_encoder), watch(renderer.pipe.transformer)

    frames = _render(renderer, frames=9)  # two 5-frame segments

    assert len(frames) == 9
    assert len(encoder) == 1  # the photo, once: not each segment's first frame
    embeddings = [call["encoder_hidden_states_image"] for call in transformer.kwargs]
    assert len(embeddings) == 2 * 2 * 2  # 2 segments x 2 steps x (cond + uncond)
    assert all(torch.equal(e, embeddings[0]) for e in embeddings)
    height, width = frames.shape[1:3]  # the native size the photo was fitted to
    photo = Image.fromarray(sizing.fit(_image(), width, height))
    embedded = renderer.pipe.encode_image(photo, renderer.loaded.device)
    assert torch.allclose(embedded.to(embeddings[0].dtype), embeddings[0])
    assert renderer.pipe.image_anchor is None  # the pin ends with the render


def test_ltx_condition_starts_later_segments_from_the_last_nine_frames(
    weights: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    renderer = _renderer(weights, "ltx-condition", max_frames_per_segment=17)
    calls: list[dict[str, Any]] = []
    outputs: list[np.ndarray] = []
    pipeline_class = type(renderer.pipe)
    original = pipeline_class.__call__

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        result = original(self, *args, **kwargs)
        outputs.append(result.frames[0])
        return result

    monkeypatch.setattr(pipeline_class, "__call__", spy)
    frames = _render(renderer, frames=25)

    # 25 frames, 17 per call, 9 shared: 17 + (17 - 9) = 25
    assert [call["num_frames"] for call in calls] == [17, 17]
    assert len(frames) == 25
    first, second = (call["conditions"][0] for call in calls)
    assert first.image is not None
    assert first.video is None
    assert second.video is not None
    assert len(second.video) == 9
    previous_tail = (np.clip(outputs[0][-9:], 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(np.stack([np.asarray(im) for im in second.video]), previous_tail)
    # the shared frames are delivered once: the chain continues with the second call's 10th
    second_new = (np.clip(outputs[1][9:], 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(frames[17:], second_new)


def test_wan_renders_a_token_grid_its_gpus_split_evenly(weights: dict[str, Path]) -> None:
    # the tiny TI2V's 32x32 area at 64x48 is one cell: two GPUs could not split it
    options = tiny.tiny_options("wan-ti2v", weights["wan-ti2v"])
    one = WanRenderer(EngineOptions(**options))
    two = WanRenderer(EngineOptions(**options, gpus=(0, 1)))
    assert _render(one).shape[1:3] == (32, 32)
    height, width = _render(two).shape[1:3]
    assert (height // 32) * (width // 32) % 2 == 0
