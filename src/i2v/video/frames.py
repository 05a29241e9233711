"""Frame layouts: RGB and I420, and the conversions between them, in one place.

An "rgb24" frame is H x W x 3 uint8. An "yuv420p" frame is I420 in one (H * 3 // 2) x W
uint8 array: Y, then U, then V at half size, BT.601 limited range, as cv2 lays it out.
The motion engine renders I420 straight from `to_i420` planes, the encoder converts RGB
frames with the same `to_i420`, and the safety checker reads any frame back with `to_rgb`,
so every path through the service sees the same colours.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from i2v.domain.request import PixelFormat, RGBImage


def i420_planes(yuv: RGBImage) -> tuple[RGBImage, RGBImage, RGBImage]:
    """Views of the Y, U and V planes of an I420 array ((H * 3 // 2) x W, H and W even)."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    return yuv[:height], chroma[0], chroma[1]


def to_i420(image: RGBImage) -> RGBImage:
    """RGB with even sides -> I420 in cv2's layout and BT.601 limited-range matrix, with
    each chroma sample the mean of its 2x2 block (sited at the block's centre): cv2's own
    RGB2YUV_I420 takes the block's top-left pixel alone, which aliases fine colour detail."""
    height, width = image.shape[:2]
    yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
    # Chroma is linear in RGB, so the chroma of the block's mean colour is the block's mean
    # chroma; repeating each mean over its block makes cv2's top-left pick exactly that.
    means = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(means, (width, height), interpolation=cv2.INTER_NEAREST)
    yuv[height:] = cv2.cvtColor(blocks, cv2.COLOR_RGB2YUV_I420)[height:]
    return yuv


def to_rgb(frame: Any, pixel_format: PixelFormat) -> RGBImage:
    """A frame as RGB, whichever layout it is in."""
    if pixel_format == "yuv420p":
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_YUV2RGB_I420))
    return np.asarray(frame)
