"""The tiny pipelines against the real checkpoints' configs (data in `real_shapes.py`).

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
from pathlib import Path
from typing import Any

import pytest

from real_shapes import REAL, Real, configs


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


def test_recorded_real_sizes_hold_the_same_relations(real: Real) -> None:
    """The real sizes (which bench/model_memory.py builds) agree with each other as the
    tiny ones must: a typo in a width fails here."""
    found = configs(real)
    for name in real.relations:
        RELATIONS[name](found)


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
