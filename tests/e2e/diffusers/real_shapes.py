"""The real Wan / LTX-Video Diffusers checkpoints, recorded as data.

Values from reference/real-model-configs.md (the diffusers converters that wrote
those repos, the models' own configs and docs). Two users read them:

- `test_real_shapes.py` checks each tiny folder (`tiny.BUILDERS`) against the keys a
  loader or pipeline branches on: `class_name`, `components`, `index`, `scheduler`,
  and the non-size keys `transformer` and `vae`;
- `bench/model_memory.py` builds each real component on the meta device from the
  non-size keys plus the size keys (`transformer_size`, `vae_size`, `text_encoder`,
  `image_encoder`), which the tiny copies shrink on purpose, and counts its weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TextEncoder:
    """A T5-family encoder's sizes (UMT5-XXL for Wan, T5-v1.1-XXL for LTX)."""

    vocab_size: int
    d_model: int = 4096
    num_layers: int = 24
    num_heads: int = 64
    d_kv: int = 64
    d_ff: int = 10240
    feed_forward_proj: str = "gated-gelu"


@dataclass(frozen=True)
class ClipVision:
    """The CLIP vision tower's sizes (Wan2.1: laion CLIP-ViT-H-14)."""

    hidden_size: int = 1280
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    intermediate_size: int = 5120
    image_size: int = 224
    patch_size: int = 14
    projection_dim: int = 1024  # ViT-H-14's embedding width


@dataclass(frozen=True)
class Real:
    """One Hub repo: its files' keys, split into those every size shares and sizes."""

    repo: str
    name: str  # how docs and tables call it
    tiny: str  # the tiny.BUILDERS shape that stands for it
    class_name: str  # model_index.json `_class_name`
    components: Mapping[str, str | None]  # name -> class; None: null or absent
    index: Mapping[str, Any]  # the pipeline's own config keys
    scheduler: Mapping[str, Any]  # every key that differs from the class's default
    transformer: Mapping[str, Any]  # keys that are the same at every size
    vae: Mapping[str, Any]
    transformer_size: Mapping[str, Any]  # the real widths and depths
    vae_size: Mapping[str, Any]
    text_encoder: TextEncoder
    image_encoder: ClipVision | None = None
    relations: tuple[str, ...] = field(default=())  # named checks (test_real_shapes)


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
UMT5_XXL = TextEncoder(vocab_size=256384)
T5_V1_1_XXL = TextEncoder(vocab_size=32128)

# the 14B transformers (A14B's experts, Wan2.1 I2V/FLF2V) and the 5B one
WAN_14B_SIZE = {
    "in_channels": 36,  # 16 noise + 4 mask + 16 condition latents
    "out_channels": 16,
    "num_layers": 40,
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "ffn_dim": 13824,
    "text_dim": 4096,
}
WAN_CLIP_SIZE = {"image_dim": 1280, "added_kv_proj_dim": 5120}
WAN21_VAE_SIZE = {"base_dim": 96, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2}
WAN22_VAE_SIZE = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "latents_mean": [0.0] * 48,  # 48 values each in the repo; only their count matters here
    "latents_std": [1.0] * 48,
}


def _unipc(flow_shift: float) -> dict[str, Any]:
    return {
        "_class_name": "UniPCMultistepScheduler",
        "prediction_type": "flow_prediction",
        "use_flow_sigmas": True,
        "num_train_timesteps": 1000,
        "flow_shift": flow_shift,
    }


def _wan21(repo: str, name: str, tiny: str, flow_shift: float, *, flf2v: bool) -> Real:
    return Real(
        repo=repo,
        name=name,
        tiny=tiny,
        class_name="WanImageToVideoPipeline",
        components=WAN_COMPONENTS | CLIP | {"transformer_2": None},
        # written before Wan 2.2: both keys absent, so the pipeline's defaults
        index={"expand_timesteps": False, "boundary_ratio": None},
        scheduler=_unipc(flow_shift),
        transformer=WAN_TRANSFORMER,
        vae=WAN21_VAE,
        transformer_size=WAN_14B_SIZE
        | WAN_CLIP_SIZE
        | ({"pos_embed_seq_len": 2 * 257} if flf2v else {}),  # two images' CLIP tokens
        vae_size=WAN21_VAE_SIZE,
        text_encoder=UMT5_XXL,
        image_encoder=ClipVision(),
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
LTX_VAE_SIZE = {
    "latent_channels": 128,
    "block_out_channels": [128, 256, 512, 1024, 2048],
    "decoder_block_out_channels": [256, 512, 1024],
    "layers_per_block": [4, 6, 6, 2, 2],
    "decoder_layers_per_block": [5, 5, 5, 5],
}
LTX_2B_SIZE = {
    "in_channels": 128,
    "out_channels": 128,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "caption_channels": 4096,
    "num_layers": 28,
}
LTX_13B_SIZE = LTX_2B_SIZE | {
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "num_layers": 48,
}


def _ltx(repo: str, name: str, tiny: str, class_name: str, size: Mapping[str, Any]) -> Real:
    return Real(
        repo=repo,
        name=name,
        tiny=tiny,
        class_name=class_name,
        components=LTX_COMPONENTS,
        index={},
        scheduler=LTX_SCHEDULER,
        transformer=LTX_TRANSFORMER,
        vae=LTX_VAE,
        transformer_size=size,
        vae_size=LTX_VAE_SIZE,
        text_encoder=T5_V1_1_XXL,
        relations=("ltx-channels",),
    )


REAL = (
    Real(
        repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        name="Wan2.2 TI2V-5B",
        tiny="wan-ti2v",
        class_name="WanPipeline",
        components=WAN_COMPONENTS | NO_CLIP | {"transformer_2": None},
        index={"expand_timesteps": True, "boundary_ratio": None},
        scheduler=_unipc(5.0),
        transformer=WAN_TRANSFORMER | {"image_dim": None, "added_kv_proj_dim": None},
        vae=WAN22_VAE,
        transformer_size={
            "in_channels": 48,  # = the VAE's z_dim: the first frame is blended in
            "out_channels": 48,
            "num_layers": 30,
            "num_attention_heads": 24,
            "attention_head_dim": 128,
            "ffn_dim": 14336,
            "text_dim": 4096,
        },
        vae_size=WAN22_VAE_SIZE,
        text_encoder=UMT5_XXL,
        relations=("wan-ti2v-channels",),
    ),
    Real(
        repo="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
        name="Wan2.2 I2V-A14B",
        tiny="wan-a14b",
        class_name="WanImageToVideoPipeline",
        components=WAN_COMPONENTS | NO_CLIP | {"transformer_2": "WanTransformer3DModel"},
        index={"expand_timesteps": False, "boundary_ratio": 0.9},
        scheduler=_unipc(3.0),  # the converter's; the official shift is 5.0
        transformer=WAN_TRANSFORMER
        | {"image_dim": None, "added_kv_proj_dim": None, "pos_embed_seq_len": None},
        vae=WAN21_VAE,
        transformer_size=WAN_14B_SIZE,  # each expert
        vae_size=WAN21_VAE_SIZE,
        text_encoder=UMT5_XXL,
        relations=("wan-i2v-channels", "wan-two-experts"),
    ),
    _wan21(
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "Wan2.1 I2V-14B 480P", "wan-i2v", 3.0, flf2v=False
    ),
    _wan21(
        "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", "Wan2.1 I2V-14B 720P", "wan-i2v", 3.0, flf2v=False
    ),
    _wan21(
        "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers", "Wan2.1 FLF2V-14B", "wan-flf2v", 16.0, flf2v=True
    ),
    _ltx("Lightricks/LTX-Video-0.9.5", "LTX-Video 0.9.5 (2B)", "ltx", "LTXPipeline", LTX_2B_SIZE),
    # 0.9.7-distilled and 0.9.8-13B-distilled load with the same 13B shapes (inferred)
    _ltx(
        "Lightricks/LTX-Video-0.9.7-dev",
        "LTX-Video 0.9.7 / 0.9.8 13B",
        "ltx-condition",
        "LTXConditionPipeline",
        LTX_13B_SIZE,
    ),
)


def configs(real: Real) -> dict[str, dict[str, Any]]:
    """Each model component's full config at the real size, keyed by component name
    (the text and image encoders as their sizes' fields)."""
    transformer = dict(real.transformer) | dict(real.transformer_size)
    found = {
        "text_encoder": asdict(real.text_encoder),
        "transformer": transformer,
        "vae": dict(real.vae) | dict(real.vae_size),
    }
    if real.components.get("transformer_2"):
        found["transformer_2"] = dict(transformer)  # A14B: two experts of one config
    if real.image_encoder is not None:
        found["image_encoder"] = asdict(real.image_encoder)
    return found
