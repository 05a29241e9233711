"""Test images made in code."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo_bytes(width: int = 640, height: int = 360, fmt: str = "JPEG", seed: int = 0) -> bytes:
    """A photo-like test image: smooth gradients plus texture, so motion is measurable."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            128 + 100 * np.sin(x / 37.0 + seed),
            128 + 100 * np.cos(y / 23.0),
            128 + 60 * np.sin((x + y) / 51.0),
        ],
        axis=-1,
    )
    img += rng.normal(0, 12, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format=fmt, quality=92)
    return buf.getvalue()
