"""EXIF orientation is read once: the size the API accepts a job on (`inspect_image`, in the
decode pool's children) is the size of the pixels the worker renders (`decode_image`)."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from i2v.intake.decoder import DecodePool
from i2v.intake.image import decode_image, inspect_image

STORED = (640, 400)  # width, height as the file stores the pixels


def with_orientation(fmt: str, orientation: int | str, **params: object) -> bytes:
    """A STORED-size picture whose top corners differ from the rest, saved with that EXIF
    orientation (text: a malformed tag, typed ASCII instead of SHORT)."""
    im = Image.new("RGB", STORED, (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 60, 60))
    im.paste((0, 255, 0), (STORED[0] - 60, 0, STORED[0], 60))
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, exif=exif_block(orientation), **params)
    return buffer.getvalue()


def exif_block(orientation: int | str) -> bytes:
    if isinstance(orientation, int):
        exif = Image.Exif()
        exif[0x0112] = orientation
        return exif.tobytes()
    # Pillow writes the tag only as a number; write the one-entry TIFF directory by hand.
    text = orientation.encode() + b"\0"
    entry = struct.pack("<HHI", 0x0112, 2, len(text)) + text.ljust(4, b"\0")
    return b"Exif\0\0II*\0" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)


def test_a_rotated_jpeg_is_accepted_and_decoded_at_the_same_swapped_size(
    pool: DecodePool,
) -> None:
    data = with_orientation("JPEG", 6, quality=95)
    facts = pool.inspect(data)  # what the API accepts the job on
    image = decode_image(data, rules=None)  # what the worker renders (pipeline.render)
    assert (facts.width, facts.height) == (400, 640)
    assert (image.width, image.height) == (400, 640)
    assert image.pixels.shape == (640, 400, 3)
    # Orientation 6 shows the stored top-left corner (red) at the top right.
    assert image.pixels[10:40, -40:-10].reshape(-1, 3).mean(axis=0)[0] > 200


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_orientation_shows_the_picture_upright(orientation: int) -> None:
    data = with_orientation("PNG", orientation)  # lossless: pixels compare exactly
    with Image.open(io.BytesIO(data)) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    facts = inspect_image(data)
    image = decode_image(data)
    assert np.array_equal(image.pixels, upright)
    assert (facts.width, facts.height) == (image.width, image.height)
    assert image.pixels.shape[:2] == (facts.height, facts.width)


@pytest.mark.parametrize("orientation", [0, 9, "up", "6"])
def test_an_orientation_outside_the_table_shows_the_picture_as_stored(
    orientation: int | str,
) -> None:
    data = with_orientation("JPEG", orientation)
    facts = inspect_image(data)
    image = decode_image(data)
    # "6" as text: before orientation was read once, the facts turned it, the pixels did not.
    assert (facts.width, facts.height) == (image.width, image.height) == STORED
