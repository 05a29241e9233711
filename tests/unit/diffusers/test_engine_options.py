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
    with pytest.raises(CatalogError, match=r"guidance_scale_2.*ltx engine has none"):
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
    with pytest.raises(CatalogError, match=r"preset: only the ltx engine"):
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
