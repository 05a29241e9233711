"""Weights folders that hold only their configs, as `save_pretrained` writes them: enough
for what the parent reads without torch (the model family, its frame rate)."""

from __future__ import annotations

import json
from pathlib import Path


def wan_config_folder(folder: Path, *, two_experts: bool, ti2v: bool) -> Path:
    """A Wan folder: TI2V-5B (`ti2v`), I2V-A14B (`two_experts`) or else Wan2.1 I2V."""
    (folder / "transformer").mkdir(parents=True)
    index = {
        "_class_name": "WanPipeline" if ti2v else "WanImageToVideoPipeline",
        "_diffusers_version": "0.42.1",
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "transformer_2": ["diffusers", "WanTransformer3DModel"] if two_experts else [None, None],
        # only Wan2.1 conditions on CLIP
        "image_encoder": (
            [None, None] if ti2v or two_experts else ["transformers", "CLIPVisionModel"]
        ),
        "expand_timesteps": ti2v,
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "transformer" / "config.json").write_text(json.dumps({"pos_embed_seq_len": None}))
    return folder
