"""What an engine is asked to render: validated, sized, seeded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

RGBImage = npt.NDArray[np.uint8]  # H x W x 3, RGB, C-contiguous
# How an engine's frames are laid out: "rgb24" is an RGBImage; "yuv420p" is I420 in one
# (H * 3 // 2) x W uint8 array (Y, then U, then V at half size), as cv2's RGB2YUV_I420 lays
# it out, BT.601 limited range. See i2v.engines.base.
PixelFormat = Literal["rgb24", "yuv420p"]
PIXEL_FORMATS: tuple[PixelFormat, ...] = ("rgb24", "yuv420p")

FPS = 24
FRAME_CHOICES = (121, 241)  # 5 s and 10 s at 24 fps (+1: the input frame)
SEED_MAX = 2**31 - 1


@dataclass(frozen=True)
class GenerationRequest:
    """A fully validated request. Engines trust it; intake and the API build it."""

    image: RGBImage
    prompt: str
    seed: int
    frames: int
    width: int
    height: int
    fps: int = FPS
    last_image: RGBImage | None = None
    camera_fixed: bool = False
    # Engine-specific knobs from the catalog or the request (steps, guidance...).
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps
