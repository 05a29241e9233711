"""Job specs and generation requests for tests: the real types, with test defaults."""

from __future__ import annotations

from typing import Any

from i2v.domain.job import JobSpec
from i2v.domain.request import GenerationRequest, RGBImage


def job_spec(**changes: Any) -> JobSpec:
    values: dict[str, Any] = {
        "image_key": "inputs/test.png",
        "prompt": "the camera slowly zooms in on a cat",
        "seed": 7,
        "width": 64,
        "height": 48,
        "frames": 9,
        "fps": 24,
    }
    values.update(changes)
    return JobSpec(**values)


def generation_request(
    image: RGBImage, last_image: RGBImage | None = None, **spec: Any
) -> GenerationRequest:
    return GenerationRequest(spec=job_spec(**spec), image=image, last_image=last_image)
