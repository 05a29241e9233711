"""Hostile inputs made in code, shared by the intake tests and the e2e hostile corpus."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def progressive_jpeg(width: int, height: int, *, flat: bool = False) -> bytes:
    """A smooth (or `flat`: one colour) progressive JPEG as Pillow (libjpeg's default script:
    10 scans) writes it; its refinement scans are small (33 bytes when flat)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=-1)
    if flat:
        pixels[...] = (90, 120, 150)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(
        buffer, format="JPEG", progressive=True, quality=85
    )
    return buffer.getvalue()


def scan_bomb(width: int, height: int, repeats: int, *, flat: bool = False) -> bytes:
    """The reviewer's bomb: a real progressive JPEG whose last scan repeats `repeats` more
    times. Each repeat is a valid refinement scan, so libjpeg walks every block again:
    `scan_bomb(4096, 4096, 1000, flat=True)` is 132 KB and takes ~18 s to decode."""
    data = progressive_jpeg(width, height, flat=flat)
    end = data.rindex(b"\xff\xd9")
    last = data.rindex(b"\xff\xda", 0, end)
    return data[:end] + data[last:end] * repeats + b"\xff\xd9"
