"""Wan 2.x image-to-video through diffusers' `WanImageToVideoPipeline`.

Runs inside the engine's child process. One class covers the Wan checkpoints
that share the pipeline, told apart by the loaded components:

    Wan2.2 TI2V-5B   vae (z_dim 48, 16x spatial), transformer, `expand_timesteps`;
                     1280x704, 121 frames, 24 fps native; 50 steps, guidance 5.0.
                     The recommended default.
    Wan2.2 I2V-A14B  transformer (high noise) + transformer_2 (low noise), split
                     at `boundary_ratio`; 480p/720p, 81 frames; 40 steps, 3.5.
    Wan2.1 I2V 14B   image_encoder (CLIP) + image_processor; 480p or 720p, 81 frames.
    Wan2.1 FLF2V     as I2V, transformer with `pos_embed_seq_len`; takes `last_image`.

Components: tokenizer (umt5), text_encoder (UMT5EncoderModel), vae
(AutoencoderKLWan), transformer(s) (WanTransformer3DModel), scheduler, and for
2.1 the CLIP image encoder. Sides are multiples of vae_scale x patch (32 for
TI2V-5B, 16 for the 14B models); frame counts are 4k + 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from diffusers import WanImageToVideoPipeline
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.engines.diffusers import loading, sizing
from i2v.engines.diffusers.messages import Render
from i2v.engines.diffusers.options import EngineOptions

logger = logging.getLogger(__name__)

# step(done, total, stage): reports progress and raises to stop the render
StepHook = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Variant:
    name: str
    steps: int
    guidance_scale: float
    max_frames: int
    areas: dict[str, int]
    last_image: bool


TI2V_5B = Variant("Wan2.2 TI2V-5B", 50, 5.0, 121, sizing.WAN_TI2V_AREAS, last_image=False)
I2V_A14B = Variant("Wan2.2 I2V-A14B", 40, 3.5, 81, sizing.WAN_14B_AREAS, last_image=True)
I2V_21 = Variant("Wan2.1 I2V-14B", 40, 5.0, 81, sizing.WAN_14B_AREAS, last_image=False)
FLF2V_21 = Variant("Wan2.1 FLF2V-14B", 40, 5.0, 81, sizing.WAN_14B_AREAS, last_image=True)


class WanRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.loaded = loading.load_pipeline(WanImageToVideoPipeline, options)
        self.pipe = self.loaded.pipe
        self.variant = detect_variant(self.pipe)
        transformer = self.pipe.transformer or self.pipe.transformer_2
        self.multiple = self.pipe.vae_scale_factor_spatial * transformer.config.patch_size[1]
        self.frame_step = self.pipe.vae_scale_factor_temporal
        self.description = f"{self.variant.name}: {self.loaded.description}"

    def check_inputs(self, render: Render) -> None:
        if render.last_image is not None and not self.variant.last_image:
            raise EngineError(
                f"last_image: {self.variant.name} does not take a last frame; "
                "use Wan2.1 FLF2V or Wan2.2 I2V-A14B weights"
            )
        if render.last_image is None and self.variant is FLF2V_21:
            raise EngineError(
                f"last_image: {self.variant.name} needs a last frame; use I2V weights for one image"
            )
        if render.frames < 1:
            raise EngineError(f"frames: must be at least 1, got {render.frames}")
        if not render.prompt.strip():
            raise EngineError("prompt: Wan needs a non-empty prompt")

    def __call__(self, render: Render, step: StepHook) -> Iterator[np.ndarray]:
        options = self.options

        # 1. Check inputs. Raise error if not correct
        self.check_inputs(render)

        # 2. Define call parameters
        tier = sizing.resolution_tier(render.width, render.height, options.resolution)
        limit = options.max_frames_per_segment or self.variant.max_frames
        plan = sizing.plan(
            render.width,
            render.height,
            render.frames,
            area=options.max_area or self.variant.areas[tier],
            multiple=self.multiple,
            step=self.frame_step,
            max_frames=limit,
        )
        if self.variant is FLF2V_21 and len(plan.segments) > 1:
            # every FLF2V pass needs both ends; a chain has no last frame for its inner segments
            raise EngineError(
                f"frames: {self.variant.name} renders at most {limit} frames in one "
                f"pass and cannot chain segments, got {render.frames}"
            )
        steps = int(
            render.settings.get("num_inference_steps") or options.steps or self.variant.steps
        )
        guidance = _first_set(
            render.settings.get("guidance_scale"),
            options.guidance_scale,
            self.variant.guidance_scale,
        )
        guidance_2 = options.guidance_scale_2 if options.guidance_scale_2 >= 0 else None
        negative = render.settings.get("negative_prompt") or options.negative_prompt or None
        extra = (
            {"max_sequence_length": options.max_sequence_length}
            if options.max_sequence_length
            else {}
        )
        total_steps = steps * len(plan.segments)

        # 3. Prepare the conditioning images at the native size (cover + centre crop)
        first = sizing.fit(render.image, plan.width, plan.height)
        last = (
            sizing.fit(render.last_image, plan.width, plan.height)
            if render.last_image is not None
            else None
        )

        # 4. Denoise and decode each segment; the next one starts from this one's last frame
        delivered = 0
        for index, num_frames in enumerate(plan.segments):
            offset = index * steps
            is_last = index == len(plan.segments) - 1
            if len(plan.segments) > 1:
                logger.info("%s", plan.describe_segment(index))

            def on_step_end(pipe, i, t, callback_kwargs, offset=offset):  # type: ignore[no-untyped-def]
                step(offset + i + 1, total_steps, "denoising")
                return callback_kwargs

            output = self.pipe(
                image=Image.fromarray(first),
                last_image=Image.fromarray(last) if (last is not None and is_last) else None,
                prompt=render.prompt,
                negative_prompt=negative,
                height=plan.height,
                width=plan.width,
                num_frames=num_frames,
                num_inference_steps=steps,
                guidance_scale=guidance,
                guidance_scale_2=guidance_2,
                generator=loading.generator(render.seed + index),
                output_type="np",
                callback_on_step_end=on_step_end,
                **extra,
            )
            step(offset + steps, total_steps, "decoded")

            # 5. Frames: skip the repeated first frame of later segments, stop at the count
            video = loading.to_uint8(output.frames[0])
            for frame in video[1:] if index else video:
                if delivered == plan.frames:
                    break
                delivered += 1
                yield np.ascontiguousarray(frame)
            first = video[-1]


def detect_variant(pipe: Any) -> Variant:
    if pipe.config.expand_timesteps:
        return TI2V_5B
    if pipe.transformer_2 is not None:
        return I2V_A14B
    if pipe.transformer is not None and pipe.transformer.config.pos_embed_seq_len:
        return FLF2V_21
    return I2V_21


def _first_set(request: object, option: float, default: float) -> float:
    if isinstance(request, int | float) and not isinstance(request, bool):
        return float(request)
    return option if option >= 0 else default
