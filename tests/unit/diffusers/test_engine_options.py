"""Route options the diffusers engines refuse when the catalog loads (pure: no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from i2v.domain.catalog import CatalogError
from i2v.engines.diffusers.options import parse_options
from i2v.engines.diffusers.weights import read_model_index


def _folder(tmp_path: Path, name: str, **components: Any) -> Path:
    """A weights folder holding only its model_index.json, as save_pretrained writes it."""
    folder = tmp_path / name
    folder.mkdir()
    index = {"_class_name": "WanImageToVideoPipeline", "_diffusers_version": "0.42.1"}
    index |= {"transformer": ["diffusers", "WanTransformer3DModel"]} | components
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_guidance_scale_2_is_refused_for_a_model_without_a_second_transformer(
    tmp_path: Path,
) -> None:
    ti2v = _folder(tmp_path, "ti2v", transformer_2=[None, None])
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": str(ti2v), "guidance_scale_2": 3.0}, "wan")
    assert "guidance_scale_2" in refused.value.message
    assert str(ti2v) in refused.value.message
    assert "transformer_2" in refused.value.message

    no_key = _folder(tmp_path, "wan21")  # older saves have no transformer_2 key at all
    with pytest.raises(CatalogError, match="guidance_scale_2"):
        parse_options({"weights": str(no_key), "guidance_scale_2": 3.0}, "wan")


def test_guidance_scale_2_is_kept_for_a14b_and_for_weights_not_here_yet(tmp_path: Path) -> None:
    a14b = _folder(tmp_path, "a14b", transformer_2=["diffusers", "WanTransformer3DModel"])
    assert (
        parse_options({"weights": str(a14b), "guidance_scale_2": 3.0}, "wan").guidance_scale_2
        == 3.0
    )
    # not downloaded yet: the child refuses it when it loads (see the e2e tests)
    absent = parse_options(
        {"weights": "org/not-here", "cache_dir": str(tmp_path), "guidance_scale_2": 3.0}, "wan"
    )
    assert absent.guidance_scale_2 == 3.0


def test_guidance_scale_2_is_refused_for_ltx_whatever_its_weights() -> None:
    with pytest.raises(CatalogError, match=r"guidance_scale_2.*ltx engine has one transformer"):
        parse_options({"weights": "org/ltx", "guidance_scale_2": 3.0}, "ltx")


def test_the_model_index_lists_only_components_that_were_saved(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "a", transformer_2=[None, None], image_encoder=[None, None])
    index = read_model_index(str(folder))
    assert index is not None
    assert index.class_name == "WanImageToVideoPipeline"
    assert index.has("transformer")
    assert not index.has("transformer_2")
    assert not index.has("image_encoder")
    assert not index.has("_diffusers_version")
    assert read_model_index(str(tmp_path / "missing")) is None


def test_the_distilled_preset_is_ltx_only_and_needs_the_condition_pipeline() -> None:
    assert parse_options({"weights": "org/ltx", "preset": "distilled"}, "ltx").preset == "distilled"
    with pytest.raises(CatalogError, match=r"preset: must be one of lightx2v, dmd for the wan"):
        parse_options({"weights": "org/wan", "preset": "distilled"}, "wan")
    with pytest.raises(CatalogError, match=r"preset: must be one of"):
        parse_options({"weights": "org/ltx", "preset": "turbo"}, "ltx")
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": "org/ltx", "preset": "distilled", "pipeline": "i2v"}, "ltx")
    assert "preset" in refused.value.message
    assert "pipeline" in refused.value.message


def test_cancel_silence_must_be_positive() -> None:
    assert parse_options({"weights": "org/w"}, "wan").cancel_silence_seconds == 300.0
    with pytest.raises(CatalogError, match="cancel_silence_seconds"):
        parse_options({"weights": "org/w", "cancel_silence_seconds": 0}, "wan")


def _wan_folder(tmp_path: Path, name: str, *, two_experts: bool, ti2v: bool) -> Path:
    folder = _folder(
        tmp_path,
        name,
        transformer_2=["diffusers", "WanTransformer3DModel"] if two_experts else [None, None],
    )
    if ti2v:
        index = json.loads((folder / "model_index.json").read_text())
        (folder / "model_index.json").write_text(json.dumps(index | {"expand_timesteps": True}))
    return folder


def test_the_lightx2v_preset_needs_a14b_weights_and_a_lora_on_each_expert(
    tmp_path: Path,
) -> None:
    a14b = _wan_folder(tmp_path, "a14b", two_experts=True, ti2v=False)
    high, low = tmp_path / "high.safetensors", tmp_path / "low.safetensors"
    high.write_bytes(b"x")
    low.write_bytes(b"x")
    loras = [{"path": str(high)}, {"path": str(low), "expert": "low"}]
    options = {"weights": str(a14b), "preset": "lightx2v", "loras": loras}
    assert parse_options(options, "wan").preset == "lightx2v"

    with pytest.raises(CatalogError, match=r"loras: preset 'lightx2v' needs .* low-noise expert"):
        parse_options(options | {"loras": loras[:1]}, "wan")
    with pytest.raises(CatalogError, match=r"needs .* high-noise expert"):
        parse_options(options | {"loras": []}, "wan")
    ti2v = _wan_folder(tmp_path, "ti2v", two_experts=False, ti2v=True)
    with pytest.raises(CatalogError) as refused:
        parse_options(options | {"weights": str(ti2v), "loras": loras[:1]}, "wan")
    # the weights are read before the LoRAs: the low LoRA has no expert to go into
    assert "preset" in refused.value.message or "transformer_2" in refused.value.message


def test_the_dmd_preset_is_for_ti2v_weights_only(tmp_path: Path) -> None:
    ti2v = _wan_folder(tmp_path, "ti2v", two_experts=False, ti2v=True)
    assert parse_options({"weights": str(ti2v), "preset": "dmd"}, "wan").preset == "dmd"
    a14b = _wan_folder(tmp_path, "a14b", two_experts=True, ti2v=False)
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": str(a14b), "preset": "dmd"}, "wan")
    assert "preset: 'dmd' is for FastWan2.2-TI2V-5B" in refused.value.message
    assert "Wan2.2 I2V-A14B" in refused.value.message
    # not downloaded yet: the child checks the family when it loads
    absent = {"weights": "org/not-here", "cache_dir": str(tmp_path), "preset": "dmd"}
    assert parse_options(absent, "wan").preset == "dmd"
    with pytest.raises(CatalogError, match=r"preset: must be one of distilled for the ltx"):
        parse_options({"weights": "org/ltx", "preset": "dmd"}, "ltx")


@pytest.mark.parametrize(("engine", "least"), [("wan", 5), ("ltx", 9)])
def test_a_segment_holds_at_least_one_latent_frame_more_than_the_first(
    engine: str, least: int
) -> None:
    assert parse_options({"weights": "o/w", "max_frames_per_segment": least}, engine)
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": "o/w", "max_frames_per_segment": least - 1}, engine)
    assert f"max_frames_per_segment: must be 0 (the model's) or at least {least}, got" in (
        refused.value.message
    )


def test_the_wan_family_is_read_from_positive_evidence_only(tmp_path: Path) -> None:
    from i2v.engines.diffusers import variants
    from model_configs import wan_config_folder

    def family(folder: Path) -> str | None:
        found = variants.read_variant(str(folder))
        return found.name if found else None

    assert family(wan_config_folder(tmp_path / "a", two_experts=False, ti2v=True)) == (
        "Wan2.2 TI2V-5B"
    )
    assert family(wan_config_folder(tmp_path / "b", two_experts=True, ti2v=False)) == (
        "Wan2.2 I2V-A14B"
    )
    assert family(wan_config_folder(tmp_path / "c", two_experts=False, ti2v=False)) == (
        "Wan2.1 I2V-14B"
    )
    # text-to-video (or a TI2V export without expand_timesteps): no family, not Wan2.1
    t2v = _folder(tmp_path, "t2v", transformer_2=[None, None], image_encoder=[None, None])
    assert family(t2v) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flow_shift": float("nan")}, r"flow_shift: must be a finite number, got nan"),
        ({"guidance_scale": float("inf")}, r"guidance_scale: must be a finite number, got inf"),
        ({"cancel_silence_seconds": float("inf")}, r"cancel_silence_seconds: must be a finite"),
        (
            {"loras": [{"path": "o/n/x.safetensors", "scale": float("nan")}]},
            r"scale: must be a fin",
        ),
    ],
)
def test_non_finite_numbers_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_options({"weights": "o/w"} | options, "wan")


def test_a_fixed_schedule_preset_refuses_another_step_count_or_a_shift(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"steps: preset 'dmd' samples at the 3 fixed levels"):
        parse_options({"weights": "o/w", "preset": "dmd", "steps": 4}, "wan")
    with pytest.raises(CatalogError, match=r"flow_shift: preset 'dmd' samples at fixed noise"):
        parse_options({"weights": "o/w", "preset": "dmd", "flow_shift": 5.0}, "wan")
    with pytest.raises(CatalogError, match=r"steps: preset 'distilled' samples at the 8"):
        parse_options({"weights": "o/l", "preset": "distilled", "steps": 30}, "ltx")
    assert parse_options({"weights": "o/l", "preset": "distilled", "steps": 8}, "ltx")


def test_ltx_condition_segments_hold_the_nine_shared_frames_and_eight_new() -> None:
    condition = {"weights": "o/l", "pipeline": "condition", "max_frames_per_segment": 9}
    with pytest.raises(CatalogError, match=r"max_frames_per_segment: .* at least 17, got 9"):
        parse_options(condition, "ltx")
    assert parse_options(condition | {"max_frames_per_segment": 17}, "ltx")
    assert parse_options(condition | {"pipeline": "i2v"}, "ltx")
