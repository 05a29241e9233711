"""The catalog's `options` table for the diffusers engines, parsed and checked once.

Every key has a default; `weights` is the only one without. Unknown keys are
refused so that a typo in a catalog (`ofload = "model"`) fails at start-up
instead of being silently ignored. Values stay plain Python so the parsed
options pickle into the spawned child unchanged.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2v.domain.catalog import CatalogError
from i2v.engines.diffusers.presets import LTX_DISTILLED, PRESETS, wrong_family
from i2v.engines.diffusers.variants import read_variant
from i2v.engines.diffusers.weights import read_model_index

OFFLOAD_CHOICES = ("auto", "none", "model", "group", "sequential")
DTYPE_CHOICES = ("auto", "bfloat16", "float16", "float32")
RESOLUTION_CHOICES = ("auto", "480p", "720p")
LTX_PIPELINES = ("auto", "i2v", "condition")
# "": off; layerwise: weights stored in float8, each layer upcast for its forward (any
# device); torchao: float8 weights and activations with float8 matmuls (CUDA SM 8.9+)
FP8_CHOICES = ("", "layerwise", "torchao")
# The package each attention backend needs, by name prefix, and the oldest version diffusers
# 0.42 accepts ("" for any). Checked by name only, without importing torch in the parent.
# The registry's sageattention is 1.x (Triton only), which diffusers refuses: SageAttention
# 2 and flash-attn are built from source.
ATTENTION_PACKAGES = (
    ("sage_hub", "kernels", "0.12"),
    ("sage_blackwell_hub", "kernels", "0.12"),
    ("flash_4_hub", "kernels", "0.12.3"),
    ("flash_hub", "kernels", "0.12"),
    ("flash_varlen_hub", "kernels", "0.12"),
    ("_flash_3_hub", "kernels", "0.12"),
    ("_flash_3_varlen_hub", "kernels", "0.12"),
    ("aiter_fa2_hub", "kernels", "0.12"),
    ("_flash_3", "flash_attn_interface", ""),
    ("_flash_varlen_3", "flash_attn_interface", ""),
    ("flash", "flash_attn", "2.6.3"),
    ("sage", "sageattention", "2.1.1"),
    ("_sage", "sageattention", "2.1.1"),
    ("xformers", "xformers", "0.0.29"),
)
# Distributions whose import name differs
DISTRIBUTIONS = {"flash_attn": "flash-attn"}
# Which transformer a LoRA goes into: "high" the first (Wan2.2 A14B's high-noise expert,
# and every other model's only one), "low" A14B's transformer_2, "both" each of them.
LORA_EXPERTS = ("high", "low", "both")
LORA_KEYS = ("path", "scale", "expert")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
# A cancelled render is waited for as long as the child shows signs of life (it sends a
# heartbeat every few seconds even inside one long step or a VAE decode); it is killed
# only after this much total silence. Well above one 14B step with offload (~40 s on an
# H100) or a 720p decode, so only a hung child is ever killed.
CANCEL_SILENCE_SECONDS = 300.0


@dataclass(frozen=True)
class RouteLora:
    """A LoRA a route applies to every request, into one of the transformers."""

    path: str  # a local file, or a repo id (owner/name[/file]) in the Hugging Face cache
    scale: float = 1.0
    expert: str = "high"  # one of LORA_EXPERTS


@dataclass(frozen=True)
class EngineOptions:
    weights: str
    local_files_only: bool = True
    cache_dir: str = ""  # Hugging Face cache for repo ids; "": huggingface_hub's default
    steps: int = 0  # 0: the model's recommended count
    guidance_scale: float = -1.0  # < 0: the model's recommended scale
    guidance_scale_2: float = -1.0  # Wan2.2 A14B low-noise expert; < 0: same as guidance_scale
    negative_prompt: str = ""  # "": the model's official one
    flow_shift: float = 0.0  # Wan only; 0: the model's official shift (TI2V/A14B 5, FLF2V 16)
    max_sequence_length: int = 0  # 0: the pipeline's default (Wan 512, LTX 128)
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on CPU
    device: str = "auto"  # auto: cuda if available, else cpu
    offload: str = "auto"  # auto: by GPU memory against the weights' size
    vae_tiling: bool | None = None  # None (auto): on for CUDA, off on CPU
    compile: bool = False  # regional torch.compile of the repeated transformer blocks
    first_block_cache: float = (
        0.0  # 0: off; e.g. 0.05..0.2 skips steps whose first block barely changes
    )
    taylorseer_cache: int = 0  # 0: off; N: a full forward every N steps, predicted between
    fp8: str = ""  # "": off; "layerwise" | "torchao" (see FP8_CHOICES)
    attention_backend: str = ""  # "": diffusers' default (PyTorch SDPA); e.g. "flash", "sage"
    resolution: str = "auto"  # native render tier; auto: 480p for requests <= 480 lines
    max_area: int = 0  # native render area in pixels; 0: the tier's area
    max_frames_per_segment: int = 0  # 0: the model's training length (TI2V-5B 121, 14B 81, LTX 257)
    pipeline: str = (
        "auto"  # LTX only: i2v (LTXImageToVideoPipeline) | condition (LTXConditionPipeline)
    )
    preset: str = ""  # sampling for distilled weights: ltx "distilled", wan "lightx2v" | "dmd"
    decode_timestep: float = 0.05  # LTX 0.9.1+ VAEs decode with a little noise
    decode_noise_scale: float = 0.025
    cancel_silence_seconds: float = CANCEL_SILENCE_SECONDS
    # LoRAs applied to every request of the route: (path, scale, expert) each
    loras: tuple[RouteLora, ...] = ()
    # LoRA paths or cached repo ids a request may name in its `loras` input
    lora_allowlist: tuple[str, ...] = ()
    # CUDA devices for one render: (): the device option decides; one id: that GPU; several:
    # one rank per GPU with context parallelism (see `parallel`). `i2v worker --gpus` sets it.
    gpus: tuple[int, ...] = ()
    # for tests: with device = cpu and several gpus, run that many CPU ranks (gloo) instead
    # of falling back to one process
    parallel_on_cpu: bool = False


_FIELDS = EngineOptions.__dataclass_fields__


def parse_options(options: dict[str, Any], engine: str) -> EngineOptions:
    """Check a route's options for the `engine` family ("wan" or "ltx")."""
    where = f"engine {engine!r}: options"
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise CatalogError(f"{where}: unknown keys {unknown}; known: {sorted(_FIELDS)}")
    weights = options.get("weights")
    if not isinstance(weights, str) or not weights.strip():
        raise CatalogError(
            f"{where}.weights: required (a folder saved with save_pretrained or a "
            f"Hugging Face repo id in your cache), got {weights!r}"
        )
    values: dict[str, Any] = {"weights": weights.strip()}
    for name in set(options) - {"weights", "loras", "lora_allowlist", "gpus"}:
        values[name] = _coerce(where, name, options[name])
    if "loras" in options:
        values["loras"] = _parse_loras(where, options["loras"])
    if "lora_allowlist" in options:
        values["lora_allowlist"] = _parse_allowlist(where, options["lora_allowlist"])
    if "gpus" in options:
        values["gpus"] = _parse_gpus(where, options["gpus"])
    parsed = EngineOptions(**values)
    _check_choice(where, "offload", parsed.offload, OFFLOAD_CHOICES)
    _check_choice(where, "dtype", parsed.dtype, DTYPE_CHOICES)
    _check_choice(where, "resolution", parsed.resolution, RESOLUTION_CHOICES)
    _check_choice(where, "pipeline", parsed.pipeline, LTX_PIPELINES)
    # one segment must hold the frames it shares with the one before (LTX Condition: 9, a
    # video condition; else the first) and one latent frame more (Wan 4, LTX 8)
    least = 5 if engine == "wan" else 17 if condition_pipeline(parsed) else 9
    if 0 < parsed.max_frames_per_segment < least:
        raise CatalogError(
            f"{where}.max_frames_per_segment: must be 0 (the model's) or at least {least}, "
            f"got {parsed.max_frames_per_segment}"
        )
    for name in ("steps", "max_sequence_length", "max_area", "max_frames_per_segment"):
        if getattr(parsed, name) < 0:
            raise CatalogError(f"{where}.{name}: must be 0 or more, got {getattr(parsed, name)}")
    if parsed.first_block_cache < 0:
        raise CatalogError(
            f"{where}.first_block_cache: must be 0 (off) or more, got {parsed.first_block_cache}"
        )
    if parsed.taylorseer_cache < 0:
        raise CatalogError(
            f"{where}.taylorseer_cache: must be 0 (off) or a step interval of 1 or more, "
            f"got {parsed.taylorseer_cache}"
        )
    _check_choice(where, "fp8", parsed.fp8, FP8_CHOICES)
    _check_speed_packages(where, parsed)
    if parsed.cancel_silence_seconds <= 0:
        raise CatalogError(
            f"{where}.cancel_silence_seconds: must be more than 0, "
            f"got {parsed.cancel_silence_seconds}"
        )
    if not (parsed.device == "auto" or parsed.device == "cpu" or parsed.device.startswith("cuda")):
        raise CatalogError(f"{where}.device: must be auto, cpu or cuda[:N], got {parsed.device!r}")
    _check_family(where, engine, parsed)
    _check_pairs(where, engine, parsed)
    _check_heads(where, engine, parsed)
    _check_lora_experts(where, engine, parsed)
    return parsed


def condition_pipeline(options: EngineOptions) -> bool:
    """Whether an LTX route runs `LTXConditionPipeline`: asked for, the `distilled` preset
    (its checkpoints are loaded as one) with `auto`, or `auto` on weights saved as one."""
    if options.pipeline != "auto":
        return options.pipeline == "condition"
    if options.preset == LTX_DISTILLED.name:
        return True
    index = read_model_index(options.weights, options.cache_dir)
    return index is not None and index.class_name == "LTXConditionPipeline"


def is_local_lora(path: str) -> bool:
    """Whether a LoRA reference names a file on this machine (else a Hugging Face repo id,
    `owner/name` or `owner/name/file.safetensors`, read from the cache)."""
    parts = path.split("/")
    return (
        path.startswith(("/", "./", "../", "~"))
        or Path(path).expanduser().is_file()
        or (path.endswith(WEIGHT_SUFFIXES) and len(parts) <= 2)
    )


def _check_lora_path(where: str, path: Any) -> str:
    if not isinstance(path, str) or not path.strip():
        raise CatalogError(f"{where}: a LoRA path must be a non-empty string, got {path!r}")
    path = path.strip()
    if is_local_lora(path) and not Path(path).expanduser().is_file():
        raise CatalogError(f"{where}: the LoRA file {path!r} does not exist")
    return path


def _parse_loras(where: str, value: Any) -> tuple[RouteLora, ...]:
    where = f"{where}.loras"
    if not isinstance(value, list):
        raise CatalogError(f"{where}: must be a list of tables {{path, scale, expert}}")
    parsed = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise CatalogError(f"{here}: must be a table {{path, scale, expert}}, got {item!r}")
        unknown = sorted(set(item) - set(LORA_KEYS))
        if unknown:
            raise CatalogError(f"{here}: unknown keys {unknown}; known: {list(LORA_KEYS)}")
        if "path" not in item:
            raise CatalogError(f"{here}.path: required")
        path = _check_lora_path(f"{here}.path", item["path"])
        scale = item.get("scale", 1.0)
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
        ):
            raise CatalogError(f"{here}.scale: must be a finite number, got {scale!r}")
        expert = item.get("expert", "high")
        _check_choice(here, "expert", expert, LORA_EXPERTS)
        parsed.append(RouteLora(path, float(scale), str(expert)))
    return tuple(parsed)


def _parse_allowlist(where: str, value: Any) -> tuple[str, ...]:
    where = f"{where}.lora_allowlist"
    if not isinstance(value, list):
        raise CatalogError(f"{where}: must be a list of LoRA paths or repo ids, got {value!r}")
    return tuple(_check_lora_path(f"{where}[{i}]", path) for i, path in enumerate(value))


def gpu_ids(value: Any) -> tuple[int, ...]:
    """CUDA device ids (the catalog's `gpus`, `i2v worker --gpus`), each named once;
    ValueError saying the rule otherwise."""
    if not isinstance(value, list | tuple) or any(
        isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0 for gpu in value
    ):
        raise ValueError(f"must be a list of CUDA device ids like [0, 1], got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"names a device twice, got {list(value)}")
    return tuple(value)


def _parse_gpus(where: str, value: Any) -> tuple[int, ...]:
    try:
        return gpu_ids(value)
    except ValueError as exc:
        raise CatalogError(f"{where}.gpus: {exc}") from exc


def _check_lora_experts(where: str, engine: str, parsed: EngineOptions) -> None:
    low = [lora.path for lora in parsed.loras if lora.expert != "high"]
    if low:
        _needs_transformer_2(
            f"{where}.loras",
            f"{low[0]!r} asks for the low-noise expert",
            engine,
            parsed,
            'use expert = "high"',
        )


def _needs_transformer_2(
    where: str, what: str, engine: str, parsed: EngineOptions, fix: str
) -> None:
    """Refuse an option that only Wan2.2 I2V-A14B's second expert can take, when the engine
    or (if they are here already) the weights have none."""
    if engine != "wan":
        raise CatalogError(
            f"{where}: {what}, which only Wan2.2 I2V-A14B has; the {engine} engine has one "
            f"transformer: {fix}"
        )
    index = read_model_index(parsed.weights, parsed.cache_dir)
    if index is not None and not index.has("transformer_2"):
        raise CatalogError(
            f"{where}: {what}, but the model {parsed.weights!r} ({index.class_name}) has no "
            f"transformer_2 (only Wan2.2 I2V-A14B has one): {fix}"
        )


def _check_preset(where: str, engine: str, parsed: EngineOptions) -> None:
    """The preset exists for this engine, fits the weights (when they are here) and has
    the LoRAs it was distilled with."""
    if not parsed.preset:
        return
    known = PRESETS.get(engine, {})
    if parsed.preset not in known:
        raise CatalogError(
            f"{where}.preset: must be one of {', '.join(known) or '(none)'} for the {engine} "
            f"engine, got {parsed.preset!r}"
        )
    preset = known[parsed.preset]
    fixed = preset.timesteps or preset.renoise_sigmas
    if fixed and parsed.steps and parsed.steps != preset.steps:
        raise CatalogError(
            f"{where}.steps: preset {preset.name!r} samples at the {preset.steps} fixed levels "
            f"its checkpoint was distilled at; another count falls back to the scheduler's own "
            f"spacing, got steps = {parsed.steps}; remove steps"
        )
    if preset.renoise_sigmas and parsed.flow_shift:
        raise CatalogError(
            f"{where}.flow_shift: preset {preset.name!r} samples at fixed noise levels, which "
            f"take no shift, got {parsed.flow_shift}; remove flow_shift"
        )
    found = read_variant(parsed.weights, parsed.cache_dir) if preset.variant else None
    refusal = wrong_family(preset, found.name, parsed.weights) if found else None
    if refusal:
        raise CatalogError(f"{where}.{refusal}")
    have = {lora.expert for lora in parsed.loras}
    for expert in preset.lora_experts:
        if expert not in have and "both" not in have:
            raise CatalogError(
                f"{where}.loras: preset {preset.name!r} needs its distillation LoRA on the "
                f'{expert}-noise expert (a loras entry with expert = "{expert}"); without it '
                f"{preset.steps} steps render noise"
            )


def _check_family(where: str, engine: str, parsed: EngineOptions) -> None:
    """Options that only one family has, and what the weights folder can tell already."""
    _check_preset(where, engine, parsed)
    if parsed.flow_shift < 0:
        raise CatalogError(
            f"{where}.flow_shift: must be 0 (the model's) or more, got {parsed.flow_shift}"
        )
    if parsed.flow_shift and engine != "wan":
        raise CatalogError(
            f"{where}.flow_shift: only the wan engine has a flow shift; LTX-Video's "
            "scheduler takes its timesteps from the checkpoint (see preset), remove flow_shift"
        )
    if parsed.guidance_scale_2 >= 0:
        _needs_transformer_2(
            f"{where}.guidance_scale_2",
            "the low-noise expert's guidance",
            engine,
            parsed,
            "remove guidance_scale_2",
        )


def _check_speed_packages(where: str, parsed: EngineOptions) -> None:
    """A speed option whose package is missing (or too old) fails the catalog load, not the
    child's load minutes later; found by name, without importing it (or torch)."""
    needs = []
    if parsed.fp8 == "torchao":
        needs.append(("fp8", parsed.fp8, "torchao", "0.18", "the fp8 extra"))
    backend = parsed.attention_backend
    for prefix, package, oldest in ATTENTION_PACKAGES:
        if backend == prefix or backend.startswith(prefix + "_"):
            extra = "the attention extra" if package == "kernels" else "a build from source"
            needs.append(("attention_backend", backend, package, oldest, extra))
            break
    for option, value, package, oldest, extra in needs:
        found = _installed_version(package)
        if found is None or (oldest and _version_tuple(found) < _version_tuple(oldest)):
            have = "is not installed" if found is None else f"is {found}"
            raise CatalogError(
                f"{where}.{option}: {value!r} needs the package "
                f"{DISTRIBUTIONS.get(package, package)}>={oldest or '0'}, which {have} here; "
                f"install it ({extra}, see docs/generative-models.md) or remove {option}"
            )


def _installed_version(package: str) -> str | None:
    """The installed version of the module `package`, "" when it has no distribution
    metadata, None when it cannot be imported."""
    if importlib.util.find_spec(package) is None:
        return None
    try:
        return importlib.metadata.version(DISTRIBUTIONS.get(package, package))
    except importlib.metadata.PackageNotFoundError:
        return ""


def _version_tuple(version: str) -> tuple[int, ...]:
    # release numbers only: "2.8.3.post2" -> (2, 8, 3), "2.2.0rc1" -> (2, 2, 0); ""
    # (a module without metadata, so unknown) passes any floor
    parts = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts) if parts else (1 << 30,)


# Speed options that cannot be combined, each with the reason; a catalog naming both
# fails at load instead of at the first render.
def _refused_pairs(parsed: EngineOptions) -> list[tuple[str, str, str]]:
    pairs = []
    # Each refusal below was seen failing on CUDA (an H200, diffusers 0.42.1, torch 2.11)
    # with torch._dynamo Unsupported: the hooks are wrapped in torch.compiler.disable,
    # which fullgraph compile cannot call. compile with offload=model renders.
    for cache in ("first_block_cache", "taylorseer_cache"):
        if parsed.compile and getattr(parsed, cache) > 0:
            # the cache hooks decide per step in torch.compiler.disable'd code (seen on CPU:
            # dynamo refuses it before any kernel is built); fullgraph cannot call it
            pairs.append(
                (
                    "compile",
                    cache,
                    "torch.compile(fullgraph) raises torch._dynamo Unsupported inside the "
                    "cache hook",
                )
            )
    if parsed.compile and parsed.offload in ("group", "sequential"):
        # group: ModuleGroup.onload_; sequential: accelerate's AlignDevicesHook.pre_forward
        pairs.append(
            (
                "compile",
                "offload",
                f"{parsed.offload} offload moves weights inside every block's forward, which "
                "fullgraph compile cannot trace (torch._dynamo Unsupported)",
            )
        )
    if parsed.compile and parsed.fp8 == "layerwise":
        # seen on a CPU too, before any kernel is built (torchao's float8 compiles)
        pairs.append(
            (
                "compile",
                "fp8",
                "the layerwise casting hook casts each layer with Module.to() in every "
                "forward, building torch.nn.Parameter objects, which fullgraph compile "
                "refuses (torch._dynamo Unsupported); "
                'use fp8 = "torchao" with compile',
            )
        )
    if parsed.first_block_cache > 0 and parsed.taylorseer_cache > 0:
        # both render together, but each skips work on its own schedule: TaylorSeer counts
        # steps per attention module, so on the blocks FirstBlockCache skips its counts
        # drift and it extrapolates from the wrong steps
        pairs.append(("first_block_cache", "taylorseer_cache", "use one step cache at a time"))
    for loras in ("loras", "lora_allowlist"):
        if parsed.fp8 == "torchao" and getattr(parsed, loras):
            # PEFT wraps nn.Linear; torchao's float8 weights are tensor subclasses it does
            # not know (not tried: no float8 matmuls here). Layerwise fp8 takes LoRAs: the
            # adapters cast their LoRA layers up (see adapters.py).
            pairs.append(
                (
                    "fp8",
                    loras,
                    'LoRA layers on torchao float8 weights are untried; use fp8 = "layerwise" '
                    "with LoRAs",
                )
            )
    if parsed.fp8 == "torchao" and parsed.offload in ("group", "sequential"):
        # not run here (no CUDA); reported upstream (diffusers issues 13281, 14433)
        pairs.append(
            (
                "fp8",
                "offload",
                f"{parsed.offload} offload moves each weight's data, which leaves torchao's "
                "float8 tensors (data and scales in inner tensors) on the wrong device; use "
                'offload = "model" or "none", or fp8 = "layerwise"',
            )
        )
    if parsed.attention_backend.startswith(("flash", "sage")) and parsed.dtype == "float32":
        # FlashAttention and SageAttention kernels take only half-precision inputs
        pairs.append(
            (
                "attention_backend",
                "dtype",
                f"{parsed.attention_backend} attention runs only in bfloat16 or float16",
            )
        )
    if parsed.preset == LTX_DISTILLED.name and parsed.pipeline == "i2v":
        pairs.append(
            (
                "preset",
                "pipeline",
                "the distilled preset needs LTXConditionPipeline (image_cond_noise_scale)",
            )
        )
    return pairs


# Why a family's render cannot be split across GPUs, seen with two CPU ranks (diffusers
# 0.42.1): such an engine renders on the first of its `gpus` alone, so the refusals of
# context parallelism below do not apply to it. The one table of which family splits:
# `parallel.plan_launch` and the catalog checks both read it.
UNSPLIT = {
    # image conditioning gives LTX a timestep per token, which diffusers' LTX plan does not
    # split (the first block adds a full-length embedding to half the sequence); split
    # too, the cross-attention mask, split with the prompt, no longer matches the prompt
    # keys Ulysses gathers
    "ltx": "diffusers' LTX context-parallel plan does not fit image-to-video",
}
# The transformers a context-parallel group splits (A14B has two)
SPLIT_MODELS = ("transformer", "transformer_2")


def heads_refusal(ranks: int, heads: int) -> str:
    """Why `ranks` GPUs cannot split a transformer with `heads` attention heads; "" when
    they can (Ulysses hands each rank whole heads)."""
    if heads % ranks == 0:
        return ""
    working = ", ".join(str(n) for n in range(2, heads + 1) if heads % n == 0)
    return (
        f"{ranks} GPUs do not divide the transformer's {heads} attention heads; use a number "
        f"of GPUs that does ({working or 'none'})"
    )


def _check_heads(where: str, engine: str, parsed: EngineOptions) -> None:
    """Refuse now, when the weights are here, a group whose GPUs do not divide the
    attention heads (each rank would otherwise find out after loading the weights)."""
    if len(parsed.gpus) < 2 or engine in UNSPLIT:
        return
    index = read_model_index(parsed.weights, parsed.cache_dir)
    if index is None:
        return  # not here yet: the group checks again after loading
    for model in SPLIT_MODELS:
        if not index.has(model):
            continue
        try:
            config = json.loads((index.folder / model / "config.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        heads = config.get("num_attention_heads") if isinstance(config, dict) else None
        if isinstance(heads, int) and heads > 0 and heads_refusal(len(parsed.gpus), heads):
            raise CatalogError(
                f"{where}.gpus: {list(parsed.gpus)}: {model} of {parsed.weights!r}: "
                + heads_refusal(len(parsed.gpus), heads)
            )


# Attention backends that diffusers 0.42.1 can split across ranks
# (`_AttentionBackendRegistry._supports_context_parallel`); "" is its default, native SDPA.
CONTEXT_PARALLEL_BACKENDS = (
    "",
    "flash",
    "flash_hub",
    "flash_varlen_hub",
    "_flash_3_hub",
    "_flash_3_varlen_hub",
    "native",
    "_native_cudnn",
    "_native_flash",
    "sage",
    "sage_hub",
)


def _parallel_refusals(parsed: EngineOptions) -> list[tuple[str, str, str]]:
    """What context parallelism over several GPUs (`gpus`) cannot be combined with."""
    pairs = []
    if parsed.offload not in ("auto", "none"):
        # not run: offload hooks would move weights under the context-parallel hooks
        pairs.append(("gpus", "offload", "each rank keeps the whole pipeline on its GPU"))
    if parsed.attention_backend not in CONTEXT_PARALLEL_BACKENDS:
        backends = ", ".join(b for b in CONTEXT_PARALLEL_BACKENDS if b)
        pairs.append(
            ("gpus", "attention_backend", f"diffusers splits attention only with {backends}")
        )
    if parsed.first_block_cache > 0:
        # the skip is decided from the first block's output, which each rank sees only a
        # slice of: ranks that decide differently wait for each other forever
        pairs.append(("gpus", "first_block_cache", "each rank would decide alone to skip a step"))
    if parsed.device.startswith("cuda:"):
        pairs.append(("gpus", "device", "gpus names the CUDA devices itself"))
    if parsed.compile:
        # seen with two CPU ranks (diffusers 0.42.1, torch 2.13), before any kernel is built
        pairs.append(
            (
                "gpus",
                "compile",
                "torch.compile(fullgraph) raises torch._dynamo Unsupported inside diffusers' "
                "context-parallel hook on the first transformer block",
            )
        )
    return pairs


def _check_pairs(where: str, engine: str, parsed: EngineOptions) -> None:
    pairs = _refused_pairs(parsed)
    if len(parsed.gpus) > 1 and engine not in UNSPLIT:
        pairs.extend(_parallel_refusals(parsed))
    for first, second, reason in pairs:
        raise CatalogError(
            f"{where}: {first} = {getattr(parsed, first)!r} cannot be combined with "
            f"{second} = {getattr(parsed, second)!r}: {reason}; remove one of them"
        )


def _coerce(where: str, name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if name == "vae_tiling":
        if value is None or value == "auto":
            return None
        kind = "bool"
    if kind == "bool":
        if not isinstance(value, bool):
            raise CatalogError(f"{where}.{name}: must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CatalogError(f"{where}.{name}: must be an integer, got {value!r}")
        return value
    if kind == "float":
        # TOML reads nan and inf: a NaN shift or guidance renders noise, an infinite
        # silence limit breaks the cancel's wait
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise CatalogError(f"{where}.{name}: must be a finite number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise CatalogError(f"{where}.{name}: must be a string, got {value!r}")
    return value


def _check_choice(where: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        listed = ", ".join(choice or '""' for choice in choices)
        raise CatalogError(f"{where}.{name}: must be one of {listed}, got {value!r}")
