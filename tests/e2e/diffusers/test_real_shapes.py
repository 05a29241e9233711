"""The tiny pipelines against the real checkpoints' configs, recorded here as data.

Each real Hub repo (values from reference/real-model-configs.md: the diffusers
converters that wrote those repos, the models' own configs and docs) names the tiny
shape standing for it. What a loader or a pipeline branches on must match: the
pipeline class in `model_index.json`, which components exist and which are null,
the pipeline's config (`expand_timesteps`, `boundary_ratio`), the scheduler class and
every key of its config, the transformer's and VAE's non-size keys, and the channel
relations between them. Sizes (layers, widths, heads) differ on purpose.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Real:
    """One Hub repo's files, minus sizes."""

    repo: str
    tiny: str  # the tiny.BUILDERS shape that stands for it
    class_name: str  # model_index.json `_class_name`
    components: Mapping[str, str | None]  # name -> class; None: null or absent
    index: Mapping[str, Any]  # the pipeline's own config keys
    scheduler: Mapping[str, Any]  # every key that differs from the class's default
    transformer: Mapping[str, Any]  # keys that are the same at every size
    vae: Mapping[str, Any]
    relations: tuple[str, ...] = field(default=())  # named checks, see RELATIONS


WAN_COMPONENTS = {
    "tokenizer": "T5TokenizerFast",
    "text_encoder": "UMT5EncoderModel",
    "vae": "AutoencoderKLWan",
    "scheduler": "UniPCMultistepScheduler",
    "transformer": "WanTransformer3DModel",
}
NO_CLIP = {"image_encoder": None, "image_processor": None}
CLIP = {
    "image_encoder": "CLIPVisionModelWithProjection",
    "image_processor": "CLIPImageProcessor",
}
WAN_TRANSFORMER = {
    "patch_size": [1, 2, 2],
    "freq_dim": 256,
    "qk_norm": "rms_norm_across_heads",
    "cross_attn_norm": True,
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
WAN21_VAE = {
    "z_dim": 16,
    "is_residual": False,
    "in_channels": 3,
    "out_channels": 3,
    "patch_size": None,
    "scale_factor_spatial": 8,
    "scale_factor_temporal": 4,
    "temperal_downsample": [False, True, True],
    "attn_scales": [],
}
WAN22_VAE = WAN21_VAE | {
    "z_dim": 48,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_spatial": 16,
}


def _unipc(flow_shift: float) -> dict[str, Any]:
    return {
        "_class_name": "UniPCMultistepScheduler",
        "prediction_type": "flow_prediction",
        "use_flow_sigmas": True,
        "num_train_timesteps": 1000,
        "flow_shift": flow_shift,
    }


def _wan21(repo: str, tiny: str, flow_shift: float, *, flf2v: bool) -> Real:
    return Real(
        repo=repo,
        tiny=tiny,
        class_name="WanImageToVideoPipeline",
        components=WAN_COMPONENTS | CLIP | {"transformer_2": None},
        # written before Wan 2.2: both keys absent, so the pipeline's defaults
        index={"expand_timesteps": False, "boundary_ratio": None},
        scheduler=_unipc(flow_shift),
        transformer=WAN_TRANSFORMER,
        vae=WAN21_VAE,
        relations=("wan-i2v-channels", "wan-clip") + (("wan-flf2v-tokens",) if flf2v else ()),
    )


LTX_COMPONENTS = {
    "tokenizer": "T5Tokenizer",
    "text_encoder": "T5EncoderModel",
    "transformer": "LTXVideoTransformer3DModel",
    "vae": "AutoencoderKLLTXVideo",
    "scheduler": "FlowMatchEulerDiscreteScheduler",
}
LTX_SCHEDULER = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 1.0}
LTX_TRANSFORMER = {
    "patch_size": 1,
    "patch_size_t": 1,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "attention_bias": True,
    "attention_out_bias": True,
}
LTX_VAE = {  # 0.9.5 = 0.9.7
    "in_channels": 3,
    "out_channels": 3,
    "patch_size": 4,
    "patch_size_t": 1,
    "down_block_types": ["LTXVideo095DownBlock3D"] * 4,
    "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
    "spatio_temporal_scaling": [True] * 4,
    "decoder_spatio_temporal_scaling": [True] * 3,
    "decoder_inject_noise": [False] * 4,
    "upsample_residual": [True] * 3,
    "upsample_factor": [2] * 3,
    "timestep_conditioning": True,
    "encoder_causal": True,
    "decoder_causal": False,
    "scaling_factor": 1.0,
    # explicit: the class's formula would give 64 / 16 for these down blocks
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}

REAL = (
    Real(
        repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        tiny="wan-ti2v",
        class_name="WanPipeline",
        components=WAN_COMPONENTS | NO_CLIP | {"transformer_2": None},
        index={"expand_timesteps": True, "boundary_ratio": None},
        scheduler=_unipc(5.0),
        transformer=WAN_TRANSFORMER | {"image_dim": None, "added_kv_proj_dim": None},
        vae=WAN22_VAE,
        relations=("wan-ti2v-channels",),
    ),
    Real(
        repo="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
        tiny="wan-a14b",
        class_name="WanImageToVideoPipeline",
        components=WAN_COMPONENTS | NO_CLIP | {"transformer_2": "WanTransformer3DModel"},
        index={"expand_timesteps": False, "boundary_ratio": 0.9},
        scheduler=_unipc(3.0),  # the converter's; the official shift is 5.0
        transformer=WAN_TRANSFORMER
        | {"image_dim": None, "added_kv_proj_dim": None, "pos_embed_seq_len": None},
        vae=WAN21_VAE,
        relations=("wan-i2v-channels", "wan-two-experts"),
    ),
    _wan21("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "wan-i2v", 3.0, flf2v=False),
    _wan21("Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", "wan-i2v", 3.0, flf2v=False),
    _wan21("Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", "wan-flf2v", 16.0, flf2v=True),
    Real(
        repo="Lightricks/LTX-Video-0.9.5",
        tiny="ltx",
        class_name="LTXPipeline",
        components=LTX_COMPONENTS,
        index={},
        scheduler=LTX_SCHEDULER,
        transformer=LTX_TRANSFORMER,
        vae=LTX_VAE,
        relations=("ltx-channels",),
    ),
    Real(
        repo="Lightricks/LTX-Video-0.9.7-dev",
        tiny="ltx-condition",
        class_name="LTXConditionPipeline",
        components=LTX_COMPONENTS,
        index={},
        scheduler=LTX_SCHEDULER,
        transformer=LTX_TRANSFORMER,
        vae=LTX_VAE,
        relations=("ltx-channels",),
    ),
)


def _read(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


def _components(index: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        name: value[1]
        for name, value in index.items()
        if not name.startswith("_") and isinstance(value, list) and len(value) == 2
    }


@pytest.fixture(params=REAL, ids=[real.repo for real in REAL])
def real(request: pytest.FixtureRequest) -> Real:
    value: Real = request.param
    return value


def test_model_index_names_the_real_classes_and_null_components(
    real: Real, weights: dict[str, Path]
) -> None:
    index = _read(weights[real.tiny], "model_index.json")

    assert index["_class_name"] == real.class_name
    found = _components(index)
    # absent and null load alike (None); everything the real repo has, the tiny one has
    assert {name: found.get(name) for name in real.components} == dict(real.components)
    assert {name for name, cls in found.items() if cls} == {
        name for name, cls in real.components.items() if cls
    }
    for key, value in real.index.items():
        assert index[key] == value, key


def test_scheduler_config_matches_key_for_key(real: Real, weights: dict[str, Path]) -> None:
    import diffusers

    config = _read(weights[real.tiny], "scheduler/scheduler_config.json")
    scheduler_class = getattr(diffusers, real.scheduler["_class_name"])
    defaults = dict(scheduler_class().config)

    assert config["_class_name"] == real.scheduler["_class_name"]
    for key, value in real.scheduler.items():
        assert config[key] == value, key
    # every other key at the class's default, as the converter left it
    differing = {
        key
        for key, value in config.items()
        if not key.startswith("_") and key in defaults and _normal(defaults[key]) != value
    }
    assert differing <= set(real.scheduler), sorted(differing - set(real.scheduler))


def test_transformer_and_vae_keys_match(real: Real, weights: dict[str, Path]) -> None:
    folder = weights[real.tiny]
    transformer = _read(folder, "transformer/config.json")
    vae = _read(folder, "vae/config.json")

    for key, value in real.transformer.items():
        assert _normal(transformer.get(key)) == value, f"transformer.{key}"
    for key, value in real.vae.items():
        assert _normal(vae.get(key)) == value, f"vae.{key}"


def test_channel_relations_hold(real: Real, weights: dict[str, Path]) -> None:
    folder = weights[real.tiny]
    configs = {
        name: _read(folder, f"{name}/config.json")
        for name, cls in real.components.items()
        if cls and (folder / name / "config.json").is_file()
    }
    assert real.relations
    for name in real.relations:
        RELATIONS[name](configs)


def _wan_text(c: Mapping[str, dict[str, Any]]) -> None:
    assert c["transformer"]["text_dim"] == c["text_encoder"]["d_model"]


def _wan_ti2v_channels(c: Mapping[str, dict[str, Any]]) -> None:
    # the first frame's latents are blended into the noise (expand_timesteps): in = out = z
    z = c["vae"]["z_dim"]
    assert c["transformer"]["in_channels"] == c["transformer"]["out_channels"] == z
    assert c["vae"]["in_channels"] == 3 * c["vae"]["patch_size"] ** 2
    assert c["vae"]["scale_factor_spatial"] == 8 * c["vae"]["patch_size"]
    assert len(c["vae"]["latents_mean"]) == len(c["vae"]["latents_std"]) == z
    _wan_text(c)


def _wan_i2v_channels(c: Mapping[str, dict[str, Any]]) -> None:
    # 16 noise + 4 mask + 16 condition latents in, the noise prediction out
    z = c["vae"]["z_dim"]
    assert c["transformer"]["in_channels"] == 2 * z + 4
    assert c["transformer"]["out_channels"] == z
    _wan_text(c)


def _wan_two_experts(c: Mapping[str, dict[str, Any]]) -> None:
    strip = {"_name_or_path", "_diffusers_version"}
    first = {k: v for k, v in c["transformer"].items() if k not in strip}
    second = {k: v for k, v in c["transformer_2"].items() if k not in strip}
    assert first == second


def _wan_clip(c: Mapping[str, dict[str, Any]]) -> None:
    # the pipeline reads hidden_states[-2]: at least two layers
    clip = c["image_encoder"]
    assert clip["num_hidden_layers"] >= 2
    transformer = c["transformer"]
    assert transformer["image_dim"] == clip["hidden_size"]
    heads = transformer["num_attention_heads"] * transformer["attention_head_dim"]
    assert transformer["added_kv_proj_dim"] == heads


def _wan_flf2v_tokens(c: Mapping[str, dict[str, Any]]) -> None:
    # two images' CLIP tokens (patches + class token each)
    clip = c["image_encoder"]
    tokens = (clip["image_size"] // clip["patch_size"]) ** 2 + 1
    assert c["transformer"]["pos_embed_seq_len"] == 2 * tokens


def _ltx_channels(c: Mapping[str, dict[str, Any]]) -> None:
    latent = c["vae"]["latent_channels"]
    assert c["transformer"]["in_channels"] == c["transformer"]["out_channels"] == latent
    assert c["transformer"]["caption_channels"] == c["text_encoder"]["d_model"]
    vae = c["vae"]
    assert len(vae["block_out_channels"]) == len(vae["layers_per_block"]) == 5
    assert len(vae["decoder_block_out_channels"]) == 3
    assert len(vae["decoder_layers_per_block"]) == 4
    # widths double per decoder block, as in the real VAE (no channel-changing up block)
    widths = vae["decoder_block_out_channels"]
    assert all(b == 2 * a for a, b in itertools.pairwise(widths))


RELATIONS = {
    "wan-ti2v-channels": _wan_ti2v_channels,
    "wan-i2v-channels": _wan_i2v_channels,
    "wan-two-experts": _wan_two_experts,
    "wan-clip": _wan_clip,
    "wan-flf2v-tokens": _wan_flf2v_tokens,
    "ltx-channels": _ltx_channels,
}


def _normal(value: Any) -> Any:
    """Config values as JSON has them: tuples are lists."""
    if isinstance(value, tuple):
        return [_normal(v) for v in value]
    return value
