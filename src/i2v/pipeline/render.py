"""One render pipeline: decode -> render -> encode -> safety frames -> probe.

The worker renders an accepted job with it, `i2v generate` a local photo, and the
benchmarks measure it, so what a benchmark times is what a user gets. Only where the
input comes from differs: `load_request` decodes a job's stored inputs, `i2v generate`
decodes a file; from the `GenerationRequest` on there is one way to run.

The encoder pulls frames as the engine makes them (rendering frame n+1 overlaps encoding
frame n); the few frames the safety checker will look at are copied on the way, so no
video is ever held whole in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2v.domain.job import JobSpec
from i2v.domain.request import GenerationRequest
from i2v.engines.base import Engine, ProgressCallback, no_progress
from i2v.intake.image import decode_image
from i2v.safety import SafetyChecker, frames_to_check
from i2v.storage.base import Storage
from i2v.video import VideoInfo, encode, probe
from i2v.video.frames import to_rgb


@dataclass(frozen=True)
class Rendered:
    """A finished video file and what the pipeline learned making it."""

    path: Path
    video: VideoInfo  # probed from the file written, not assumed from the request
    nsfw: bool  # the safety checker flagged a frame (False when nothing checked it)
    seconds: float  # render + encode + check + probe

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def load_request(spec: JobSpec, storage: Storage) -> GenerationRequest:
    """The job's inputs decoded from storage. Intake checked them at submit time, so no
    rules apply here: only decoding."""
    image = decode_image(storage.get_bytes(spec.image_key), field="image", rules=None)
    last = None
    if spec.last_image_key is not None:
        last = decode_image(
            storage.get_bytes(spec.last_image_key), field="last_image", rules=None
        ).pixels
    return GenerationRequest(spec=spec, image=image.pixels, last_image=last)


def render_to_file(
    request: GenerationRequest,
    engine: Engine,
    path: Path,
    *,
    on_progress: ProgressCallback = no_progress,
    on_frame: Callable[[int], None] | None = None,
    safety: SafetyChecker | None = None,
) -> Rendered:
    """Render `request` with `engine` into an MP4 at `path`.

    `on_progress` is the engine's per-step callback (it may raise `Cancelled`); `on_frame(n)`
    runs after the n-th frame reached the encoder. With `safety`, 8 frames spread over the
    video are checked; a flagged video is still written (and reported), as WaveSpeed does.
    On any error the partial file is removed and the error propagates.
    """
    started = time.perf_counter()

    # 1. Render and encode at once, keeping copies of the frames the checker will see.
    kept: list[Any] = []
    frames: Iterable[Any] = engine.render(request, on_progress)
    if safety is not None:
        frames = _keeping(frames, frames_to_check(request.frames), kept)
    encode(
        frames,
        path,
        width=request.width,
        height=request.height,
        fps=request.fps,
        expected_frames=request.frames,
        pixel_format=engine.pixel_format,
        on_frame=on_frame,
    )

    # 2. Check the kept frames.
    nsfw = safety is not None and any(
        safety.is_explicit(to_rgb(frame, engine.pixel_format)) for frame in kept
    )

    # 3. Probe what was written.
    return Rendered(path, probe(path), nsfw, time.perf_counter() - started)


def _keeping(frames: Iterable[Any], indices: frozenset[int], kept: list[Any]) -> Iterator[Any]:
    """`frames` passed through, with copies of those at `indices` appended to `kept`
    (copies: an engine may reuse its buffers for the next frame)."""
    for i, frame in enumerate(frames):
        if i in indices:
            kept.append(frame.copy())
        yield frame
