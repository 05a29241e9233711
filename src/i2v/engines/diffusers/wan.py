"""Wan 2.x image-to-video through diffusers' `WanImageToVideoPipeline`.

Runs inside the engine's child process. One class covers the Wan checkpoints that
share the pipeline (TI2V-5B, I2V-A14B, Wan2.1 I2V and FLF2V), told apart by the loaded
components; their sizes, frame rates and official sampling are in `variants`.

Components: tokenizer (umt5), text_encoder (UMT5EncoderModel), vae
(AutoencoderKLWan), transformer(s) (WanTransformer3DModel), scheduler (UniPC on
flow sigmas, rebuilt with the job's flow shift), and for 2.1 the CLIP image encoder.
The VAE and CLIP run in float32 beside a bf16 transformer. Sides are multiples of
vae_scale x patch (32 for TI2V-5B, 16 for the 14B models); frame counts are 4k + 1;
each model plays at its training fps (TI2V-5B 24, the 14B models 16) and refuses a
request at another. Without a negative prompt from the request or the route, each model
gets its official one. Presets (`presets`) sample distilled weights: `lightx2v`
(A14B + 4-step LoRAs) and `dmd` (FastWan TI2V-5B, 3 steps).

Long videos are chained segments, each starting from the previous one's last frame;
Wan2.1 keeps the original photo's CLIP embedding on every segment, so identity is
anchored to the photo rather than to a decoded frame that drifts a little each time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from diffusers import WanImageToVideoPipeline
from PIL import Image

from i2v.domain.catalog import wrong_rate
from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import loading, segments, sizing, variants
from i2v.engines.diffusers.adapters import Adapters
from i2v.engines.diffusers.options import EngineOptions
from i2v.engines.diffusers.presets import Preset, preset_for, wrong_family
from i2v.engines.diffusers.schedulers import FlowShiftSchedulers, RenoisingEuler
from i2v.engines.diffusers.segments import StepHook
from i2v.engines.diffusers.variants import Variant

logger = logging.getLogger(__name__)

# diffusers' Wan docs run the VAE and the CLIP image encoder in float32 beside a bf16
# transformer: the VAE's decode and CLIP's features lose detail in half precision.
FLOAT32_COMPONENTS = ("vae", "image_encoder")


# diffusers' pipeline classes carry no annotations mypy can follow through `super()`
_WanImageToVideo: Any = WanImageToVideoPipeline


class AnchoredWanPipeline(_WanImageToVideo):  # type: ignore[misc]
    """`WanImageToVideoPipeline` whose CLIP image embedding can be pinned.

    The stock pipeline embeds whatever image a call starts from, so in a chain each
    segment would see the previous segment's decoded last frame, and the drift of every
    seam would add up; it also refuses `image` and `image_embeds` together. Inside
    `anchored()`, the first call's embedding (the original photo's: the chain's first
    segment starts from it) is kept and every later call conditions on it."""

    pinning: bool = False
    image_anchor: Any = None

    def encode_image(self, image: Any, device: Any = None) -> Any:
        if self.image_anchor is None:
            embedding = super().encode_image(image, device)
            if not self.pinning:
                return embedding
            self.image_anchor = embedding
        return self.image_anchor

    @contextlib.contextmanager
    def anchored(self) -> Iterator[None]:
        """Pin the first embedding made inside the block for the rest of it."""
        self.pinning = True
        try:
            yield
        finally:
            self.pinning, self.image_anchor = False, None


class WanRenderer:
    """Loads the pipeline once; each call renders one request into native-size frames."""

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self.loaded = loading.load_pipeline(
            AnchoredWanPipeline, options, float32_components=FLOAT32_COMPONENTS
        )
        self.pipe = self.loaded.pipe
        self.variant = variants.detect_loaded(self.pipe)
        self.preset = preset_for("wan", options.preset)
        check_preset(self.preset, self.variant, options.weights)
        if options.resolution != "auto" and options.resolution not in self.variant.areas:
            raise EngineError(
                f"resolution: {self.variant.name} has no {options.resolution} tier (native: "
                f"{', '.join(self.variant.areas)}); set max_area to render smaller"
            )
        self.schedulers = FlowShiftSchedulers(self.pipe.scheduler)
        self.renoising = (
            RenoisingEuler.at(self.preset.renoise_sigmas)
            if self.preset is not None and self.preset.renoise_sigmas
            else None
        )
        transformer = self.pipe.transformer or self.pipe.transformer_2
        self.multiple = self.pipe.vae_scale_factor_spatial * transformer.config.patch_size[1]
        self.frame_step = self.pipe.vae_scale_factor_temporal
        self.adapters = Adapters(self.pipe, options, self.loaded.dtype)
        preset = f", preset {self.preset.name}" if self.preset else ""
        self.description = f"{self.variant.name}{preset}: {self.loaded.description}"

    def check_inputs(self, request: GenerationRequest) -> None:
        variant = self.variant
        if request.last_image is not None and not variant.last_image:
            raise EngineError(
                f"last_image: {variant.name} does not take a last frame; "
                "use Wan2.1 FLF2V or Wan2.2 I2V-A14B weights"
            )
        if request.last_image is None and variant is variants.FLF2V_21:
            raise EngineError(
                f"last_image: {variant.name} needs a last frame; use I2V weights for one image"
            )
        if request.frames < 1:
            raise EngineError(f"frames: must be at least 1, got {request.frames}")
        if request.fps != variant.fps:
            raise EngineError("fps: " + wrong_rate(variant.name, variant.fps, request.fps))
        if not request.prompt.strip():
            raise EngineError("prompt: Wan needs a non-empty prompt")

    def __call__(self, request: GenerationRequest, step: StepHook) -> Iterator[np.ndarray]:
        options = self.options
        variant = self.variant

        # 1. Check inputs. Raise error if not correct
        self.check_inputs(request)
        # the route's and the request's LoRAs, loaded once per child and swapped per render
        self.adapters.apply(request.spec.loras)
        # a render stopped by a cancel leaves its step-cache state behind: start clean
        loading.reset_step_caches(self.pipe)

        # 2. Define call parameters
        asked = sizing.resolution_tier(request.width, request.height, options.resolution)
        tier = sizing.model_tier(asked, variant.areas)
        limit = options.max_frames_per_segment or variant.max_frames
        plan = sizing.plan(
            request.width,
            request.height,
            request.frames,
            area=options.max_area or variant.areas[tier],
            multiple=self.multiple,
            step=self.frame_step,
            max_frames=limit,
            # context parallelism splits the tokens over the GPUs: evenly, or it refuses
            cells_divisor=max(1, len(options.gpus)),
        )
        if tier != asked:
            logger.info(
                "%s has no %s tier: rendering at its native %dx%d, resized to %dx%d",
                variant.name,
                asked,
                plan.width,
                plan.height,
                request.width,
                request.height,
            )
        if variant is variants.FLF2V_21 and len(plan.segments) > 1:
            # every FLF2V pass needs both ends; a chain has no last frame for its inner segments
            raise EngineError(
                f"frames: {variant.name} renders at most {limit} frames in one "
                f"pass and cannot chain segments, got {request.frames}"
            )
        defaults: Preset | Variant = self.preset or variant
        knobs = segments.sampling(
            request.spec,
            options,
            steps=defaults.steps,
            guidance_scale=defaults.guidance_scale,
            negative_prompt=variant.negative_prompt,
            flow_shift=(self.preset and self.preset.flow_shift) or variant.flow_shifts[tier],
        )
        self.pipe.scheduler = self._scheduler(request, knobs)
        guidance_2 = self._guidance_2(request)

        # 3. Anchor identity to the photo: Wan2.1 conditions every segment on its CLIP embedding
        anchor = (
            self.pipe.anchored()
            if variant.clip and len(plan.segments) > 1
            else contextlib.nullcontext()
        )

        # 4. Denoise and decode each segment; the next one starts from this one's last frame
        def denoise(segment: segments.Segment) -> Any:
            if self.renoising is not None:
                self.renoising.seed_noise(segment.seed, self.loaded.device)
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
                **knobs.text_arguments(),
            )
            return output.frames[0]

        # 5. Frames, streamed as each segment is decoded
        with anchor:
            yield from segments.run_segments(
                plan, request, steps=knobs.steps, step=step, denoise=denoise
            )

    def _scheduler(self, request: GenerationRequest, knobs: segments.Sampling) -> Any:
        """The preset's re-noising sampler, else the loaded one at the job's flow shift."""
        if self.renoising is None:
            assert knobs.flow_shift is not None  # every Wan variant has an official shift
            return self.schedulers.get(knobs.flow_shift)
        asked = request.spec.flow_shift or self.options.flow_shift
        if asked:
            raise EngineError(
                f"flow_shift: the {self.options.preset} preset samples at the fixed noise "
                f"levels its checkpoint was distilled at, which take no shift, got {asked}"
            )
        return self.renoising

    def _guidance_2(self, request: GenerationRequest) -> float | None:
        """The low-noise expert's guidance (A14B only): the route's `guidance_scale_2`;
        else None, so the pipeline uses `guidance_scale` for both, when the request set
        that; else the preset's."""
        if self.pipe.transformer_2 is None:
            return None
        if self.options.guidance_scale_2 >= 0:
            return self.options.guidance_scale_2
        if request.spec.guidance_scale is not None:
            return None
        if self.preset is not None and self.preset.guidance_scale_2 is not None:
            return self.preset.guidance_scale_2
        return None


def check_preset(preset: Preset | None, variant: Variant, weights: str) -> None:
    """Weights that arrived after the catalog loaded are checked here, by the same rule."""
    refusal = wrong_family(preset, variant.name, weights) if preset else None
    if refusal:
        raise EngineError(refusal)
