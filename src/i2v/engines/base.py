"""The engine protocol: one verb, `render`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from i2v.domain.request import GenerationRequest, RGBImage

# on_progress(done, total, stage): called once per unit of work (a frame, a
# denoising step). It raises i2v.domain.errors.Cancelled when the prediction was
# cancelled, so an engine that calls it on every step is cancellable for free.
ProgressCallback = Callable[[int, int, str], None]


def no_progress(done: int, total: int, stage: str) -> None:
    """A ProgressCallback that ignores progress and never cancels."""


class Engine(Protocol):
    """Renders a validated request into exactly `request.frames` RGB frames of
    `request.width` x `request.height`, yielded in order so the encoder can start
    before the last frame exists. Same request (seed included) -> same frames."""

    name: str

    def render(
        self, request: GenerationRequest, on_progress: ProgressCallback
    ) -> Iterator[RGBImage]: ...

    def close(self) -> None:
        """Free what the engine holds (a child process, GPU memory)."""
        ...
