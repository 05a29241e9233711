"""What an engine is asked to render: validated, sized, seeded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from i2v.domain.job import JobSpec

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
    """What an engine renders: the job's spec with its input pixels, decoded once.

    The spec is handed over as it is (a generative engine's child process receives this
    very object); the properties below read it, they do not copy it."""

    spec: JobSpec
    image: RGBImage
    last_image: RGBImage | None = None

    @property
    def prompt(self) -> str:
        return self.spec.prompt

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def frames(self) -> int:
        return self.spec.frames

    @property
    def width(self) -> int:
        return self.spec.width

    @property
    def height(self) -> int:
        return self.spec.height

    @property
    def fps(self) -> int:
        return self.spec.fps

    @property
    def camera_fixed(self) -> bool:
        return self.spec.camera_fixed
