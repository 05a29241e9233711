"""Tiny random diffusers pipelines shaped like the real checkpoints, built in code.

No hub access: the tokenizer is a 🤗 Tokenizers object built from a word list
(the recipe in reference/open-models.md §2), the text encoders 2-layer UMT5/T5.
Each builder writes a folder that `from_pretrained(folder)` loads through the
engine's real loading code, and returns that folder; `lora_file` /
`build_tiny_lora` write a diffusers-format LoRA for a tiny transformer.

"Shaped like the real ones" means the same pipeline class names in
`model_index.json`, the same components (and the same missing ones), the same
scheduler class and config, the same channel relations between VAE and
transformer and the same VAE code paths (residual 48-channel Wan2.2 VAE, LTX
0.9.5+ VAE with timestep conditioning); only widths and depths are small. The
real values are recorded in `real_shapes.py`; `test_real_shapes.py` compares
each folder against them. Importable from other test areas: a service test can
point a catalog route at `build_tiny_wan_ti2v(tmp)` with the options from
`tiny_options("wan-ti2v", folder)`.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

VOCABULARY = (
    "a the cat dog man woman city street camera slowly moves pans tilts zooms in out on of "
    "with and walks runs light sunset night water sky tree car"
)
WORDS = tuple(VOCABULARY.split())
TEXT_DIM = 32  # d_model of the tiny UMT5/T5 (real: 4096)
CLIP_HIDDEN = 8  # hidden size of the tiny CLIP (real: 1280)
CLIP_IMAGE = 4  # CLIP input side with patch 1: 16 patches + 1 class token (real: 224/14)


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
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return UMT5EncoderModel(config).eval()


def _wan_scheduler(flow_shift: float) -> Any:
    """The converter's scheduler: UniPC on flow sigmas, every other key at its default."""
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=flow_shift,
    )


def _wan_transformer(**overrides: Any) -> Any:
    """The real keys (patch (1, 2, 2), rms_norm_across_heads, cross_attn_norm, eps,
    freq_dim 256) at tiny widths; I2V channels 36 = 16 noise + 4 mask + 16 condition."""
    from diffusers import WanTransformer3DModel

    config: dict[str, Any] = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "in_channels": 36,
        "out_channels": 16,
        "text_dim": TEXT_DIM,
        "freq_dim": 256,
        "ffn_dim": 32,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "image_dim": None,
        "added_kv_proj_dim": None,
        "rope_max_seq_len": 1024,
    }
    config.update(overrides)
    return WanTransformer3DModel(**config)


def _wan21_vae() -> Any:
    """The Wan2.1 VAE (2.1 I2V, FLF2V, 2.2 A14B): z_dim 16, 8x spatial, 4x temporal,
    the class's own latents_mean/std as the real one uses."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=2,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _wan22_vae() -> Any:
    """The Wan2.2 VAE (TI2V-5B): z_dim 48, residual, patch 2 (12 = 3*2*2 channels
    in and out), 16x spatial = 8 x patch, separate decoder width."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=2,
        decoder_base_dim=3,
        z_dim=48,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        latents_mean=[0.0] * 48,
        latents_std=[1.0] * 48,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
    )


def _clip() -> tuple[Any, Any]:
    """CLIPVisionModelWithProjection (2 layers: the pipeline reads hidden_states[-2]) and
    its CLIPImageProcessor."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=CLIP_HIDDEN,
            projection_dim=CLIP_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=CLIP_IMAGE,
            intermediate_size=16,
            patch_size=1,
        )
    ).eval()
    # transformers 5 without torchvision hands out the PIL backend under this name
    processor = CLIPImageProcessor(crop_size=CLIP_IMAGE, size=CLIP_IMAGE)
    return encoder, processor


def _save(pipe: Any, path: Path, tokenizer_class: str) -> Path:
    """save_pretrained, then name classes as the real repos do: the tokenizer (saved as
    transformers 5's `TokenizersBackend`; the Hub says T5TokenizerFast for Wan,
    T5Tokenizer for LTX, and both load our tokenizer.json) and the CLIP processor
    (transformers 5 without torchvision saves its PIL fallback's name; the Hub says
    CLIPImageProcessor and loading maps it back)."""
    pipe.save_pretrained(path)
    index_path = path / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["tokenizer"] = ["transformers", tokenizer_class]
    if index.get("image_processor", [None])[0] is not None:
        index["image_processor"] = ["transformers", "CLIPImageProcessor"]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
    return path


def build_tiny_wan_ti2v(path: Path) -> Path:
    """Wan2.2 TI2V-5B-shaped: saved as `WanPipeline` (the engine loads it through
    `WanImageToVideoPipeline`), `expand_timesteps`, no image encoder, UniPC with
    flow_shift 5, transformer in = out = VAE z_dim 48. Renders at 32x32."""
    from diffusers import WanPipeline

    _seed()
    tokenizer = _tokenizer()
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=_wan22_vae(),
        scheduler=_wan_scheduler(5.0),
        transformer=_wan_transformer(in_channels=48, out_channels=48),
        transformer_2=None,
        expand_timesteps=True,
    )
    return _save(pipe, path, "T5TokenizerFast")


def build_tiny_wan_a14b(path: Path) -> Path:
    """Wan2.2 I2V-A14B-shaped: two identical experts split at boundary_ratio 0.9, no
    image encoder, the Wan2.1 VAE, UniPC at the Hub's flow_shift 3.0."""
    from diffusers import WanImageToVideoPipeline

    _seed()
    tokenizer = _tokenizer()
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=_wan21_vae(),
        scheduler=_wan_scheduler(3.0),
        transformer=_wan_transformer(),
        transformer_2=_wan_transformer(),
        image_encoder=None,
        image_processor=None,
        boundary_ratio=0.9,
    )
    return _save(pipe, path, "T5TokenizerFast")


def build_tiny_wan_i2v(path: Path) -> Path:
    """Wan2.1 I2V-14B-shaped: CLIP image encoder, transformer image_dim = CLIP hidden
    size with added_kv_proj_dim = its inner dim, UniPC at flow_shift 3.0."""
    return _build_wan21(path, flf2v=False)


def build_tiny_wan_flf2v(path: Path) -> Path:
    """Wan2.1 FLF2V-14B-shaped: as I2V plus `pos_embed_seq_len` for two images' CLIP
    tokens, UniPC at flow_shift 16."""
    return _build_wan21(path, flf2v=True)


def _build_wan21(path: Path, *, flf2v: bool) -> Path:
    from diffusers import WanImageToVideoPipeline

    _seed()
    tokenizer = _tokenizer()
    image_encoder, image_processor = _clip()
    inner = 2 * 12  # heads x head_dim of _wan_transformer
    extra: dict[str, Any] = {"image_dim": CLIP_HIDDEN, "added_kv_proj_dim": inner}
    if flf2v:
        extra["pos_embed_seq_len"] = 2 * (CLIP_IMAGE * CLIP_IMAGE + 1)
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_umt5(len(tokenizer)),
        vae=_wan21_vae(),
        scheduler=_wan_scheduler(16.0 if flf2v else 3.0),
        transformer=_wan_transformer(**extra),
        transformer_2=None,
        image_encoder=image_encoder,
        image_processor=image_processor,
    )
    return _save(pipe, path, "T5TokenizerFast")


def _ltx_components() -> dict[str, Any]:
    """LTX-Video 0.9.5+-shaped parts: the 0.9.5 VAE block layout (patch 4, mixed
    spatial/temporal down blocks, explicit 32x/8x compression, timestep-conditioned
    decoder), a 2-layer transformer with in = out = latent channels, shift-1 Euler."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    _seed()
    tokenizer = _tokenizer()
    latent_channels = 16
    transformer = LTXVideoTransformer3DModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=2,
        caption_channels=TEXT_DIM,
        activation_fn="gelu-approximate",
        qk_norm="rms_norm_across_heads",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        attention_bias=True,
        attention_out_bias=True,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        # widths double per block as in the real VAE: the decoder's up blocks then need
        # no channel-changing resnet, a path the real checkpoints never take
        block_out_channels=(4, 8, 16, 32, 64),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        down_block_types=("LTXVideo095DownBlock3D",) * 4,
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=True,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
        scaling_factor=1.0,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    ).eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False),
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "transformer": transformer,
    }


def build_tiny_ltx(path: Path) -> Path:
    """LTX-Video 0.9.5-shaped: saved as `LTXPipeline` as that repo is; the engine
    loads it through `LTXImageToVideoPipeline`."""
    from diffusers import LTXPipeline

    return _save(LTXPipeline(**_ltx_components()), path, "T5Tokenizer")


def build_tiny_ltx_condition(path: Path) -> Path:
    """LTX-Video 0.9.7-shaped: saved as `LTXConditionPipeline` (the engine's `auto`
    pipeline picks the condition pipeline from that name)."""
    from diffusers import LTXConditionPipeline

    return _save(LTXConditionPipeline(**_ltx_components()), path, "T5Tokenizer")


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def lora_file(transformer: Any, path: Path, *, seed: int = 0, rank: int = 2) -> str:
    """A LoRA in diffusers' format on every attention projection of `transformer`,
    strong enough to show in a 2-step tiny render; returns the file's path."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS) and ".attn" in name:
            out_features, in_features = module.weight.shape
            a = torch.randn(rank, in_features, generator=generator)
            b = torch.randn(out_features, rank, generator=generator)
            tensors[f"transformer.{name}.lora_A.weight"] = a.contiguous()
            tensors[f"transformer.{name}.lora_B.weight"] = b.contiguous()
    assert tensors
    save_file(tensors, str(path))
    return str(path)


def build_tiny_lora(folder: Path, path: Path, *, seed: int = 0) -> str:
    """`lora_file` for the transformer of a tiny pipeline folder (A14B's experts share
    one shape, so it fits `transformer_2` too)."""
    import diffusers

    config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    model_class = getattr(diffusers, config["_class_name"])
    return lora_file(model_class.from_pretrained(folder / "transformer"), path, seed=seed)


BUILDERS = {
    "wan-ti2v": build_tiny_wan_ti2v,
    "wan-a14b": build_tiny_wan_a14b,
    "wan-i2v": build_tiny_wan_i2v,
    "wan-flf2v": build_tiny_wan_flf2v,
    "ltx": build_tiny_ltx,
    "ltx-condition": build_tiny_ltx_condition,
}


def tiny_options(name: str, path: Path, **overrides: Any) -> dict[str, Any]:
    """Route options that render a tiny folder fast: one grid block, 2 steps, 16 tokens.

    For a catalog route in a service test: `[routes."x".options]` = this dict.
    """
    area = 16 * 16 if name in ("wan-a14b", "wan-i2v", "wan-flf2v") else 32 * 32
    options: dict[str, Any] = {
        "weights": str(path),
        "steps": 2,
        "max_area": area,
        "max_sequence_length": 16,
    }
    options.update(overrides)
    return options
