"""The engine protocol: one verb, `render`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from i2v.domain.request import GenerationRequest, PixelFormat, RGBImage

# on_progress(done, total, stage): called once per unit of work (a frame, a
# denoising step). It raises i2v.domain.errors.Cancelled when the prediction was
# cancelled, so an engine that calls it on every step is cancellable for free.
ProgressCallback = Callable[[int, int, str], None]


def no_progress(done: int, total: int, stage: str) -> None:
    """A ProgressCallback that ignores progress and never cancels."""


class Engine(Protocol):
    """Renders a validated request into exactly `request.frames` frames of
    `request.width` x `request.height`, yielded in order so the encoder can start
    before the last frame exists. Same request (seed included) -> same frames.

    `pixel_format` says how every frame the engine yields is laid out, for the engine's
    whole life (a constructor option at most, never per request): "rgb24" (H x W x 3 RGB,
    what generative engines make) or "yuv420p" (one (H * 3 // 2) x W I420 array, which
    `i2v.video.encode(..., pixel_format="yuv420p")` hands to x264 with no conversion; the
    motion engine renders straight into it). Callers pass it on to the encoder:
    `encode(engine.render(request, cb), path, ..., pixel_format=engine.pixel_format)`.
    """

    name: str
    pixel_format: PixelFormat

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]: ...

    def close(self) -> None:
        """Free what the engine holds (a child process, GPU memory)."""
        ...
