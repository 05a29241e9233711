"""The LoRA route options (`loras`, `lora_allowlist`) as the catalog loads them, and the
engine's second allowlist check (pure: no torch)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from i2v.domain.catalog import CatalogError
from i2v.engines.diffusers.options import RouteLora, is_local_lora, parse_options


def _weights(tmp_path: Path, **components: Any) -> str:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    index = {"_class_name": "WanImageToVideoPipeline", "_diffusers_version": "0.42.1"}
    index |= {"transformer": ["diffusers", "WanTransformer3DModel"]} | components
    (folder / "model_index.json").write_text(json.dumps(index))
    return str(folder)


def _lora(tmp_path: Path, name: str = "style.safetensors") -> str:
    path = tmp_path / name
    path.write_bytes(b"not read at load")
    return str(path)


def test_loras_and_allowlist_parse(tmp_path: Path) -> None:
    lora = _lora(tmp_path)
    parsed = parse_options(
        {
            "weights": _weights(tmp_path, transformer_2=["diffusers", "WanTransformer3DModel"]),
            "loras": [{"path": lora}, {"path": lora, "scale": 0.5, "expert": "low"}],
            "lora_allowlist": [lora, "owner/repo", "owner/repo/sub/file.safetensors"],
        },
        "wan",
    )
    assert parsed.loras == (RouteLora(lora, 1.0, "high"), RouteLora(lora, 0.5, "low"))
    assert parsed.lora_allowlist == (lora, "owner/repo", "owner/repo/sub/file.safetensors")
    # plain values: the options pickle into the child unchanged
    assert pickle.loads(pickle.dumps(parsed)) == parsed


@pytest.mark.parametrize(
    ("loras", "words"),
    [
        ([{"path": "x.safetensors", "rank": 4}], ["unknown keys", "rank"]),
        ([{"scale": 1.0}], ["loras[0].path", "required"]),
        ([{"path": "/nope/missing.safetensors"}], ["does not exist", "missing.safetensors"]),
        ([{"path": "LORA", "expert": "middle"}], ["expert", "high, low, both"]),
        ([{"path": "LORA", "scale": "big"}], ["scale", "number"]),
        ({"path": "LORA"}, ["list of tables"]),
    ],
)
def test_bad_loras_are_refused_naming_the_key(tmp_path: Path, loras: Any, words: list[str]) -> None:
    lora = _lora(tmp_path)
    loras = json.loads(json.dumps(loras).replace('"LORA"', json.dumps(lora)))
    with pytest.raises(CatalogError) as refused:
        parse_options({"weights": _weights(tmp_path), "loras": loras}, "wan")
    for word in words:
        assert word in str(refused.value)


def test_low_expert_needs_a_second_transformer(tmp_path: Path) -> None:
    lora = _lora(tmp_path)
    with pytest.raises(CatalogError, match="transformer_2"):
        parse_options(
            {"weights": _weights(tmp_path), "loras": [{"path": lora, "expert": "low"}]}, "wan"
        )


def test_allowlist_files_must_exist(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"lora_allowlist\[1\].*does not exist"):
        parse_options(
            {
                "weights": _weights(tmp_path),
                "lora_allowlist": [_lora(tmp_path), str(tmp_path / "gone.safetensors")],
            },
            "ltx",
        )
    with pytest.raises(CatalogError, match="lora_allowlist"):
        parse_options({"weights": _weights(tmp_path), "lora_allowlist": "one"}, "wan")


def test_local_or_hub_reference() -> None:
    assert is_local_lora("/abs/x.safetensors")
    assert is_local_lora("./x.safetensors")
    assert is_local_lora("loras/x.safetensors")
    assert not is_local_lora("lightx2v/Wan2.2-Distill-Loras")
    assert not is_local_lora("lightx2v/Wan2.2-Distill-Loras/high.safetensors")
