"""Loading a diffusers pipeline in the child: weights, dtype, device, speed options.

Runs only inside the spawned engine process (it imports torch). Weights are a
local folder written by `save_pretrained` or a Hugging Face repo id resolved
from the local cache; the hub is contacted only when the operator set
`local_files_only = false`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2v.domain.errors import EngineError
from i2v.engines.diffusers import offload as offload_modes
from i2v.engines.diffusers.options import EngineOptions

# The modules TaylorSeer predicts between full steps: each block's self- and
# cross-attention (Wan `blocks.N.attn1/2`, LTX `transformer_blocks.N.attn1/2`). diffusers'
# default patterns match only modules named `...attn` (Flux), so on these models the cache
# would hook nothing and silently run every step in full.
TAYLORSEER_MODULES = (r"(transformer_)?blocks\.\d+\.attn[12]",)


@dataclass
class Loaded:
    pipe: Any
    device: torch.device
    dtype: torch.dtype
    offload: str
    description: str


def load_pipeline(
    pipeline_class: Any, options: EngineOptions, *, float32_components: tuple[str, ...] = ()
) -> Loaded:
    """Load `pipeline_class` from the options' weights and apply the speed options.

    `float32_components` (e.g. the VAE) load in float32 whatever the pipeline's dtype;
    the pipeline must cast latents to their dtype itself (Wan's does, LTX's does not)."""
    # 1. Resolve where the weights are and how to run them
    source = resolve_weights(options.weights)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    check_fp8(options.fp8, device)
    # per-component dtypes: the weights load straight into float32, not rounded via bf16
    dtypes = {"default": dtype} | dict.fromkeys(float32_components, torch.float32)

    # 2. Load (on CPU; placement below depends on the offload mode)
    try:
        pipe = pipeline_class.from_pretrained(
            source,
            local_files_only=options.local_files_only,
            cache_dir=options.cache_dir or None,
            **{_dtype_keyword(): dtypes},
        )
    except (OSError, ValueError) as exc:
        hint = (
            ""
            if not options.local_files_only
            else " (only local files are used: download the weights first, "
            "e.g. `huggingface-cli download <repo> --local-dir DIR`, or set "
            "local_files_only = false)"
        )
        raise EngineError(f"weights: cannot load {options.weights!r}: {exc}{hint}") from exc
    pipe.set_progress_bar_config(disable=True)
    check_components(pipe, options)
    transformers = [
        m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None
    ]

    # 3. Place it: whole on the device, or offloaded by model, group or layer; float8
    # weights first, so that offload sizes, keeps and moves the float8 copies
    if options.fp8:
        store_fp8(transformers, options.fp8, dtype)
    offload = pipeline_offload(options.offload, pipe, device)
    try:
        place(pipe, device, offload)
    except Exception as exc:
        raise offload_modes.PlacementError(offload, exc) from exc

    # 4. Speed options, each off unless the catalog asks (tiling: on for CUDA)
    tiling = options.vae_tiling if options.vae_tiling is not None else device.type == "cuda"
    if tiling:
        pipe.vae.enable_tiling()
    if options.attention_backend:
        for model in transformers:
            model.set_attention_backend(options.attention_backend)
    if options.first_block_cache > 0:
        from diffusers.hooks.first_block_cache import (
            FirstBlockCacheConfig,
            apply_first_block_cache,
        )

        config = FirstBlockCacheConfig(threshold=options.first_block_cache)
        for model in transformers:
            apply_first_block_cache(model, config)
    if options.taylorseer_cache > 0:
        from diffusers.hooks.taylorseer_cache import (
            TaylorSeerCacheConfig,
            apply_taylorseer_cache,
        )

        # the Taylor factors in the pipeline's dtype: float32 on a CPU, bf16 on CUDA
        taylor = TaylorSeerCacheConfig(
            cache_interval=options.taylorseer_cache,
            taylor_factors_dtype=dtype,
            cache_identifiers=list(TAYLORSEER_MODULES),
        )
        for model in transformers:
            apply_taylorseer_cache(model, taylor)
    if options.compile:
        for model in transformers:
            model.compile_repeated_blocks(fullgraph=True)

    description = (
        f"{pipeline_name(pipe)} from {source} on {device} ({describe_dtypes(pipe, dtype)}), "
        f"offload={offload}, vae_tiling={tiling}, compile={options.compile}, "
        f"first_block_cache={options.first_block_cache}, "
        f"taylorseer_cache={options.taylorseer_cache}, fp8={options.fp8 or 'off'}, "
        f"attention_backend={options.attention_backend or 'default'}"
    )
    return Loaded(pipe, device, dtype, offload, description)


def check_fp8(mode: str, device: torch.device) -> None:
    """torchao's float8 matmuls need CUDA compute capability 8.9+: checked before the
    weights load, not after."""
    if mode != "torchao":
        return
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if capability is None or capability < (8, 9):
        has = f"compute capability {capability[0]}.{capability[1]}" if capability else "no CUDA"
        raise EngineError(
            "fp8: 'torchao' needs a CUDA GPU with float8 matmuls (compute capability 8.9+: "
            f'Ada, Hopper, Blackwell), but {device} has {has}; use fp8 = "layerwise" there'
        )


def store_fp8(transformers: list[Any], mode: str, dtype: torch.dtype) -> None:
    """Float8 weights for the transformers (the other components stay in `dtype`).

    layerwise: each layer's weights stored in float8_e4m3fn and upcast to `dtype` for its
    forward (half the memory of bf16, on any device; no faster). diffusers' default skip
    patterns keep the norms, patch/position embeddings and proj_in/proj_out in `dtype`.
    torchao: weights and activations in float8 with per-row scales and float8 matmuls
    (CUDA compute capability 8.9+, see `check_fp8`). Both run on the weights while they are
    still on the CPU."""
    if mode == "layerwise":
        for model in transformers:
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
        return
    # torchao is the optional `fp8` extra (the catalog load checked it is installed)
    from torchao.quantization import (  # type: ignore[import-not-found, unused-ignore]
        Float8DynamicActivationFloat8WeightConfig,
        PerRow,
        quantize_,
    )

    for model in transformers:
        quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))


def pipeline_name(pipe: Any) -> str:
    """The diffusers pipeline class a pipeline is (ours only add to one, e.g. the Wan
    renderer's anchored pipeline)."""
    for cls in type(pipe).__mro__:
        if cls.__module__.startswith("diffusers."):
            return cls.__name__
    return type(pipe).__name__


def reset_step_caches(pipe: Any) -> None:
    """Forget the step caches' state (FirstBlockCache's last residual, TaylorSeer's step
    count and Taylor factors). A pipeline resets them only at the end of a call it
    finishes; a render stopped by an exception (a cancel, an OOM) would hand its state to
    the next render, which would then skip or predict its first steps from another video."""
    for model in (pipe.transformer, getattr(pipe, "transformer_2", None)):
        if model is not None and hasattr(model, "_reset_stateful_cache"):
            model._reset_stateful_cache()


def describe_dtypes(pipe: Any, dtype: torch.dtype) -> str:
    """`bfloat16` or `bfloat16; vae float32, image_encoder float32`: the pipeline's dtype
    and each component whose parameters differ from it."""
    others = [
        f"{name} {str(module.dtype).removeprefix('torch.')}"
        for name, module in pipe.components.items()
        if isinstance(module, torch.nn.Module) and module.dtype != dtype
    ]
    main = str(dtype).removeprefix("torch.")
    return f"{main}; {', '.join(others)}" if others else main


def _dtype_keyword() -> str:
    # diffusers renamed `torch_dtype` to `dtype` (0.36+) and warns on the old name
    from diffusers.utils import deprecation_utils

    return (
        "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
    )


def resolve_weights(weights: str) -> str:
    """A local folder as an absolute path; anything else is a repo id for the cache."""
    path = Path(weights).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise EngineError(
                f"weights: {weights!r} is a folder without model_index.json; "
                "point it at a folder saved with save_pretrained (a diffusers layout)"
            )
        return str(path.resolve())
    if weights.startswith(("/", ".", "~")) or weights.count("/") != 1:
        raise EngineError(
            f"weights: {weights!r} is neither an existing folder nor a repo id like 'org/name'"
        )
    return weights


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device: {choice!r} asked for, but CUDA is not available here")
    return device


def resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    if choice == "auto":
        # bf16 halves memory and is what Wan/LTX were trained in; CPU kernels are fp32-fast only
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, choice)
    return dtype


def check_components(pipe: Any, options: EngineOptions) -> None:
    """Options that need a component the loaded pipeline lacks fail the load, once,
    instead of every render."""
    if options.guidance_scale_2 >= 0 and getattr(pipe, "transformer_2", None) is None:
        raise EngineError(
            f"guidance_scale_2: the model {options.weights!r} ({pipeline_name(pipe)}) has no "
            "transformer_2 (only Wan2.2 I2V-A14B has one); remove guidance_scale_2"
        )


def pipeline_offload(choice: str, pipe: Any, device: torch.device) -> str:
    """The offload mode for `pipe` on `device` (see `offload.choose_offload`); a CPU
    device has nothing to offload to."""
    if device.type != "cuda":
        return "none"
    sizes = [module_bytes(m) for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    total_memory = torch.cuda.get_device_properties(device).total_memory
    return offload_modes.choose_offload(choice, sizes, total_memory)


def place(pipe: Any, device: torch.device, offload: str) -> None:
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif offload == "group":
        _group_offload(pipe, device)


def _group_offload(pipe: Any, device: torch.device) -> None:
    """Block-level groups with a CUDA stream, overlapping transfers with compute, for the
    transformers; the VAE and the encoders leaf by leaf (see `offload.LEAF_GROUPS`)."""
    from diffusers.hooks.group_offloading import apply_group_offloading

    for name, component in pipe.components.items():
        if not isinstance(component, torch.nn.Module):
            continue
        if name in offload_modes.LEAF_GROUPS:
            apply_group_offloading(
                component, onload_device=device, offload_type="leaf_level", use_stream=True
            )
        else:
            apply_group_offloading(
                component,
                onload_device=device,
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=True,
            )


def module_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A fresh generator for `seed` on the device the pipeline runs on.

    Some pipelines draw noise with `torch.randn(..., generator=g, device=device)`
    (LTXImageToVideoPipeline's timestep-conditioned decode), which refuses a generator
    on another device, so a CPU generator fails a CUDA render after the whole denoise.
    The same seed gives the same video on the same kind of device; a new generator per
    call keeps one render's state out of the next."""
    return torch.Generator(device).manual_seed(seed)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(torch.cuda.max_memory_allocated(device))


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def to_uint8(video: Any) -> Any:
    """Pipeline `np` output (frames x H x W x 3 floats in [0, 1]) -> uint8 array."""
    import numpy as np

    return (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
