"""The catalog's `options` table for the diffusers engines, parsed and checked once.

Every key has a default; `weights` is the only one without. Unknown keys are
refused so that a typo in a catalog (`ofload = "model"`) fails at start-up
instead of being silently ignored. Values stay plain Python so the parsed
options pickle into the spawned child unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from i2v.domain.catalog import CatalogError
from i2v.engines.diffusers.weights import read_model_index

OFFLOAD_CHOICES = ("auto", "none", "model", "group", "sequential")
DTYPE_CHOICES = ("auto", "bfloat16", "float16", "float32")
RESOLUTION_CHOICES = ("auto", "480p", "720p")
LTX_PIPELINES = ("auto", "i2v", "condition")
LTX_PRESETS = ("", "distilled")
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
    attention_backend: str = ""  # "": diffusers' default (PyTorch SDPA); e.g. "flash", "sage"
    resolution: str = "auto"  # native render tier; auto: 480p for requests <= 480 lines
    max_area: int = 0  # native render area in pixels; 0: the tier's area
    max_frames_per_segment: int = 0  # 0: the model's training length (TI2V-5B 121, 14B 81, LTX 257)
    pipeline: str = (
        "auto"  # LTX only: i2v (LTXImageToVideoPipeline) | condition (LTXConditionPipeline)
    )
    preset: str = ""  # LTX only: "distilled" (0.9.7/0.9.8 distilled timesteps and guidance)
    decode_timestep: float = 0.05  # LTX 0.9.1+ VAEs decode with a little noise
    decode_noise_scale: float = 0.025
    cancel_silence_seconds: float = CANCEL_SILENCE_SECONDS
    # LoRAs applied to every request of the route: (path, scale, expert) each
    loras: tuple[tuple[str, float, str], ...] = ()
    # LoRA paths or cached repo ids a request may name in its `loras` input
    lora_allowlist: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    for name in set(options) - {"weights", "loras", "lora_allowlist"}:
        values[name] = _coerce(where, name, options[name])
    if "loras" in options:
        values["loras"] = _parse_loras(where, options["loras"])
    if "lora_allowlist" in options:
        values["lora_allowlist"] = _parse_allowlist(where, options["lora_allowlist"])
    parsed = EngineOptions(**values)
    _check_choice(where, "offload", parsed.offload, OFFLOAD_CHOICES)
    _check_choice(where, "dtype", parsed.dtype, DTYPE_CHOICES)
    _check_choice(where, "resolution", parsed.resolution, RESOLUTION_CHOICES)
    _check_choice(where, "pipeline", parsed.pipeline, LTX_PIPELINES)
    for name in ("steps", "max_sequence_length", "max_area", "max_frames_per_segment"):
        if getattr(parsed, name) < 0:
            raise CatalogError(f"{where}.{name}: must be 0 or more, got {getattr(parsed, name)}")
    if parsed.first_block_cache < 0:
        raise CatalogError(
            f"{where}.first_block_cache: must be 0 (off) or more, got {parsed.first_block_cache}"
        )
    if parsed.cancel_silence_seconds <= 0:
        raise CatalogError(
            f"{where}.cancel_silence_seconds: must be more than 0, "
            f"got {parsed.cancel_silence_seconds}"
        )
    if not (parsed.device == "auto" or parsed.device == "cpu" or parsed.device.startswith("cuda")):
        raise CatalogError(f"{where}.device: must be auto, cpu or cuda[:N], got {parsed.device!r}")
    _check_family(where, engine, parsed)
    _check_pairs(where, parsed)
    _check_lora_experts(where, engine, parsed)
    return parsed


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


def _parse_loras(where: str, value: Any) -> tuple[tuple[str, float, str], ...]:
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
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise CatalogError(f"{here}.scale: must be a number, got {scale!r}")
        expert = item.get("expert", "high")
        _check_choice(here, "expert", expert, LORA_EXPERTS)
        parsed.append((path, float(scale), str(expert)))
    return tuple(parsed)


def _parse_allowlist(where: str, value: Any) -> tuple[str, ...]:
    where = f"{where}.lora_allowlist"
    if not isinstance(value, list):
        raise CatalogError(f"{where}: must be a list of LoRA paths or repo ids, got {value!r}")
    return tuple(_check_lora_path(f"{where}[{i}]", path) for i, path in enumerate(value))


def _check_lora_experts(where: str, engine: str, parsed: EngineOptions) -> None:
    low = [path for path, _, expert in parsed.loras if expert != "high"]
    if not low:
        return
    if engine != "wan":
        raise CatalogError(
            f"{where}.loras: {low[0]!r} asks for the low-noise expert, which only Wan2.2 "
            f'I2V-A14B has; the {engine} engine has one transformer: use expert = "high"'
        )
    index = read_model_index(parsed.weights, parsed.cache_dir)
    if index is not None and not index.has("transformer_2"):
        raise CatalogError(
            f"{where}.loras: {low[0]!r} asks for the low-noise expert, but the model "
            f"{parsed.weights!r} ({index.class_name}) has no transformer_2 (only Wan2.2 "
            'I2V-A14B has one); use expert = "high"'
        )


def _check_family(where: str, engine: str, parsed: EngineOptions) -> None:
    """Options that only one family has, and what the weights folder can tell already."""
    _check_choice(where, "preset", parsed.preset, LTX_PRESETS)
    if engine != "ltx" and parsed.preset:
        raise CatalogError(
            f"{where}.preset: only the ltx engine has presets, got {parsed.preset!r}"
        )
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
        if engine != "wan":
            raise CatalogError(
                f"{where}.guidance_scale_2: only Wan2.2 I2V-A14B has a second transformer; "
                f"the {engine} engine has none"
            )
        index = read_model_index(parsed.weights, parsed.cache_dir)
        if index is not None and not index.has("transformer_2"):
            raise CatalogError(
                f"{where}.guidance_scale_2: the model {parsed.weights!r} ({index.class_name}) "
                "has no transformer_2 (only Wan2.2 I2V-A14B has one); remove guidance_scale_2"
            )


# Speed options that cannot be combined, each with the reason; a catalog naming both
# fails at load instead of at the first render.
def _refused_pairs(parsed: EngineOptions) -> list[tuple[str, str, str]]:
    pairs = []
    # Each refusal below was seen failing on CUDA (an H200, diffusers 0.42.1, torch 2.11)
    # with torch._dynamo Unsupported: the hooks are wrapped in torch.compiler.disable,
    # which fullgraph compile cannot call. compile with offload=model renders.
    if parsed.compile and parsed.first_block_cache > 0:
        # the cache hook's data-dependent skip is a graph break; fullgraph compile refuses it
        pairs.append(
            (
                "compile",
                "first_block_cache",
                "torch.compile(fullgraph) raises torch._dynamo Unsupported inside the cache hook",
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
    if parsed.attention_backend.startswith(("flash", "sage")) and parsed.dtype == "float32":
        # FlashAttention and SageAttention kernels take only half-precision inputs
        pairs.append(
            (
                "attention_backend",
                "dtype",
                f"{parsed.attention_backend} attention runs only in bfloat16 or float16",
            )
        )
    if parsed.preset == "distilled" and parsed.pipeline == "i2v":
        pairs.append(
            (
                "preset",
                "pipeline",
                "the distilled preset needs LTXConditionPipeline (image_cond_noise_scale)",
            )
        )
    return pairs


def _check_pairs(where: str, parsed: EngineOptions) -> None:
    for first, second, reason in _refused_pairs(parsed):
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
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CatalogError(f"{where}.{name}: must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise CatalogError(f"{where}.{name}: must be a string, got {value!r}")
    return value


def _check_choice(where: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise CatalogError(f"{where}.{name}: must be one of {', '.join(choices)}, got {value!r}")
