"""Each model's official defaults, on the real-shaped tiny pipelines: the flow shift,
the dtypes, the negative prompt and TI2V-5B's one native size.

The renderers run in this process (no child): the test reads the pipeline they drive.
The knobs resolve as every knob does: the request's, else the route's, else the model's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.catalog import CatalogError
from i2v.domain.errors import EngineError
from i2v.domain.job import JobSpec
from i2v.engines.diffusers import sizing
from i2v.engines.diffusers.ltx import LTXRenderer
from i2v.engines.diffusers.options import parse_options
from i2v.engines.diffusers.wan import WanRenderer
from jobs import generation_request, job_spec

WAN_14B = ("wan-a14b", "wan-i2v", "wan-flf2v")
# the official negative prompt (Wan2.2 shared_config.py = Wan2.1), its ends
WAN_NEGATIVE_START = "色调艳丽，过曝，静态，细节模糊不清"
WAN_NEGATIVE_END = "背景人很多，倒着走"


def _renderer(weights: dict[str, Path], name: str, **options: Any) -> Any:
    family = "ltx" if name.startswith("ltx") else "wan"
    values = {
        "weights": str(weights[name]),
        "steps": 2,
        "max_sequence_length": 16,
        "max_area": 16 * 16 if name in WAN_14B else 32 * 32,
    } | options
    parsed = parse_options(values, family)
    return LTXRenderer(parsed) if family == "ltx" else WanRenderer(parsed)


Renderers = Callable[..., Any]


@pytest.fixture(scope="module")
def renderers(weights: dict[str, Path]) -> Renderers:
    """renderers(name, **options): one loaded renderer per shape and options, shared by
    this module's tests (each test resolves its knobs afresh, so sharing is safe)."""
    loaded: dict[tuple[str, str], Any] = {}

    def get(name: str, **options: Any) -> Any:
        key = (name, repr(sorted(options.items())))
        if key not in loaded:
            loaded[key] = _renderer(weights, name, **options)
        return loaded[key]

    return get


def _render(renderer: Any, name: str = "", **spec: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    last = image[::-1].copy() if name == "wan-flf2v" else None
    # 5 frames (2 latent frames) keep the VAE, the bulk of a tiny render, cheap; LTX's
    # 8k+1 rule renders 9 and cuts
    # Wan's 14B models play only at their training 16 fps
    fps = renderer.variant.fps if hasattr(renderer, "variant") else 24
    request = generation_request(image, last, **({"frames": 5, "fps": fps} | spec))
    return list(renderer(request, lambda done, total, stage: None))


def _timesteps(scheduler: Any, flow_shift: float, steps: int = 2) -> list[float]:
    """The timesteps a fresh scheduler of the same config samples at `flow_shift`."""
    fresh = type(scheduler).from_config(scheduler.config, flow_shift=flow_shift)
    fresh.set_timesteps(steps)
    return [float(t) for t in fresh.timesteps]


@pytest.mark.parametrize(
    ("name", "options", "shift"),
    [
        ("wan-ti2v", {}, 5.0),
        ("wan-a14b", {}, 5.0),  # the Hub's scheduler config says 3.0
        ("wan-i2v", {}, 3.0),  # a 480p request
        ("wan-i2v", {"resolution": "720p"}, 5.0),
        ("wan-flf2v", {}, 16.0),
    ],
)
def test_each_wan_model_samples_at_its_official_flow_shift(
    renderers: Renderers, name: str, options: dict[str, Any], shift: float
) -> None:
    renderer = renderers(name, **options)
    _render(renderer, name)

    scheduler = renderer.pipe.scheduler
    assert scheduler.config.flow_shift == shift
    # the pipeline sampled with it: its last schedule is that shift's
    assert [float(t) for t in scheduler.timesteps] == _timesteps(scheduler, shift)


def test_flow_shift_comes_from_the_request_then_the_route_then_the_model(
    weights: dict[str, Path],
) -> None:
    route = _renderer(weights, "wan-a14b", flow_shift=6.0)
    _render(route)
    assert route.pipe.scheduler.config.flow_shift == 6.0

    _render(route, flow_shift=7.0)
    seven = route.pipe.scheduler
    assert seven.config.flow_shift == 7.0
    # built once per value: the next job at 7 reuses it, the route's value comes back
    _render(route, flow_shift=7.0)
    assert route.pipe.scheduler is seven
    _render(route)
    assert route.pipe.scheduler.config.flow_shift == 6.0
    assert route.schedulers.get(7.0) is seven


def test_flow_shift_is_refused_where_there_is_none(renderers: Renderers) -> None:
    with pytest.raises(CatalogError, match=r"options\.flow_shift: only the wan engine"):
        parse_options({"weights": "a/b", "flow_shift": 5}, "ltx")
    with pytest.raises(CatalogError, match=r"options\.flow_shift: must be 0"):
        parse_options({"weights": "a/b", "flow_shift": -1}, "wan")
    ltx = renderers("ltx")
    with pytest.raises(EngineError, match=r"flow_shift: this model has no flow shift"):
        _render(ltx, flow_shift=5.0)


def test_the_job_spec_carries_flow_shift() -> None:
    spec = job_spec(flow_shift=5.0)
    assert JobSpec.from_json(spec.to_json()).flow_shift == 5.0
    older = {k: v for k, v in job_spec().to_json().items() if k != "flow_shift"}
    assert JobSpec.from_json(older).flow_shift is None


@pytest.mark.parametrize("name", ["wan-ti2v", "wan-i2v"])
def test_wan_runs_vae_and_clip_in_float32_beside_a_bf16_transformer(
    weights: dict[str, Path], name: str
) -> None:
    import torch

    renderer = _renderer(weights, name, dtype="bfloat16")
    frames = _render(renderer, name)

    pipe = renderer.pipe
    assert pipe.transformer.dtype == torch.bfloat16
    assert pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32
    if name == "wan-i2v":
        assert pipe.image_encoder.dtype == torch.float32
    assert "(bfloat16; vae float32" in renderer.description
    # bf16 latents decode through the fp32 VAE (the pipeline casts them)
    assert len(frames) == 5
    assert frames[0].dtype == np.uint8


def test_ltx_keeps_its_vae_in_the_pipeline_dtype(weights: dict[str, Path]) -> None:
    import torch

    # LTX's pipelines hand the VAE latents and images in the transformer's dtype, and
    # LTX's docs run the VAE in bf16; a float32 VAE would fail on the first encode
    renderer = _renderer(weights, "ltx", dtype="bfloat16")
    assert len(_render(renderer)) == 5
    assert renderer.pipe.vae.dtype == torch.bfloat16


def _spy_negative_prompts(renderer: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    encode_prompt = renderer.pipe.encode_prompt

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["negative_prompt"])
        return encode_prompt(*args, **kwargs)

    monkeypatch.setattr(renderer.pipe, "encode_prompt", spy)
    return seen


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("wan-ti2v", ""),
        ("wan-a14b", ""),
        ("wan-i2v", "镜头晃动，"),
        ("wan-flf2v", "镜头切换，镜头晃动，"),
    ],
)
def test_wan_models_use_their_official_negative_prompt(
    renderers: Renderers, monkeypatch: pytest.MonkeyPatch, name: str, prefix: str
) -> None:
    renderer = renderers(name)
    seen = _spy_negative_prompts(renderer, monkeypatch)

    _render(renderer, name)
    _render(renderer, name, negative_prompt="blurry")

    assert seen[0].startswith(prefix + WAN_NEGATIVE_START)
    assert seen[0].endswith(WAN_NEGATIVE_END)
    assert seen[1] == "blurry"  # the request's own wins


def test_ltx_uses_its_negative_prompt_unless_the_route_or_request_gives_one(
    renderers: Renderers, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = renderers("ltx")
    route = renderers("ltx", negative_prompt="static")
    seen_model = _spy_negative_prompts(model, monkeypatch)
    seen_route = _spy_negative_prompts(route, monkeypatch)

    _render(model)
    _render(route)
    _render(route, negative_prompt="blurry")

    assert seen_model == ["worst quality, inconsistent motion, blurry, jittery, distorted"]
    assert seen_route == ["static", "blurry"]


def test_ti2v_has_only_its_704p_tier() -> None:
    area = sizing.WAN_TI2V_AREAS["720p"]
    assert set(sizing.WAN_TI2V_AREAS) == {"720p"}
    assert sizing.native_size(1280, 720, area, 32) == (1280, 704)
    assert sizing.native_size(720, 1280, area, 32) == (704, 1280)
    assert sizing.native_size(854, 480, area, 32) == (1280, 704)  # a 480p request
    assert sizing.model_tier("480p", sizing.WAN_TI2V_AREAS) == "720p"
    assert sizing.model_tier("480p", sizing.WAN_14B_AREAS) == "480p"


def test_ti2v_renders_a_480p_request_at_704p_and_says_so(
    renderers: Renderers, weights: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    renderer = renderers("wan-ti2v")
    with caplog.at_level(logging.INFO, logger="i2v.engines.diffusers"):
        frames = _render(renderer, width=64, height=48)  # short side <= 480: the 480p tier

    assert len(frames) == 5
    assert "Wan2.2 TI2V-5B has no 480p tier: rendering at its native" in caplog.text
    assert renderer.pipe.scheduler.config.flow_shift == 5.0  # the 720p tier's
    with pytest.raises(EngineError, match=r"resolution: Wan2\.2 TI2V-5B has no 480p tier"):
        _renderer(weights, "wan-ti2v", resolution="480p")


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("wan-ti2v", "Wan2.2 TI2V-5B: WanImageToVideoPipeline"),  # saved as WanPipeline
        ("wan-a14b", "Wan2.2 I2V-A14B: "),
        ("wan-i2v", "Wan2.1 I2V-14B: "),
        ("wan-flf2v", "Wan2.1 FLF2V-14B: "),
        ("ltx", "LTX-Video: LTXImageToVideoPipeline"),  # saved as LTXPipeline
        ("ltx-condition", "LTX-Video: LTXConditionPipeline"),  # `auto` follows the folder
    ],
)
def test_each_real_shaped_folder_loads_as_its_model(
    renderers: Renderers, name: str, model: str
) -> None:
    assert renderers(name).description.startswith(model)
