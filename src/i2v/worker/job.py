"""Turning a claimed prediction's stored parameters back into a GenerationRequest."""

from __future__ import annotations

from typing import Any

from i2v.domain.prediction import Prediction
from i2v.domain.request import GenerationRequest
from i2v.intake.image import decode_image
from i2v.storage.base import Storage


def build_request(prediction: Prediction, storage: Storage) -> GenerationRequest:
    """Load the validated input image(s) from storage; intake already checked them
    at submit time, so no rules apply here (only decoding)."""
    params: dict[str, Any] = prediction.params
    image = decode_image(storage.get_bytes(params["image_key"]), field="image", rules=None)
    last_image = None
    if params.get("last_image_key"):
        last = decode_image(
            storage.get_bytes(params["last_image_key"]), field="last_image", rules=None
        )
        last_image = last.pixels
    return GenerationRequest(
        image=image.pixels,
        prompt=params["prompt"],
        seed=int(params["seed"]),
        frames=int(params["frames"]),
        width=int(params["width"]),
        height=int(params["height"]),
        fps=int(params.get("fps", 24)),
        last_image=last_image,
        camera_fixed=bool(params.get("camera_fixed", False)),
        options=dict(params.get("engine_options", {})),
    )
