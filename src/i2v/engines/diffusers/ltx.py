"""LTX-Video image-to-video through diffusers' `LTXImageToVideoPipeline` or
`LTXConditionPipeline`.

Runs inside the engine's child process. Components: tokenizer (T5TokenizerFast),
text_encoder (T5EncoderModel), transformer (LTXVideoTransformer3DModel), vae
(AutoencoderKLLTXVideo), scheduler (FlowMatchEulerDiscreteScheduler).

Sides must be divisible by 32 and frame counts are 8k + 1 (121 and 241 both
are). 0.9.1+ VAEs decode at `decode_timestep` 0.05 with noise 0.025. Distilled
checkpoints (0.9.7/0.9.8-distilled) take `preset = "distilled"`: their own eight
timesteps, guidance 1.0, guidance_rescale 0.7 and image_cond_noise_scale 0.0, through
the condition pipeline (diffusers' ltx_video docs). The `condition` pipeline takes a
last frame as a second condition at the final frame index; the plain i2v pipeline
does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import loading, segments, sizing
from i2v.engines.diffusers.adapters import Adapters
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.segments import StepHook
from i2v.engines.diffusers.weights import read_model_index

STEPS = 40
GUIDANCE_SCALE = 3.0
MAX_FRAMES = 257  # 0.9.x generates up to 257 frames in one pass
SIDE_MULTIPLE = 32  # LTX's check_inputs refuses anything else
# LTX-Video's own inference script's default (ltx_video/inference.py)
NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


@dataclass(frozen=True)
class Preset:
    """Sampling a checkpoint was distilled for; `timesteps` fixes the step count."""

    timesteps: tuple[float, ...] | None
    guidance_scale: float
    guidance_rescale: float
    image_cond_noise_scale: float | None  # None: the pipeline's default (Condition only)


DEFAULT = Preset(None, GUIDANCE_SCALE, 0.0, None)
# LTX-Video 0.9.7 / 0.9.8 distilled, from diffusers' ltx_video docs (first pass)
DISTILLED = Preset(
    timesteps=(1000, 993, 987, 981, 975, 909, 725, 0.03),
    guidance_scale=1.0,
    guidance_rescale=0.7,
    image_cond_noise_scale=0.0,
)
PRESETS = {"": DEFAULT, "distilled": DISTILLED}


class LTXRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        pipeline_class = choose_pipeline(options)
        self.loaded = loading.load_pipeline(pipeline_class, options)
        self.pipe = self.loaded.pipe
        self.condition = isinstance(self.pipe, LTXConditionPipeline)
        self.preset = PRESETS[options.preset]
        self.frame_step = self.pipe.vae_temporal_compression_ratio
        self.adapters = Adapters(self.pipe, options)
        self.description = f"LTX-Video: {self.loaded.description}"

    def check_inputs(self, request: GenerationRequest) -> None:
        if request.last_image is not None and not self.condition:
            raise EngineError(
                "last_image: LTXImageToVideoPipeline takes one image; "
                'set the route option pipeline = "condition" for first/last frame'
            )
        if request.frames < 1:
            raise EngineError(f"frames: must be at least 1, got {request.frames}")

    def __call__(self, request: GenerationRequest, step: StepHook) -> Iterator[np.ndarray]:
        options = self.options

        # 1. Check inputs. Raise error if not correct
        self.check_inputs(request)
        # the route's and the request's LoRAs, loaded once per child and swapped per render
        self.adapters.apply(request.spec.loras)

        # 2. Define call parameters
        tier = sizing.resolution_tier(request.width, request.height, options.resolution)
        plan = sizing.plan(
            request.width,
            request.height,
            request.frames,
            area=options.max_area or sizing.LTX_AREAS[tier],
            multiple=SIDE_MULTIPLE,
            step=self.frame_step,
            max_frames=options.max_frames_per_segment or MAX_FRAMES,
        )
        preset = self.preset
        default_steps = len(preset.timesteps) if preset.timesteps else STEPS
        knobs = segments.sampling(
            request.spec,
            options,
            steps=default_steps,
            guidance_scale=preset.guidance_scale,
            negative_prompt=NEGATIVE_PROMPT,
        )
        extra: dict[str, Any] = (
            {"max_sequence_length": options.max_sequence_length}
            if options.max_sequence_length
            else {}
        )
        if preset.timesteps and knobs.steps == len(preset.timesteps):
            # a request (or route) asking another step count gets the scheduler's own spacing
            extra["timesteps"] = list(preset.timesteps)
        if preset.guidance_rescale:
            extra["guidance_rescale"] = preset.guidance_rescale
        if preset.image_cond_noise_scale is not None and self.condition:
            extra["image_cond_noise_scale"] = preset.image_cond_noise_scale

        # 3. Prepare the conditioning images at the native size (cover + centre crop)
        first = sizing.fit(request.image, plan.width, plan.height)
        last = (
            sizing.fit(request.last_image, plan.width, plan.height)
            if request.last_image is not None
            else None
        )

        # 4. Denoise and decode each segment; the next one starts from this one's last frame
        def denoise(segment: segments.Segment) -> Any:
            output = self.pipe(
                **self._images(segment.first, segment.last, segment.frames),
                prompt=request.prompt,
                negative_prompt=knobs.negative_prompt,
                height=plan.height,
                width=plan.width,
                num_frames=segment.frames,
                frame_rate=request.fps,
                num_inference_steps=knobs.steps,
                guidance_scale=knobs.guidance_scale,
                decode_timestep=options.decode_timestep,
                decode_noise_scale=options.decode_noise_scale,
                generator=loading.generator(segment.seed, self.loaded.device),
                output_type="np",
                callback_on_step_end=segment.on_step_end,
                **extra,
            )
            return output.frames[0]

        # 5. Frames, streamed as each segment is decoded
        yield from segments.run_segments(
            plan,
            first=first,
            last=last,
            seed=request.seed,
            steps=knobs.steps,
            step=step,
            denoise=denoise,
        )

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
    """`auto`: the condition pipeline when the weights were saved as one or the preset
    is `distilled` (its checkpoints are loaded as one), else i2v."""
    if options.pipeline == "condition" or (
        options.pipeline == "auto" and options.preset == "distilled"
    ):
        return LTXConditionPipeline
    if options.pipeline == "i2v":
        return LTXImageToVideoPipeline
    index = read_model_index(options.weights, options.cache_dir)
    if index is not None and index.class_name == "LTXConditionPipeline":
        return LTXConditionPipeline
    return LTXImageToVideoPipeline
