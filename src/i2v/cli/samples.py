"""Photos shipped with i2v (see src/i2v/data/README.md for their source and licence)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLE_PHOTOS = ("coffee.jpg", "rocket.jpg")


def sample_photo(name: str = SAMPLE_PHOTOS[0]) -> Path:
    """Path of a bundled sample photo; the default is 16:9 (1920x1080 at 1080p)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"name: must be one of {', '.join(SAMPLE_PHOTOS)}, got {name!r}")
    return Path(str(files("i2v").joinpath("data", name)))
