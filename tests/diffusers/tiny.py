"""Tiny random diffusers pipelines, built in code and saved with `save_pretrained`.

No hub access: the tokenizer is a 🤗 Tokenizers object built from a word list
(the recipe in reference/open-models.md §2), the text encoder a 2-layer UMT5/T5.
Each builder writes a folder that `from_pretrained(folder)` loads through the
engine's real loading code, and returns that folder. Importable from other test
areas: a service test can point a catalog route at `build_tiny_wan_ti2v(tmp)`
with the options from `tiny_options("wan-ti2v", folder)`.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

VOCABULARY = (
    "a the cat dog man woman city street camera slowly moves pans tilts zooms in out on of "
    "with and walks runs light sunset night water sky tree car"
)
WORDS = tuple(VOCABULARY.split())


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁" + w, -1.0) for w in WORDS]
    pieces += [(c, -5.0) for c in string.ascii_lowercase + string.digits]
    pieces += [("▁", -2.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )


def _seed() -> None:
    import torch

    torch.manual_seed(0)


def _umt5(vocab_size: int) -> Any:
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return UMT5EncoderModel(config).eval()


def _wan_transformer(**overrides: Any) -> Any:
    from diffusers import WanTransformer3DModel

    config: dict[str, Any] = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "in_channels": 36,
        "out_channels": 16,
        "text_dim": 32,
        "freq_dim": 256,
        "ffn_dim": 32,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "rope_max_seq_len": 128,
    }
    config.update(overrides)
    return WanTransformer3DModel(**config)


def _wan_vae(**overrides: Any) -> Any:
    from diffusers import AutoencoderKLWan

    config: dict[str, Any] = {
        "base_dim": 3,
        "z_dim": 16,
        "dim_mult": [1, 1, 1, 1],
        "num_res_blocks": 1,
        "temperal_downsample": [False, True, True],
    }
    config.update(overrides)
    return AutoencoderKLWan(**config)


def build_tiny_wan_ti2v(path: Path) -> Path:
    """Wan2.2 TI2V-5B-shaped: 48-channel VAE with 16x spatial compression,
    `expand_timesteps`, no image encoder. Renders at 32x32 (one 32-pixel block)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    _seed()
    tokenizer = _tokenizer()
    vae = _wan_vae(
        z_dim=48,
        in_channels=12,
        out_channels=12,
        is_residual=True,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=_wan_transformer(in_channels=48, out_channels=48),
        image_encoder=None,
        image_processor=None,
        transformer_2=None,
        expand_timesteps=True,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_wan_a14b(path: Path) -> Path:
    """Wan2.2 I2V-A14B-shaped: two experts split at `boundary_ratio`, no image encoder."""
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline

    _seed()
    tokenizer = _tokenizer()
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=_wan_vae(),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
        transformer=_wan_transformer(),
        transformer_2=_wan_transformer(),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=0.875,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_wan_flf2v(path: Path) -> Path:
    """Wan2.1 FLF2V-shaped: CLIP image encoder, `pos_embed_seq_len` for two images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from transformers import CLIPVisionConfig, CLIPVisionModel

    try:  # transformers 5 splits the PIL backend out; the torchvision one is not installed
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor

    _seed()
    tokenizer = _tokenizer()
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=4,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=_wan_transformer(image_dim=4, pos_embed_seq_len=2 * (4 * 4 + 1)),
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=4, size=4),
        transformer_2=None,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_ltx(path: Path) -> Path:
    """LTX-Video-shaped image-to-video pipeline (T5 encoder, 8-channel latent VAE)."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    _seed()
    tokenizer = _tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    ).eval()
    pipe = LTXImageToVideoPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.save_pretrained(path)
    return path


BUILDERS = {
    "wan-ti2v": build_tiny_wan_ti2v,
    "wan-a14b": build_tiny_wan_a14b,
    "wan-flf2v": build_tiny_wan_flf2v,
    "ltx": build_tiny_ltx,
}


def tiny_options(name: str, path: Path, **overrides: Any) -> dict[str, Any]:
    """Route options that render a tiny folder fast: one grid block, 2 steps, 16 tokens.

    For a catalog route in a service test: `[routes."x".options]` = this dict.
    """
    area = 16 * 16 if name in ("wan-a14b", "wan-flf2v") else 32 * 32
    options: dict[str, Any] = {
        "weights": str(path),
        "steps": 2,
        "max_area": area,
        "max_sequence_length": 16,
    }
    options.update(overrides)
    return options
