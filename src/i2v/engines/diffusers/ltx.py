"""LTX-Video image-to-video through diffusers' `LTXImageToVideoPipeline` or
`LTXConditionPipeline`.

Runs inside the engine's child process. Components: tokenizer (T5TokenizerFast),
text_encoder (T5EncoderModel), transformer (LTXVideoTransformer3DModel), vae
(AutoencoderKLLTXVideo), scheduler (FlowMatchEulerDiscreteScheduler).

Sides must be divisible by 32 and frame counts are 8k + 1 (121 and 241 both
are). 0.9.1+ VAEs decode at `decode_timestep` 0.05 with noise 0.025. Distilled
checkpoints (0.9.7/0.9.8-distilled) want guidance 1.0 and 4-10 steps; set them
in the route's options. The `condition` pipeline takes a last frame as a second
condition at the final frame index; the plain i2v pipeline does not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.engines.diffusers import loading, sizing
from i2v.engines.diffusers.messages import Render
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.weights import find_weights

logger = logging.getLogger(__name__)

StepHook = Callable[[int, int, str], None]

STEPS = 40
GUIDANCE_SCALE = 3.0
MAX_FRAMES = 257  # 0.9.x generates up to 257 frames in one pass
SIDE_MULTIPLE = 32  # LTX's check_inputs refuses anything else


class LTXRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        pipeline_class = choose_pipeline(options)
        self.loaded = loading.load_pipeline(pipeline_class, options)
        self.pipe = self.loaded.pipe
        self.condition = isinstance(self.pipe, LTXConditionPipeline)
        self.frame_step = self.pipe.vae_temporal_compression_ratio
        self.description = f"LTX-Video: {self.loaded.description}"

    def check_inputs(self, render: Render) -> None:
        if render.last_image is not None and not self.condition:
            raise EngineError(
                "last_image: LTXImageToVideoPipeline takes one image; "
                'set the route option pipeline = "condition" for first/last frame'
            )
        if render.frames < 1:
            raise EngineError(f"frames: must be at least 1, got {render.frames}")

    def __call__(self, render: Render, step: StepHook) -> Iterator[np.ndarray]:
        options = self.options

        # 1. Check inputs. Raise error if not correct
        self.check_inputs(render)

        # 2. Define call parameters
        tier = sizing.resolution_tier(render.width, render.height, options.resolution)
        plan = sizing.plan(
            render.width,
            render.height,
            render.frames,
            area=options.max_area or sizing.LTX_AREAS[tier],
            multiple=SIDE_MULTIPLE,
            step=self.frame_step,
            max_frames=options.max_frames_per_segment or MAX_FRAMES,
        )
        steps = int(render.settings.get("num_inference_steps") or options.steps or STEPS)
        guidance = _first_set(render.settings.get("guidance_scale"), options.guidance_scale)
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
                **self._images(first, last if is_last else None, num_frames),
                prompt=render.prompt,
                negative_prompt=negative,
                height=plan.height,
                width=plan.width,
                num_frames=num_frames,
                frame_rate=render.fps,
                num_inference_steps=steps,
                guidance_scale=guidance,
                decode_timestep=options.decode_timestep,
                decode_noise_scale=options.decode_noise_scale,
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

    def _images(
        self, first: np.ndarray, last: np.ndarray | None, num_frames: int
    ) -> dict[str, Any]:
        if not self.condition:
            return {"image": Image.fromarray(first)}
        conditions = [LTXVideoCondition(image=Image.fromarray(first), frame_index=0)]
        if last is not None:
            conditions.append(
                LTXVideoCondition(image=Image.fromarray(last), frame_index=num_frames - 1)
            )
        return {"conditions": conditions}


def choose_pipeline(options: EngineOptions) -> Any:
    """`auto`: the condition pipeline when the weights were saved as one, else i2v."""
    if options.pipeline == "condition":
        return LTXConditionPipeline
    if options.pipeline == "i2v":
        return LTXImageToVideoPipeline
    found = find_weights(options.weights, Path(options.cache_dir) if options.cache_dir else None)
    index = Path(found.where) / "model_index.json"
    if found.present and index.is_file():
        class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        if class_name == "LTXConditionPipeline":
            return LTXConditionPipeline
    return LTXImageToVideoPipeline


def _first_set(request: object, option: float) -> float:
    if isinstance(request, int | float) and not isinstance(request, bool):
        return float(request)
    return option if option >= 0 else GUIDANCE_SCALE
