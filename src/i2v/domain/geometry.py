"""Output geometry: the input's aspect snapped to a standard ratio, sized by resolution."""

from __future__ import annotations

import math
from dataclasses import dataclass

from i2v.domain.errors import InputError

ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "16:9": (16, 9),
    "4:3": (4, 3),
    "1:1": (1, 1),
    "3:4": (3, 4),
    "9:16": (9, 16),
    "21:9": (21, 9),
    "9:21": (9, 21),
}
RESOLUTIONS: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


def snap_aspect(width: int, height: int) -> str:
    """The standard aspect ratio nearest to width:height, compared in log space
    so that 2:1 is as far from 1:1 as 1:2 is."""
    ratio = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(_ratio(name)) - ratio))


def output_size(resolution: str, aspect: str) -> Size:
    """Short side = the resolution's line count; long side from the aspect; both even.

    16:9 at 1080p is 1920x1080; 21:9 at 480p is 1120x480.
    """
    if resolution not in RESOLUTIONS:
        raise InputError(
            f"must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}",
            field="resolution",
            value=resolution,
        )
    if aspect not in ASPECT_RATIOS:
        raise InputError(
            f"must be one of {', '.join(ASPECT_RATIOS)}, got {aspect!r}",
            field="aspect_ratio",
            value=aspect,
        )
    short = RESOLUTIONS[resolution]
    ratio = _ratio(aspect)
    long = _even(short * max(ratio, 1 / ratio))
    return Size(long, short) if ratio >= 1 else Size(short, long)


def _ratio(name: str) -> float:
    w, h = ASPECT_RATIOS[name]
    return w / h


def _even(x: float) -> int:
    return 2 * round(x / 2)
