"""Running a chained segment plan: one loop for every diffusers family.

A plan (see `sizing.plan`) renders a long video as segments, each starting from the
previous segment's last frames (`Segment.lead`), which it repeats as its own first frames:
one for a family conditioned on one image (Wan, LTX i2v), several for one that takes a
video condition (LTX Condition), so motion carries across the seam instead of restarting
from a still. This module runs such a plan and streams its frames; each family says only
how to denoise one segment (`Denoise`), so Wan and LTX share the fitting of the input
images, the chaining, the progress arithmetic and the cut.

Also here: the sampling knobs every family resolves the same way, the request's value
first, then the route's option, then the model's recommendation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from i2v.domain.errors import EngineError
from i2v.domain.job import JobSpec
from i2v.domain.request import GenerationRequest
from i2v.engines.diffusers import loading, sizing
from i2v.engines.diffusers.options import EngineOptions

logger = logging.getLogger(__name__)

# step(done, total, stage): reports progress and raises to stop the render
StepHook = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Sampling:
    steps: int
    guidance_scale: float
    negative_prompt: str
    flow_shift: float | None  # None: the family has no flow shift (LTX)
    max_sequence_length: int  # 0: the pipeline's default (Wan 512, LTX 128/256)

    def text_arguments(self) -> dict[str, Any]:
        """The prompt-length keyword for the pipeline call, when the route sets one."""
        return {"max_sequence_length": self.max_sequence_length} if self.max_sequence_length else {}


def sampling(
    spec: JobSpec,
    options: EngineOptions,
    *,
    steps: int,
    guidance_scale: float,
    negative_prompt: str = "",
    flow_shift: float | None = None,
) -> Sampling:
    """The knobs for one job: the request's, else the route's option, else the model's
    (the keyword arguments: the model's official values; `flow_shift` None: the model
    has none, and a request asking for one is refused)."""
    guidance = spec.guidance_scale
    if guidance is None:
        guidance = options.guidance_scale if options.guidance_scale >= 0 else guidance_scale
    shift = spec.flow_shift or options.flow_shift or flow_shift
    if flow_shift is None and shift is not None:
        raise EngineError(
            f"flow_shift: this model has no flow shift (only Wan's schedulers do), got {shift}"
        )
    return Sampling(
        steps=spec.num_inference_steps or options.steps or steps,
        guidance_scale=float(guidance),
        negative_prompt=spec.negative_prompt or options.negative_prompt or negative_prompt,
        flow_shift=float(shift) if shift is not None else None,
        max_sequence_length=options.max_sequence_length,
    )


@dataclass(frozen=True)
class Segment:
    """One pipeline call of a plan."""

    index: int
    frames: int  # frames this call renders
    # the frames it starts from, at the native size (n x H x W x 3 uint8): the input image
    # alone for the first segment, the previous segment's last `plan.overlap` after it
    lead: np.ndarray
    last: np.ndarray | None  # the last frame, on the final segment only
    seed: int  # each segment draws its own noise
    on_step_end: Callable[..., dict[str, Any]]  # diffusers' callback_on_step_end

    @property
    def first(self) -> np.ndarray:
        """The one frame a single-image pipeline starts from (the lead's last)."""
        return self.lead[-1]


# denoise(segment) -> the pipeline's output frames ("np": frames x H x W x 3 in [0, 1])
Denoise = Callable[[Segment], Any]


def run_segments(
    plan: sizing.Plan,
    request: GenerationRequest,
    *,
    steps: int,
    step: StepHook,
    denoise: Denoise,
) -> Iterator[np.ndarray]:
    """Denoise and decode each segment of `plan` for `request`, yielding exactly
    `plan.frames` uint8 frames; progress counts every segment's steps as one job. The
    request's image (and last image) are fitted here to the native size (cover + crop)."""
    seed = request.seed
    lead = sizing.fit(request.image, plan.width, plan.height)[np.newaxis]
    last = (
        sizing.fit(request.last_image, plan.width, plan.height)
        if request.last_image is not None
        else None
    )
    total_steps = steps * len(plan.segments)
    delivered = 0
    for index, num_frames in enumerate(plan.segments):
        offset = index * steps
        if len(plan.segments) > 1:
            logger.info("%s", plan.describe_segment(index))

        def on_step_end(
            pipe: Any, i: int, t: Any, kwargs: dict[str, Any], offset: int = offset
        ) -> dict[str, Any]:
            step(offset + i + 1, total_steps, "denoising")
            return kwargs

        is_last = index == len(plan.segments) - 1
        output = denoise(
            Segment(
                index=index,
                frames=num_frames,
                lead=lead,
                last=last if is_last else None,
                seed=seed + index,
                on_step_end=on_step_end,
            )
        )
        step(offset + steps, total_steps, "decoded")

        # Skip the frames a later segment shares with the one before; stop at the count.
        video = loading.to_uint8(output)
        for frame in video[len(lead) :] if index else video:
            if delivered == plan.frames:
                break
            delivered += 1
            yield np.ascontiguousarray(frame)
        lead = video[-plan.overlap :]
