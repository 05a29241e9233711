"""The job spec: the one typed description of a job, from the HTTP body to the engine.

Built once at the edge (either API dialect, or `i2v generate`), stored as the prediction
row's parameters (`to_json`), read back by the worker (`from_json`) and handed to the
engine as it is, inside a `GenerationRequest` with the decoded pixels. Nothing on the way
rebuilds it field by field, so a knob added here reaches every engine at once.

Where a job's knobs come from:
    the request     prompt, seed, frames, size, negative prompt, steps, guidance,
                    flow shift, LoRAs
    the route       `engine_options`: the catalog route's `options` table (weights,
                    offload, ...), kept with the job so a queued job renders with the
                    route as it was when the job was accepted
    the server      nothing: settings never ride on a job

`SCHEMA_VERSION` is written with every spec. `from_json` reads every version ever
written, so rows queued before an upgrade still render after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


class SpecError(ValueError):
    """A stored spec that cannot be read: a bug or a newer server's row, never a user's."""


@dataclass(frozen=True)
class Lora:
    """A LoRA adapter applied to the model for one job: a file or a cached repo id."""

    path: str
    scale: float = 1.0


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to render one job, besides the input pixels."""

    image_key: str  # storage key of the validated input image (as the client sent it)
    prompt: str
    seed: int  # resolved at the edge: never -1 here
    width: int  # output size
    height: int
    frames: int  # output frames, the first being the input image
    fps: int
    aspect_ratio: str = ""  # what the size was made from, e.g. "16:9"
    camera_fixed: bool = False
    last_image_key: str | None = None
    negative_prompt: str = ""  # "": the model's own default
    num_inference_steps: int | None = None  # None: the route's, else the model's
    guidance_scale: float | None = None
    flow_shift: float | None = None  # Wan's sampling shift; None: the route's, else the model's
    loras: tuple[Lora, ...] = ()
    engine_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The storage keys of the job's inputs."""
        return (self.image_key,) + ((self.last_image_key,) if self.last_image_key else ())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "image_key": self.image_key,
            "prompt": self.prompt,
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": self.fps,
            "aspect_ratio": self.aspect_ratio,
            "camera_fixed": self.camera_fixed,
            "last_image_key": self.last_image_key,
            "negative_prompt": self.negative_prompt,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "flow_shift": self.flow_shift,
            "loras": [{"path": lora.path, "scale": lora.scale} for lora in self.loras],
            "engine_options": dict(self.engine_options),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        version = data.get("schema", 0)
        if version == 0:
            data = _from_version_0(data)
        elif version != SCHEMA_VERSION:
            raise SpecError(
                f"job spec schema {version!r} is not one this server reads "
                f"(it reads 0 to {SCHEMA_VERSION}); was it written by a newer i2v?"
            )
        try:
            return cls(
                image_key=str(data["image_key"]),
                prompt=str(data["prompt"]),
                seed=int(data["seed"]),
                width=int(data["width"]),
                height=int(data["height"]),
                frames=int(data["frames"]),
                fps=int(data["fps"]),
                aspect_ratio=str(data.get("aspect_ratio", "")),
                camera_fixed=bool(data.get("camera_fixed", False)),
                last_image_key=data.get("last_image_key") or None,
                negative_prompt=str(data.get("negative_prompt") or ""),
                num_inference_steps=_optional(int, data.get("num_inference_steps")),
                guidance_scale=_optional(float, data.get("guidance_scale")),
                flow_shift=_optional(float, data.get("flow_shift")),
                loras=tuple(
                    Lora(str(item["path"]), float(item.get("scale", 1.0)))
                    for item in data.get("loras", [])
                ),
                engine_options=dict(data.get("engine_options", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"job spec is malformed: {type(exc).__name__}: {exc}") from exc


def _optional(kind: type[Any], value: Any) -> Any:
    return None if value is None else kind(value)


def _from_version_0(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rows written before the spec was versioned: the route's options were
    `route_options`, the request's knobs a dict named `engine_options`."""
    knobs = dict(data.get("engine_options", {}))
    upgraded = {k: v for k, v in data.items() if k not in ("route_options", "engine_options")}
    upgraded.update(
        negative_prompt=knobs.get("negative_prompt", ""),
        num_inference_steps=knobs.get("num_inference_steps"),
        guidance_scale=knobs.get("guidance_scale"),
        engine_options=dict(data.get("route_options", {})),
        fps=data.get("fps", 24),
    )
    return upgraded
