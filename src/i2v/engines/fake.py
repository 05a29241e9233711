"""A fast, deterministic engine for testing the service (never offered to users).

Frame i is the input image resized to the output size, with its brightness
shifted by a seed- and index-dependent amount, so tests can tell frames, seeds
and requests apart. Options (the route's): `frame_delay` (seconds per frame, to keep a job
running while a test cancels or kills it) and `fail_at` (frame index that raises).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from i2v.domain.errors import EngineError
from i2v.domain.request import GenerationRequest, PixelFormat, RGBImage
from i2v.engines.base import ProgressCallback


class FakeEngine:
    name = "fake"
    pixel_format: PixelFormat = "rgb24"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = options or {}
        self.frame_delay = float(options.get("frame_delay", 0.0))
        self.fail_at = options.get("fail_at")

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]:
        base = _resize_nearest(request.image, request.width, request.height).astype(np.int16)
        for i in range(request.frames):
            on_progress(i, request.frames, "rendering")
            if self.fail_at is not None and i == int(self.fail_at):
                raise EngineError(f"fake engine failed at frame {i} as asked")
            if self.frame_delay:
                time.sleep(self.frame_delay)
            shift = (request.seed * 7 + i) % 32
            yield np.clip(base + shift, 0, 255).astype(np.uint8)
        on_progress(request.frames, request.frames, "rendering")

    def close(self) -> None:
        pass


def _resize_nearest(image: RGBImage, width: int, height: int) -> RGBImage:
    rows = (np.arange(height) * image.shape[0] // height).clip(0, image.shape[0] - 1)
    cols = (np.arange(width) * image.shape[1] // width).clip(0, image.shape[1] - 1)
    return np.ascontiguousarray(image[rows][:, cols])
