"""The catalog's `options` table for the diffusers engines, parsed and checked once.

Every key has a default; `weights` is the only one without. Unknown keys are
refused so that a typo in a catalog (`ofload = "model"`) fails at start-up
instead of being silently ignored. Values stay plain Python so the parsed
options pickle into the spawned child unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from i2v.domain.catalog import CatalogError

OFFLOAD_CHOICES = ("auto", "none", "model", "group", "sequential")
DTYPE_CHOICES = ("auto", "bfloat16", "float16", "float32")
RESOLUTION_CHOICES = ("auto", "480p", "720p")
LTX_PIPELINES = ("auto", "i2v", "condition")
CANCEL_GRACE_SECONDS = 30.0  # a step of a 14B model at 720p takes ~40 s on one H100 with offload


@dataclass(frozen=True)
class EngineOptions:
    weights: str
    local_files_only: bool = True
    cache_dir: str = ""  # Hugging Face cache for repo ids; "": huggingface_hub's default
    steps: int = 0  # 0: the model's recommended count
    guidance_scale: float = -1.0  # < 0: the model's recommended scale
    guidance_scale_2: float = -1.0  # Wan2.2 A14B low-noise expert; < 0: same as guidance_scale
    negative_prompt: str = ""
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
    decode_timestep: float = 0.05  # LTX 0.9.1+ VAEs decode with a little noise
    decode_noise_scale: float = 0.025
    cancel_grace_seconds: float = CANCEL_GRACE_SECONDS

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
    for name in set(options) - {"weights"}:
        values[name] = _coerce(where, name, options[name])
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
    if parsed.cancel_grace_seconds <= 0:
        raise CatalogError(
            f"{where}.cancel_grace_seconds: must be more than 0, got {parsed.cancel_grace_seconds}"
        )
    if not (parsed.device == "auto" or parsed.device == "cpu" or parsed.device.startswith("cuda")):
        raise CatalogError(f"{where}.device: must be auto, cpu or cuda[:N], got {parsed.device!r}")
    return parsed


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
