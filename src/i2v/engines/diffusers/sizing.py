"""From the requested video to what a model can render: native size, frame count, segments.

A request asks for W x H and N frames at 24 fps. A model renders well only near
its training area, with sides that are multiples of its patch grid and frame
counts of the form k*step + 1. The engine renders the native size for the
request's aspect and the output stage resizes to W x H (e.g. 1080p by Lanczos
from 720p). Videos longer than a model's segment limit are chained: each next
segment starts from the previous segment's last frame, which it repeats as its
own first frame, so segment lengths overlap by one.

Pure arithmetic, no torch: the parent and the tests use it freely.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from i2v.domain.errors import EngineError
from i2v.domain.request import RGBImage

# Native render areas (pixels) by model class and resolution tier. TI2V-5B was trained
# at 1280x704 / 704x1280 only (Wan2.2 configs): it has no 480p tier, a 480p request
# renders at 704p and the output stage resizes it down.
WAN_TI2V_AREAS = {"720p": 1280 * 704}
WAN_14B_AREAS = {"480p": 832 * 480, "720p": 1280 * 720}
LTX_AREAS = {"480p": 704 * 480, "720p": 1216 * 704}


@dataclass(frozen=True)
class Plan:
    """How one request is rendered: native size, segment lengths, frames kept."""

    width: int
    height: int
    segments: tuple[int, ...]  # frames each pipeline call renders (each k*step + 1)
    frames: int  # frames delivered: the chain's frames, cut to the request's count
    overlap: int = 1  # frames each later segment shares with the one before it

    @property
    def rendered(self) -> int:
        return self.segments[0] + sum(n - self.overlap for n in self.segments[1:])

    def describe_segment(self, index: int) -> str:
        start = (
            "the input image"
            if index == 0
            else "the previous segment's last frame"
            if self.overlap == 1
            else f"the previous segment's last {self.overlap} frames"
        )
        return (
            f"segment {index + 1}/{len(self.segments)}: {self.segments[index]} frames at "
            f"{self.width}x{self.height} from {start}"
        )


def resolution_tier(width: int, height: int, choice: str = "auto") -> str:
    """`480p` or `720p`: the option if set, else by the request's short side."""
    if choice != "auto":
        return choice
    return "480p" if min(width, height) <= 480 else "720p"


def model_tier(tier: str, areas: Mapping[str, int]) -> str:
    """`tier` if the model has it, else the model's largest: TI2V-5B renders a 480p
    request at 704p."""
    return tier if tier in areas else max(areas, key=lambda name: areas[name])


def native_size(
    width: int, height: int, area: int, multiple: int, cells_divisor: int = 1
) -> tuple[int, int]:
    """The size with about `area` pixels, the aspect of width:height, both sides
    multiples of `multiple` (at least one multiple each). With `cells_divisor` n, the
    number of `multiple`-sized cells (a transformer's tokens per latent frame when
    `multiple` is VAE scale x patch) divides by n: context parallelism over n GPUs splits
    the tokens evenly or not at all (diffusers asserts it)."""
    aspect = width / height
    w = math.sqrt(area * aspect)
    h = w / aspect
    cells = max(1, round(w / multiple)), max(1, round(h / multiple))
    if (cells[0] * cells[1]) % cells_divisor:
        cells = _divisible_cells(cells, aspect, cells_divisor)
    return cells[0] * multiple, cells[1] * multiple


def _divisible_cells(cells: tuple[int, int], aspect: float, n: int) -> tuple[int, int]:
    """The grid nearest `cells` (aspect and area, each on a log scale) whose cell count
    divides by n."""
    columns, rows = cells
    candidates = [
        (c, r)
        for c in range(max(1, columns - n), columns + n + 1)
        for r in range(max(1, rows - n), rows + n + 1)
        if (c * r) % n == 0
    ]
    return min(
        candidates,
        key=lambda cr: (
            abs(math.log(cr[0] / cr[1] / aspect)) + abs(math.log(cr[0] * cr[1] / (columns * rows)))
        ),
    )


def frames_for(frames: int, step: int) -> int:
    """The smallest k*step + 1 that is at least `frames`."""
    return max(1, math.ceil((frames - 1) / step)) * step + 1 if frames > 1 else 1


def segment_plan(frames: int, max_frames: int, step: int, overlap: int = 1) -> tuple[int, ...]:
    """Equal segment lengths whose chain covers `frames` frames, each later segment
    sharing `overlap` frames with the one before it: as few segments as the limit
    allows, each as short as covers the count.

    241 frames, at most 121 per segment, step 4, overlap 1 -> (121, 121): 121 + 120.
    241 frames, at most 121 per segment, step 8, overlap 9 -> (89, 89, 89): 89 + 80 + 80.
    """
    limit = (max_frames - 1) // step * step + 1
    if limit <= overlap:
        raise EngineError(
            f"max_frames_per_segment: must be at least {overlap + step} (the {overlap} frames "
            f"each segment shares with the one before, plus {step} new), got {max_frames}"
        )
    if frames <= limit:
        return (frames_for(frames, step),)
    # n + (count - 1)(n - overlap) >= frames, with n <= limit
    count = math.ceil((frames - overlap) / (limit - overlap))
    each = frames_for(math.ceil((frames + (count - 1) * overlap) / count), step)
    return (each,) * count


def plan(
    width: int,
    height: int,
    frames: int,
    *,
    area: int,
    multiple: int,
    step: int,
    max_frames: int,
    overlap: int = 1,
    cells_divisor: int = 1,
) -> Plan:
    w, h = native_size(width, height, area, multiple, cells_divisor)
    return Plan(w, h, segment_plan(frames, max_frames, step, overlap), frames, overlap)


def fit(image: RGBImage, width: int, height: int) -> RGBImage:
    """Resize to cover width x height (Lanczos), then centre-crop: no stretching."""
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    scale = max(width / src_w, height / src_h)
    cover = (max(width, round(src_w * scale)), max(height, round(src_h * scale)))
    resized = Image.fromarray(image).resize(cover, Image.Resampling.LANCZOS)
    left = (cover[0] - width) // 2
    top = (cover[1] - height) // 2
    cropped = resized.crop((left, top, left + width, top + height))
    return np.ascontiguousarray(np.asarray(cropped, dtype=np.uint8))
