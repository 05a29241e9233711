"""Wan 2.x image-to-video through diffusers' `WanImageToVideoPipeline`.

Runs inside the engine's child process. One class covers the Wan checkpoints
that share the pipeline, told apart by the loaded components:

    Wan2.2 TI2V-5B   vae (z_dim 48, 16x spatial), transformer, `expand_timesteps`
                     (the Hub saves it as `WanPipeline`); 1280x704 or 704x1280 only
                     (every request renders at that area), 121 frames, 24 fps;
                     50 steps, guidance 5.0, shift 5. The recommended default.
    Wan2.2 I2V-A14B  transformer (high noise) + transformer_2 (low noise), split
                     at `boundary_ratio`; 480p/720p, 81 frames, 16 fps; 40 steps,
                     guidance 3.5, shift 5 (the Hub's scheduler config says 3).
    Wan2.1 I2V 14B   image_encoder (CLIP) + image_processor; 480p or 720p, 81
                     frames, 16 fps; 40 steps, guidance 5.0, shift 3 at 480p, 5 at 720p.
    Wan2.1 FLF2V     as I2V, transformer with `pos_embed_seq_len`; takes `last_image`;
                     shift 16.

Components: tokenizer (umt5), text_encoder (UMT5EncoderModel), vae
(AutoencoderKLWan), transformer(s) (WanTransformer3DModel), scheduler (UniPC on
flow sigmas, rebuilt with the job's flow shift), and for 2.1 the CLIP image encoder.
The VAE and CLIP run in float32 beside a bf16 transformer. Sides are multiples of
vae_scale x patch (32 for TI2V-5B, 16 for the 14B models); frame counts are 4k + 1.
Without a negative prompt from the request or the route, each model gets its official one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from diffusers import WanImageToVideoPipeline
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import loading, segments, sizing
from i2v.engines.diffusers.adapters import Adapters
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.segments import StepHook

logger = logging.getLogger(__name__)


# The official negative prompt of Wan 2.1 and 2.2 (shared_config.py), used by the original
# code whenever the request gives none; Wan2.1 I2V prefixes "camera shake", FLF2V also
# "scene cut" (Wan2.1 wan/configs).
NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
I2V_21_NEGATIVE_PROMPT = "镜头晃动，" + NEGATIVE_PROMPT
FLF2V_21_NEGATIVE_PROMPT = "镜头切换，" + I2V_21_NEGATIVE_PROMPT


@dataclass(frozen=True)
class Variant:
    """One Wan checkpoint family and its official sampling (Wan2.1 generate.py, Wan2.2
    wan/configs): the fallbacks when neither the request nor the route sets a knob."""

    name: str
    steps: int
    guidance_scale: float
    max_frames: int
    areas: Mapping[str, int]  # native render area by resolution tier
    flow_shifts: Mapping[str, float]  # official sampling shift by resolution tier
    negative_prompt: str
    last_image: bool


TI2V_5B = Variant(
    name="Wan2.2 TI2V-5B",
    steps=50,
    guidance_scale=5.0,
    max_frames=121,
    areas=sizing.WAN_TI2V_AREAS,
    flow_shifts={"720p": 5.0},
    negative_prompt=NEGATIVE_PROMPT,
    last_image=False,
)
I2V_A14B = Variant(
    name="Wan2.2 I2V-A14B",
    steps=40,
    guidance_scale=3.5,
    max_frames=81,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 5.0, "720p": 5.0},  # the Hub's scheduler config says 3.0
    negative_prompt=NEGATIVE_PROMPT,
    last_image=True,
)
I2V_21 = Variant(
    name="Wan2.1 I2V-14B",
    steps=40,
    guidance_scale=5.0,
    max_frames=81,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 3.0, "720p": 5.0},  # the Hub's scheduler configs say 3.0
    negative_prompt=I2V_21_NEGATIVE_PROMPT,
    last_image=False,
)
FLF2V_21 = Variant(
    name="Wan2.1 FLF2V-14B",
    steps=40,
    guidance_scale=5.0,
    max_frames=81,
    areas=sizing.WAN_14B_AREAS,
    flow_shifts={"480p": 16.0, "720p": 16.0},
    negative_prompt=FLF2V_21_NEGATIVE_PROMPT,
    last_image=True,
)
# diffusers' Wan docs run the VAE and the CLIP image encoder in float32 beside a bf16
# transformer: the VAE's decode and CLIP's features lose detail in half precision.
FLOAT32_COMPONENTS = ("vae", "image_encoder")


class WanRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.loaded = loading.load_pipeline(
            WanImageToVideoPipeline, options, float32_components=FLOAT32_COMPONENTS
        )
        self.pipe = self.loaded.pipe
        self.variant = detect_variant(self.pipe)
        if options.resolution != "auto" and options.resolution not in self.variant.areas:
            raise EngineError(
                f"resolution: {self.variant.name} has no {options.resolution} tier (native: "
                f"{', '.join(self.variant.areas)}); set max_area to render smaller"
            )
        self.schedulers = FlowShiftSchedulers(self.pipe.scheduler)
        transformer = self.pipe.transformer or self.pipe.transformer_2
        self.multiple = self.pipe.vae_scale_factor_spatial * transformer.config.patch_size[1]
        self.frame_step = self.pipe.vae_scale_factor_temporal
        self.adapters = Adapters(self.pipe, options)
        self.description = f"{self.variant.name}: {self.loaded.description}"

    def check_inputs(self, request: GenerationRequest) -> None:
        if request.last_image is not None and not self.variant.last_image:
            raise EngineError(
                f"last_image: {self.variant.name} does not take a last frame; "
                "use Wan2.1 FLF2V or Wan2.2 I2V-A14B weights"
            )
        if request.last_image is None and self.variant is FLF2V_21:
            raise EngineError(
                f"last_image: {self.variant.name} needs a last frame; use I2V weights for one image"
            )
        if request.frames < 1:
            raise EngineError(f"frames: must be at least 1, got {request.frames}")
        if not request.prompt.strip():
            raise EngineError("prompt: Wan needs a non-empty prompt")

    def __call__(self, request: GenerationRequest, step: StepHook) -> Iterator[np.ndarray]:
        options = self.options

        # 1. Check inputs. Raise error if not correct
        self.check_inputs(request)
        # the route's and the request's LoRAs, loaded once per child and swapped per render
        self.adapters.apply(request.spec.loras)

        # 2. Define call parameters
        asked = sizing.resolution_tier(request.width, request.height, options.resolution)
        tier = sizing.model_tier(asked, self.variant.areas)
        limit = options.max_frames_per_segment or self.variant.max_frames
        plan = sizing.plan(
            request.width,
            request.height,
            request.frames,
            area=options.max_area or self.variant.areas[tier],
            multiple=self.multiple,
            step=self.frame_step,
            max_frames=limit,
        )
        if tier != asked:
            logger.info(
                "%s has no %s tier: rendering at its native %dx%d, resized to %dx%d",
                self.variant.name,
                asked,
                plan.width,
                plan.height,
                request.width,
                request.height,
            )
        if self.variant is FLF2V_21 and len(plan.segments) > 1:
            # every FLF2V pass needs both ends; a chain has no last frame for its inner segments
            raise EngineError(
                f"frames: {self.variant.name} renders at most {limit} frames in one "
                f"pass and cannot chain segments, got {request.frames}"
            )
        knobs = segments.sampling(
            request.spec,
            options,
            steps=self.variant.steps,
            guidance_scale=self.variant.guidance_scale,
            negative_prompt=self.variant.negative_prompt,
            flow_shift=self.variant.flow_shifts[tier],
        )
        self.pipe.scheduler = self.schedulers.get(
            knobs.flow_shift or self.variant.flow_shifts[tier]
        )
        guidance_2 = options.guidance_scale_2 if options.guidance_scale_2 >= 0 else None
        extra = (
            {"max_sequence_length": options.max_sequence_length}
            if options.max_sequence_length
            else {}
        )

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
                image=Image.fromarray(segment.first),
                last_image=Image.fromarray(segment.last) if segment.last is not None else None,
                prompt=request.prompt,
                negative_prompt=knobs.negative_prompt,
                height=plan.height,
                width=plan.width,
                num_frames=segment.frames,
                num_inference_steps=knobs.steps,
                guidance_scale=knobs.guidance_scale,
                guidance_scale_2=guidance_2,
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


def detect_variant(pipe: Any) -> Variant:
    if pipe.config.expand_timesteps:
        return TI2V_5B
    if pipe.transformer_2 is not None:
        return I2V_A14B
    if pipe.transformer is not None and pipe.transformer.config.pos_embed_seq_len:
        return FLF2V_21
    return I2V_21


class FlowShiftSchedulers:
    """The loaded scheduler rebuilt from its config with each flow shift asked for, once
    per value (`from_config(config, flow_shift=...)`, as diffusers' Wan docs do): the
    Hub's A14B and 720P configs say 3.0 where the official code samples at 5.0."""

    def __init__(self, loaded: Any) -> None:
        config = loaded.config
        # UniPC on flow sigmas (every Wan repo) names it flow_shift; flow-match Euler, shift
        self.key = (
            "flow_shift"
            if config.get("use_flow_sigmas")
            else "shift"
            if "shift" in config and not config.get("use_dynamic_shifting")
            else None
        )
        self.loaded = loaded
        self.built: dict[float, Any] = {} if self.key is None else {config[self.key]: loaded}

    def get(self, shift: float) -> Any:
        scheduler = self.built.get(shift)
        if scheduler is None:
            if self.key is None:
                raise EngineError(
                    f"flow_shift: the checkpoint's scheduler {type(self.loaded).__name__} "
                    "has no flow shift to set"
                )
            scheduler = type(self.loaded).from_config(self.loaded.config, **{self.key: shift})
            self.built[shift] = scheduler
        return scheduler
