"""A local photo to a local MP4: what `i2v generate` runs, and what the engine benchmark times.

Only the input differs from a worker's job: a file on disk, decoded with the same intake
function, then the same `render_to_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from i2v.domain.errors import InputError
from i2v.domain.geometry import output_size, snap_aspect
from i2v.domain.job import JobSpec, Lora
from i2v.domain.request import FPS, GenerationRequest
from i2v.engines import registry
from i2v.engines.base import ProgressCallback, no_progress
from i2v.intake.image import decode_image
from i2v.pipeline.render import Rendered, render_to_file


def local_request(
    image: Path,
    prompt: str,
    *,
    resolution: str,
    frames: int,
    seed: int,
    fps: int = FPS,
    camera_fixed: bool = False,
    negative_prompt: str = "",
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    flow_shift: float | None = None,
    loras: tuple[Lora, ...] = (),
    engine_options: Mapping[str, Any] | None = None,
) -> GenerationRequest:
    """The job for a photo on disk: sized as the API sizes it (the photo's aspect snapped to
    a standard ratio at `resolution`). A local file is the user's own, so only the format
    allowlist and the bomb cap apply, not the hosted APIs' size rules."""
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {image}: {exc.strerror}", field="image") from exc
    photo = decode_image(data, field="image", rules=None)
    aspect = snap_aspect(photo.width, photo.height)
    size = output_size(resolution, aspect)
    spec = JobSpec(
        image_key=str(image),  # not a storage key: the engine gets the pixels below
        prompt=prompt,
        seed=seed,
        width=size.width,
        height=size.height,
        frames=frames,
        fps=fps,
        aspect_ratio=aspect,
        camera_fixed=camera_fixed,
        negative_prompt=negative_prompt,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        flow_shift=flow_shift,
        loras=loras,
        engine_options=dict(engine_options or {}),
    )
    return GenerationRequest(spec=spec, image=photo.pixels)


def generate_video(
    request: GenerationRequest,
    engine: str,
    out: Path,
    *,
    on_progress: ProgressCallback = no_progress,
) -> Rendered:
    """Render `request` with the named engine, built from the spec's engine options."""
    renderer = registry.create(engine, dict(request.spec.engine_options))
    try:
        return render_to_file(request, renderer, out, on_progress=on_progress)
    finally:
        renderer.close()
