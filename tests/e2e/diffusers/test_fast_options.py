"""The fast-tier options on tiny models: float8 weights, the TaylorSeer step cache, and
the refusals at catalog load for a speed option whose package is missing.

Pairs of speed options are covered in test_diffusers_speed_pairs.py.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.catalog import CatalogError
from i2v.domain.errors import EngineError
from i2v.engines.diffusers import options as engine_options
from i2v.engines.diffusers.options import EngineOptions, parse_options
from jobs import generation_request

TINY: dict[str, Any] = {"steps": 2, "max_sequence_length": 16, "max_area": 32 * 32}


def _render(renderer: Any) -> list[np.ndarray]:
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return list(renderer(generation_request(image), lambda done, total, stage: None))


def _ltx(weights: dict[str, Path], **options: Any) -> Any:
    from i2v.engines.diffusers.ltx import LTXRenderer

    return LTXRenderer(parse_options({"weights": str(weights["ltx"]), **TINY, **options}, "ltx"))


def test_layerwise_fp8_stores_the_transformer_in_float8_and_still_renders(
    weights: dict[str, Path],
) -> None:
    import torch

    from i2v.engines.diffusers.loading import module_bytes

    plain = _ltx(weights)
    fp8 = _ltx(weights, fp8="layerwise")
    transformer = fp8.pipe.transformer

    # float8 is 1 byte a weight against float32's 4 (a CPU's dtype)
    assert module_bytes(transformer) < module_bytes(plain.pipe.transformer) / 2
    assert transformer.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    # diffusers' skip patterns keep the precision-critical layers in the pipeline's dtype
    assert transformer.proj_in.weight.dtype == torch.float32
    assert transformer.proj_out.weight.dtype == torch.float32
    # only the transformer: the VAE and text encoder keep their dtype
    assert plain.pipe.vae.dtype == fp8.pipe.vae.dtype == torch.float32
    assert "fp8=layerwise" in fp8.description

    frames = _render(fp8)
    assert len(frames) == 9
    assert all(frame.shape == frames[0].shape and frame.dtype == np.uint8 for frame in frames)


def test_layerwise_fp8_goes_into_both_wan_a14b_experts(weights: dict[str, Path]) -> None:
    import torch
    from diffusers import WanImageToVideoPipeline

    from i2v.engines.diffusers import loading

    loaded = loading.load_pipeline(
        WanImageToVideoPipeline, EngineOptions(weights=str(weights["wan-a14b"]), fp8="layerwise")
    )
    for expert in (loaded.pipe.transformer, loaded.pipe.transformer_2):
        assert expert.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
        # the model still reports (and computes in) the pipeline's dtype
        assert expert.dtype == torch.float32


def _count_attention_calls(transformer: Any) -> list[int]:
    """Wraps every attention processor to count the attention computations actually run
    (a cached or predicted step returns without calling it)."""
    calls = [0]
    for block in transformer.transformer_blocks:
        for attn in (block.attn1, block.attn2):
            processor = attn.processor

            def counting(*args: Any, _processor: Any = processor, **kwargs: Any) -> Any:
                calls[0] += 1
                return _processor(*args, **kwargs)

            attn.processor = counting
    return calls


def test_taylorseer_cache_skips_attention_between_full_steps(weights: dict[str, Path]) -> None:
    plain = _ltx(weights, steps=8)
    cached = _ltx(weights, steps=8, taylorseer_cache=2)
    plain_calls = _count_attention_calls(plain.pipe.transformer)
    cached_calls = _count_attention_calls(cached.pipe.transformer)

    plain_frames = _render(plain)
    cached_frames = _render(cached)

    assert "taylorseer_cache=2" in cached.description
    assert len(cached_frames) == len(plain_frames) == 9
    # the first 3 steps run in full (the Taylor factors' warm-up), then about every other
    # one: 5 of 8 with diffusers 0.42
    assert 0 < cached_calls[0] <= plain_calls[0] * 5 // 8


class _Stop(Exception):
    pass


def test_reset_step_caches_forgets_a_stopped_render(weights: dict[str, Path]) -> None:
    """A render stopped mid-way (a cancel raises from the step callback) leaves the cache
    state behind; the next render must start from a clean one."""
    import PIL.Image

    from i2v.engines.diffusers import loading

    loaded = loading.load_pipeline(
        _ltx_pipeline_class(), EngineOptions(weights=str(weights["ltx"]), taylorseer_cache=2)
    )
    pipe = loaded.pipe
    calls = _count_attention_calls(pipe.transformer)
    image = PIL.Image.new("RGB", (32, 32))

    def run(stop_at: int = -1) -> int:
        def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: Any) -> Any:
            if step == stop_at:
                raise _Stop
            return kwargs

        before = calls[0]
        with contextlib.suppress(_Stop):
            pipe(
                image=image,
                prompt="a cat",
                height=32,
                width=32,
                num_frames=9,
                num_inference_steps=8,
                max_sequence_length=16,
                output_type="np",
                callback_on_step_end=on_step_end,
            )
        return calls[0] - before

    clean = run()
    run(stop_at=4)
    stale = run()  # no warm-up: it predicts from the stopped render's Taylor factors
    run(stop_at=4)
    loading.reset_step_caches(pipe)
    reset = run()

    assert stale < clean
    assert reset == clean


def _ltx_pipeline_class() -> Any:
    from diffusers import LTXImageToVideoPipeline

    return LTXImageToVideoPipeline


def test_compile_with_layerwise_fp8_really_fails_so_the_refusal_is_needed(
    weights: dict[str, Path],
) -> None:
    """As for compile + first_block_cache: dynamo refuses the casting hook on a CPU too,
    before any kernel is built. If a diffusers or torch upgrade makes it work, this
    fails: lift the refusal in options.py."""
    from i2v.engines.diffusers.ltx import LTXRenderer

    renderer = LTXRenderer(
        EngineOptions(weights=str(weights["ltx"]), compile=True, fp8="layerwise", **TINY)
    )
    with pytest.raises(Exception, match=r"torch\.nn\.Parameter"):
        _render(renderer)


def test_torchao_fp8_without_float8_matmuls_fails_before_the_weights_load(
    tmp_path: Path,
) -> None:
    from i2v.engines.diffusers import loading

    # an empty (unloadable) folder: the check must come first
    (tmp_path / "model_index.json").write_text("{}")
    options = EngineOptions(weights=str(tmp_path), device="cpu", fp8="torchao")
    with pytest.raises(EngineError, match=r"fp8: 'torchao' needs .*8\.9.* cpu has no CUDA"):
        loading.load_pipeline(object, options)


@pytest.mark.parametrize(
    ("options", "package"),
    [
        ({"attention_backend": "flash"}, "flash-attn>=2.6.3"),
        ({"attention_backend": "flash_varlen"}, "flash-attn>=2.6.3"),
        ({"attention_backend": "sage"}, "sageattention>=2.1.1"),
        ({"attention_backend": "_sage_qk_int8_pv_fp16_triton"}, "sageattention>=2.1.1"),
        ({"attention_backend": "flash_hub"}, "kernels>=0.12"),
        ({"attention_backend": "_flash_3"}, "flash_attn_interface>=0"),
        ({"fp8": "torchao"}, "torchao>=0.18"),
    ],
)
def test_a_speed_option_whose_package_is_missing_is_refused_at_catalog_load(
    options: dict[str, str], package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_options, "_installed_version", lambda name: None)
    [(option, value)] = options.items()
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": "org/model", **options}, "ltx")
    assert f"options.{option}: {value!r} needs the package {package}" in refused.value.message
    assert "not installed" in refused.value.message


def test_a_package_older_than_diffusers_accepts_is_refused_naming_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the registry's sageattention is 1.0.6, which diffusers 0.42 refuses at render time
    monkeypatch.setattr(engine_options, "_installed_version", lambda name: "1.0.6")
    with pytest.raises(CatalogError, match=r"sageattention>=2\.1\.1, which is 1\.0\.6 here"):
        parse_options({"weights": "org/model", "attention_backend": "sage"}, "ltx")


@pytest.mark.parametrize("version", ["2.1.1", "2.2.0rc1", "2.8.3.post2", "3.0.0+cu128", ""])
def test_a_new_enough_or_unversioned_package_is_accepted(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_options, "_installed_version", lambda name: version)
    parse_options({"weights": "org/model", "attention_backend": "sage"}, "ltx")


@pytest.mark.parametrize("backend", ["", "native", "_native_cudnn", "flex"])
def test_backends_built_into_torch_need_no_package(backend: str) -> None:
    parse_options({"weights": "org/model", "attention_backend": backend}, "ltx")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fp8": "fp16"}, r"fp8: must be one of \"\", layerwise, torchao, got 'fp16'"),
        ({"taylorseer_cache": -1}, r"taylorseer_cache: must be 0 \(off\) or a step interval"),
        ({"taylorseer_cache": 2.5}, r"taylorseer_cache: must be an integer"),
    ],
)
def test_bad_fast_option_values_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_options({"weights": "org/model", **options}, "ltx")


def test_torchao_fp8_with_loras_is_refused_at_catalog_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_options, "_installed_version", lambda name: "99.0")
    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"")
    for key, value in (("loras", [{"path": str(lora)}]), ("lora_allowlist", [str(lora)])):
        with pytest.raises(CatalogError, match=rf"fp8 = 'torchao' cannot be combined with {key}"):
            parse_options({"weights": "org/model", "fp8": "torchao", key: value}, "ltx")
        layerwise = {"weights": "org/model", "fp8": "layerwise", key: value}
        assert parse_options(layerwise, "ltx").fp8 == "layerwise"


def test_layerwise_fp8_takes_loras_in_the_compute_dtype(
    weights: dict[str, Path], tmp_path: Path
) -> None:
    """PEFT makes LoRA layers in their base layer's dtype, float8 here, which no matmul
    takes ("not implemented for Float8_e4m3fn"): the adapters lift them to the pipeline's
    dtype while the base weights stay float8."""
    import torch

    from i2v.domain.job import Lora
    from tiny import lora_file

    path = lora_file(_ltx(weights).pipe.transformer, tmp_path / "ltx.safetensors", seed=2)
    renderer = _ltx(weights, fp8="layerwise", lora_allowlist=[path])
    plain = np.stack(_render(renderer))
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    request = generation_request(image, loras=(Lora(path, 1.0),))
    styled = np.stack(list(renderer(request, lambda done, total, stage: None)))

    assert not np.array_equal(styled, plain)
    layer = renderer.pipe.transformer.transformer_blocks[0].attn1.to_q
    assert layer.base_layer.weight.dtype == torch.float8_e4m3fn
    assert layer.lora_A["lora_0"].weight.dtype == torch.float32
