"""LoRAs on the real-shaped tiny pipelines: a LoRA changes the render, scale 0 is no
LoRA, one renderer swaps LoRAs between renders without reloading anything, and the
A14B low-noise expert's LoRA goes into transformer_2.

The renderers run in this process (no child), as in test_model_defaults.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.catalog import CatalogError
from i2v.domain.errors import EngineError
from i2v.domain.job import Lora
from i2v.engines.diffusers import create_wan_engine
from i2v.engines.diffusers.ltx import LTXRenderer
from i2v.engines.diffusers.options import parse_options
from i2v.engines.diffusers.wan import WanRenderer
from jobs import generation_request
from tiny import lora_file


def _renderer(weights: dict[str, Path], name: str, **options: Any) -> Any:
    family = "ltx" if name.startswith("ltx") else "wan"
    values = {
        "weights": str(weights[name]),
        "steps": 2,
        "max_sequence_length": 16,
        "max_area": 16 * 16 if name == "wan-a14b" else 32 * 32,
    } | options
    parsed = parse_options(values, family)
    return LTXRenderer(parsed) if family == "ltx" else WanRenderer(parsed)


def _render(renderer: Any, *loras: Lora) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    fps = renderer.variant.fps if hasattr(renderer, "variant") else 24  # Wan 14B: 16
    request = generation_request(image, None, frames=5, fps=fps, loras=tuple(loras))
    return np.stack(list(renderer(request, lambda done, total, stage: None)))


@pytest.fixture(scope="module")
def lora_path(weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    base = _renderer(weights, "wan-ti2v")
    folder = tmp_path_factory.mktemp("loras")
    return lora_file(base.pipe.transformer, folder / "tiny-style.safetensors")


def test_request_lora_renders_swaps_and_is_loaded_once(
    weights: dict[str, Path], lora_path: str
) -> None:
    renderer = _renderer(weights, "wan-ti2v", lora_allowlist=[lora_path])
    transformer = renderer.pipe.transformer
    plain = _render(renderer)
    styled = _render(renderer, Lora(lora_path, 1.0))
    assert not np.array_equal(plain, styled)
    # scale 0 is no LoRA; without one the LoRA layers are off again: the same render
    assert np.array_equal(_render(renderer, Lora(lora_path, 0.0)), plain)
    assert np.array_equal(_render(renderer), plain)
    # and on again: the same styled render, from the adapter loaded the first time
    assert np.array_equal(_render(renderer, Lora(lora_path, 1.0)), styled)
    assert renderer.adapters.loaded == {(lora_path, "transformer"): "lora_0"}
    assert set(transformer.peft_config) == {"lora_0"}
    assert renderer.pipe.transformer is transformer  # the base model was never reloaded


def test_request_lora_outside_the_allowlist_is_refused(
    weights: dict[str, Path], lora_path: str
) -> None:
    renderer = _renderer(weights, "wan-ti2v")
    with pytest.raises(EngineError, match=r"loras\[0\]\.path.*lora_allowlist"):
        _render(renderer, Lora(lora_path, 1.0))


def test_route_loras_apply_to_every_request(weights: dict[str, Path], lora_path: str) -> None:
    plain = _render(_renderer(weights, "wan-ti2v"))
    routed = _renderer(weights, "wan-ti2v", loras=[{"path": lora_path, "scale": 1.0}])
    first = _render(routed)
    assert not np.array_equal(first, plain)
    assert np.array_equal(_render(routed), first)


def test_a14b_low_expert_goes_into_transformer_2(weights: dict[str, Path], tmp_path: Path) -> None:
    probe = _renderer(weights, "wan-a14b")
    low = lora_file(probe.pipe.transformer_2, tmp_path / "low.safetensors", seed=1)
    renderer = _renderer(weights, "wan-a14b", loras=[{"path": low, "expert": "low"}])
    # the low-noise expert runs the later steps: its LoRA changes the render
    assert not np.array_equal(_render(renderer), _render(probe))
    assert renderer.adapters.loaded == {(low, "transformer_2"): "lora_0"}
    assert set(renderer.pipe.transformer_2.peft_config) == {"lora_0"}
    assert not getattr(renderer.pipe.transformer, "peft_config", None)


@pytest.mark.parametrize("name", ["ltx", "ltx-condition"])
def test_ltx_takes_the_same_loras(weights: dict[str, Path], tmp_path: Path, name: str) -> None:
    probe = _renderer(weights, name)
    path = lora_file(probe.pipe.transformer, tmp_path / "ltx.safetensors", seed=2)
    renderer = _renderer(weights, name, lora_allowlist=[path])
    plain = _render(renderer)
    assert not np.array_equal(_render(renderer, Lora(path, 1.0)), plain)
    assert np.array_equal(_render(renderer), plain)
    with pytest.raises(CatalogError, match="low-noise expert"):
        _renderer(weights, name, loras=[{"path": path, "expert": "low"}])


def test_warm_child_swaps_loras_without_restarting(
    weights: dict[str, Path], lora_path: str
) -> None:
    """Through the engine's child process: with, without and with again, one child."""
    engine = create_wan_engine(
        {
            "weights": str(weights["wan-ti2v"]),
            "steps": 2,
            "max_sequence_length": 16,
            "max_area": 32 * 32,
            "lora_allowlist": [lora_path],
        }
    )
    try:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)

        def render(*loras: Lora) -> np.ndarray:
            request = generation_request(image, None, frames=5, loras=tuple(loras))
            return np.stack(list(engine.render(request, lambda done, total, stage: None)))

        styled = render(Lora(lora_path, 1.0))
        pid = engine.pid
        plain = render()
        assert not np.array_equal(styled, plain)
        assert np.array_equal(render(Lora(lora_path, 1.0)), styled)
        assert engine.pid == pid is not None  # one warm child throughout
        with pytest.raises(EngineError, match="lora_allowlist"):
            render(Lora("/elsewhere/other.safetensors", 1.0))
        assert np.array_equal(render(), plain)
        assert engine.pid == pid  # a refused LoRA does not cost the warm child
    finally:
        engine.close()
