"""LTX-Video image-to-video through diffusers' `LTXImageToVideoPipeline` or
`LTXConditionPipeline`.

Runs inside the engine's child process. Components: tokenizer (T5TokenizerFast),
text_encoder (T5EncoderModel), transformer (LTXVideoTransformer3DModel), vae
(AutoencoderKLLTXVideo), scheduler (FlowMatchEulerDiscreteScheduler).

Sides must be divisible by 32 and frame counts are 8k + 1 (121 and 241 both
are). 0.9.1+ VAEs decode at `decode_timestep` 0.05 with noise 0.025. Distilled
checkpoints (0.9.7/0.9.8-distilled) take `preset = "distilled"` (see `presets`): their
own eight timesteps, guidance 1.0, guidance_rescale 0.7 and image_cond_noise_scale 0.0,
through the condition pipeline (diffusers' ltx_video docs). LTX takes the frame rate as
conditioning (`frame_rate`), so it renders the route's fps (24 or 30) natively.

The `condition` pipeline takes a last frame as a second condition at the final frame
index, and a long video's later segments start from the previous segment's last nine
frames as a video condition (one latent frame of motion plus the first), not one still:
motion carries across the seam. The plain i2v pipeline takes one image and one frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from diffusers import LTXConditionPipeline, LTXImageToVideoPipeline
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import loading, segments, sizing
from i2v.engines.diffusers.adapters import Adapters
from i2v.engines.diffusers.options import EngineOptions, condition_pipeline
from i2v.engines.diffusers.presets import Preset, preset_for
from i2v.engines.diffusers.segments import StepHook

STEPS = 40
GUIDANCE_SCALE = 3.0
MAX_FRAMES = 257  # 0.9.x generates up to 257 frames in one pass
SIDE_MULTIPLE = 32  # LTX's check_inputs refuses anything else
# LTX-Video's own inference script's default (ltx_video/inference.py)
NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"


class LTXRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        pipeline_class = choose_pipeline(options)
        self.loaded = loading.load_pipeline(pipeline_class, options)
        self.pipe = self.loaded.pipe
        self.condition = isinstance(self.pipe, LTXConditionPipeline)
        self.preset: Preset | None = preset_for("ltx", options.preset)
        self.frame_step = self.pipe.vae_temporal_compression_ratio
        # frames a later segment shares with the one before: a video condition needs
        # k * step + 1 of them; one latent frame of motion (step + 1) is the least
        self.overlap = self.frame_step + 1 if self.condition else 1
        self.adapters = Adapters(self.pipe, options, self.loaded.dtype)
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
        # a render stopped by a cancel leaves its step-cache state behind: start clean
        loading.reset_step_caches(self.pipe)

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
            overlap=self.overlap,
        )
        preset = self.preset
        knobs = segments.sampling(
            request.spec,
            options,
            steps=preset.steps if preset else STEPS,
            guidance_scale=preset.guidance_scale if preset else GUIDANCE_SCALE,
            negative_prompt=NEGATIVE_PROMPT,
        )
        extra = knobs.text_arguments() | self._preset_arguments(knobs)

        # 3. Denoise and decode each segment; the next one starts from this one's last frames
        def denoise(segment: segments.Segment) -> Any:
            output = self.pipe(
                **self._images(segment),
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

        # 4. Frames, streamed as each segment is decoded
        yield from segments.run_segments(
            plan, request, steps=knobs.steps, step=step, denoise=denoise
        )

    def _preset_arguments(self, knobs: segments.Sampling) -> dict[str, Any]:
        preset = self.preset
        if preset is None:
            return {}
        extra: dict[str, Any] = {}
        if preset.timesteps and knobs.steps == len(preset.timesteps):
            # a request (or route) asking another step count gets the scheduler's own spacing
            extra["timesteps"] = list(preset.timesteps)
        if preset.guidance_rescale:
            extra["guidance_rescale"] = preset.guidance_rescale
        if preset.image_cond_noise_scale is not None and self.condition:
            extra["image_cond_noise_scale"] = preset.image_cond_noise_scale
        return extra

    def _images(self, segment: segments.Segment) -> dict[str, Any]:
        """The pipeline's conditioning: one image (i2v), or conditions (Condition): the
        segment's lead, as a video when it is several frames, and the last frame."""
        if not self.condition:
            return {"image": Image.fromarray(segment.first)}
        lead = [Image.fromarray(frame) for frame in segment.lead]
        first = (
            LTXVideoCondition(video=lead, frame_index=0)
            if len(lead) > 1
            else LTXVideoCondition(image=lead[0], frame_index=0)
        )
        conditions = [first]
        if segment.last is not None:
            conditions.append(
                LTXVideoCondition(
                    image=Image.fromarray(segment.last), frame_index=segment.frames - 1
                )
            )
        return {"conditions": conditions}


def choose_pipeline(options: EngineOptions) -> Any:
    """`LTXConditionPipeline` where `options.condition_pipeline` says so, else i2v."""
    return LTXConditionPipeline if condition_pipeline(options) else LTXImageToVideoPipeline
