"""The Wan checkpoint families and their official sampling, told apart by their configs.

    Wan2.2 TI2V-5B   `expand_timesteps` (the Hub saves it as `WanPipeline`), a 48-channel
                     16x VAE, no image encoder; 1280x704 or 704x1280 only, 121 frames,
                     24 fps; 50 steps, guidance 5.0, shift 5.
    Wan2.2 I2V-A14B  transformer (high noise) + transformer_2 (low noise), split at
                     `boundary_ratio`; 480p/720p, 81 frames, 16 fps; 40 steps,
                     guidance 3.5, shift 5 (the Hub's scheduler config says 3).
    Wan2.1 I2V 14B   image_encoder (CLIP); 480p or 720p, 81 frames, 16 fps; 40 steps,
                     guidance 5.0, shift 3 at 480p, 5 at 720p.
    Wan2.1 FLF2V     as I2V, transformer with `pos_embed_seq_len`; takes `last_image`;
                     50 steps, shift 16.

Sources: Wan2.1 generate.py, Wan2.2 wan/configs (see docs/generative-models.md). Every
family plays at its training fps: the 14B models at 16, TI2V-5B at 24; a route states
which (`fps` in the catalog) and the engine refuses a mismatch instead of speeding
motion up. Torch-free: the parent reads the family from the weights' JSON files to check
a catalog route before any child starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from i2v.domain.errors import EngineError
from i2v.engines.diffusers import sizing
from i2v.engines.diffusers.weights import read_model_index

# The official negative prompt of Wan 2.1 and 2.2 (shared_config.py), used by the original
# code whenever the request gives none; Wan2.1 I2V prefixes "camera shake", FLF2V also
# "scene cut" (Wan2.1 wan/configs).
NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
I2V_21_NEGATIVE_PROMPT = "镜头晃动，" + NEGATIVE_PROMPT
FLF2V_21_NEGATIVE_PROMPT = "镜头切换，" + I2V_21_NEGATIVE_PROMPT


@dataclass(frozen=True)
class Variant:
    """One Wan checkpoint family and its official sampling: the fallbacks when neither
    the request nor the route (nor a preset) sets a knob."""

    name: str
    steps: int
    guidance_scale: float
    max_frames: int  # the training length: one pipeline call renders at most this
    fps: int  # the training frame rate: the only rate its motion looks right at
    areas: Mapping[str, int]  # native render area by resolution tier
    flow_shifts: Mapping[str, float]  # official sampling shift by resolution tier
    negative_prompt: str
    last_image: bool  # takes a last frame
    clip: bool  # conditions on a CLIP embedding of the image (Wan2.1)


TI2V_5B = Variant(
    name="Wan2.2 TI2V-5B",
    steps=50,
    guidance_scale=5.0,
    max_frames=121,
    fps=24,
    areas=sizing.WAN_TI2V_AREAS,
    flow_shifts={"720p": 5.0},
    negative_prompt=NEGATIVE_PROMPT,
    last_image=False,
    clip=False,
)
I2V_A14B = Variant(
    name="Wan2.2 I2V-A14B",
    steps=40,
    guidance_scale=3.5,
    max_frames=81,
    fps=16,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 5.0, "720p": 5.0},  # the Hub's scheduler config says 3.0
    negative_prompt=NEGATIVE_PROMPT,
    last_image=True,
    clip=False,
)
I2V_21 = Variant(
    name="Wan2.1 I2V-14B",
    steps=40,
    guidance_scale=5.0,
    max_frames=81,
    fps=16,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 3.0, "720p": 5.0},  # the Hub's scheduler configs say 3.0
    negative_prompt=I2V_21_NEGATIVE_PROMPT,
    last_image=False,
    clip=True,
)
FLF2V_21 = Variant(
    name="Wan2.1 FLF2V-14B",
    steps=50,  # Wan2.1 generate.py samples FLF2V with 50 steps (I2V: 40)
    guidance_scale=5.0,
    max_frames=81,
    fps=16,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 16.0, "720p": 16.0},
    negative_prompt=FLF2V_21_NEGATIVE_PROMPT,
    last_image=True,
    clip=True,
)
VARIANTS = (TI2V_5B, I2V_A14B, I2V_21, FLF2V_21)


def detect(
    *, expand_timesteps: bool, transformer_2: bool, image_encoder: bool, pos_embed_seq_len: Any
) -> Variant | None:
    """The family from what its configs say (a loaded pipeline's or the saved files'), on
    positive evidence only; None for anything else (a text-to-video export, a TI2V export
    that lost `expand_timesteps`), which no variant's sampling fits."""
    if expand_timesteps:
        return TI2V_5B
    if transformer_2:
        return I2V_A14B
    if image_encoder:
        return FLF2V_21 if pos_embed_seq_len else I2V_21
    return None


def detect_loaded(pipe: Any) -> Variant:
    """The family of a loaded `WanImageToVideoPipeline`; refuses weights of none."""
    transformer = pipe.transformer
    variant = detect(
        expand_timesteps=bool(pipe.config.get("expand_timesteps")),
        transformer_2=pipe.transformer_2 is not None,
        image_encoder=pipe.image_encoder is not None,
        pos_embed_seq_len=transformer.config.get("pos_embed_seq_len") if transformer else None,
    )
    if variant is None:
        raise EngineError(
            "weights: not a Wan image-to-video checkpoint the engine knows: no "
            "expand_timesteps (TI2V-5B), no transformer_2 (I2V-A14B) and no image_encoder "
            "(Wan2.1 I2V/FLF2V); text-to-video weights cannot animate a photo"
        )
    return variant


def read_variant(weights: str, cache_dir: str = "") -> Variant | None:
    """The family of the weights on this machine, from model_index.json and the
    transformer's config.json; None when they are not here (yet), unreadable or of no
    known family."""
    index = read_model_index(weights, cache_dir)
    if index is None:
        return None
    try:
        path = index.folder / "transformer" / "config.json"
        transformer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        transformer = {}
    return detect(
        expand_timesteps=bool(index.settings.get("expand_timesteps")),
        transformer_2=index.has("transformer_2"),
        image_encoder=index.has("image_encoder"),
        pos_embed_seq_len=transformer.get("pos_embed_seq_len")
        if isinstance(transformer, dict)
        else None,
    )
