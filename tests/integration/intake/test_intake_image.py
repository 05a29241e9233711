from __future__ import annotations

import contextlib
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from i2v.domain.errors import ImageError
from i2v.intake.image import (
    HARD_MAX_PIXELS,
    RUNCOMFY_RULES,
    ImageRules,
    IntakeImage,
    decode_image,
    sniff_format,
)


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(
    size: tuple[int, int], color: tuple[int, ...] = (10, 120, 200), mode: str = "RGB"
) -> bytes:
    return encode(Image.new(mode, size, color), "PNG")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is a few bytes of zeros."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def refusal(data: bytes, **kwargs: object) -> str:
    with pytest.raises(ImageError) as info:
        decode_image(data, **kwargs)  # type: ignore[arg-type]
    return info.value.message


# --- accepted inputs -----------------------------------------------------------------------


def test_plain_png_is_decoded_to_contiguous_rgb() -> None:
    image = decode_image(solid((640, 480)))
    assert isinstance(image, IntakeImage)
    assert (image.width, image.height, image.format) == (640, 480, "PNG")
    assert image.pixels.shape == (480, 640, 3)
    assert image.pixels.dtype == np.uint8
    assert image.pixels.flags["C_CONTIGUOUS"]
    assert tuple(image.pixels[5, 5]) == (10, 120, 200)


def test_jpeg_and_webp_are_accepted() -> None:
    jpeg = decode_image(encode(Image.new("RGB", (400, 400), (200, 30, 30)), "JPEG"))
    assert jpeg.format == "JPEG"
    assert abs(int(jpeg.pixels[10, 10, 0]) - 200) < 6
    webp = decode_image(encode(Image.new("RGB", (400, 400), (30, 200, 30)), "WEBP", lossless=True))
    assert webp.format == "WEBP"
    assert tuple(webp.pixels[10, 10]) == (30, 200, 30)


def test_size_bytes_is_the_input_length() -> None:
    data = solid((400, 400))
    assert decode_image(data).size_bytes == len(data)


def test_encode_png_is_lossless() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
    image = decode_image(encode(Image.fromarray(pixels), "PNG"))
    again = decode_image(image.encode_png())
    assert np.array_equal(again.pixels, pixels)
    assert again.format == "PNG"


def test_exif_orientation_is_applied_before_rules() -> None:
    # Stored 640x400 landscape with a red top-left corner; orientation 6 means "rotate 90° CW to
    # display", so the photo shows as 400x640 portrait with the red corner at the top right.
    im = Image.new("RGB", (640, 400), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = decode_image(encode(im, "JPEG", quality=95, exif=exif.tobytes()))
    assert (image.width, image.height) == (400, 640)
    top_right = image.pixels[5:30, -30:-5].reshape(-1, 3).mean(axis=0)
    top_left = image.pixels[5:30, 5:30].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200
    assert top_right[2] < 60
    assert top_left[2] > 200
    assert top_left[0] < 60


def test_rules_see_the_oriented_size() -> None:
    im = Image.new("RGB", (1500, 400))
    exif = Image.Exif()
    exif[0x0112] = 8
    message = refusal(encode(im, "JPEG", exif=exif.tobytes()))
    assert message == "image: ratio of long side to short side must be within 3:1, got 3.75:1"


def test_sixteen_bit_grayscale_is_scaled_not_clamped() -> None:
    values = np.full((400, 400), 0x8000, dtype=np.uint16)
    values[0, 0] = 0xFFFF
    values[0, 1] = 0x00FF
    values[0, 2] = 0x4000
    data = encode(Image.fromarray(values), "PNG")
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.mode.startswith("I")  # the corpus really is 16-bit
    pixels = decode_image(data).pixels
    assert tuple(pixels[5, 5]) == (128, 128, 128)
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[0, 1]) == (0, 0, 0)
    assert tuple(pixels[0, 2]) == (64, 64, 64)


def test_sixteen_bit_rgb_keeps_high_bytes() -> None:
    # A hand-written 16-bit RGB PNG: every sample 0x8040.
    width = height = 400
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    row = b"\x00" + b"\x80\x40" * 3 * width
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(row * height))
        + png_chunk(b"IEND", b"")
    )
    assert tuple(decode_image(data).pixels[7, 7]) == (128, 128, 128)


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = decode_image(encode(Image.new("CMYK", (400, 400), (0, 255, 255, 0)), "JPEG"))
    r, g, b = (int(v) for v in image.pixels[20, 20])
    assert r > 230
    assert g < 30
    assert b < 30


def test_cmyk_with_unusable_icc_profile_falls_back() -> None:
    data = encode(
        Image.new("CMYK", (400, 400), (255, 0, 255, 0)), "JPEG", icc_profile=b"not a profile"
    )
    r, g, b = (int(v) for v in decode_image(data).pixels[20, 20])
    assert g > 230
    assert r < 30
    assert b < 30


def test_cmyk_with_icc_profile_goes_through_color_management() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # An RGB profile on a CMYK image cannot build a transform: the fallback must still decode.
    data = encode(Image.new("CMYK", (400, 400), (0, 0, 0, 0)), "JPEG", icc_profile=profile)
    assert decode_image(data).pixels.min() > 240


def test_palette_with_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (400, 400), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.paste(1, (0, 0, 200, 400))
    data = encode(im, "PNG", transparency=0)
    pixels = decode_image(data).pixels
    assert tuple(pixels[10, 10]) == (255, 0, 0)
    assert tuple(pixels[10, 300]) == (255, 255, 255)


def test_rgba_and_la_alpha_is_composited_on_white() -> None:
    rgba = decode_image(solid((400, 400), (0, 0, 0, 128), mode="RGBA")).pixels
    assert all(abs(int(v) - 127) <= 1 for v in rgba[3, 3])
    transparent = decode_image(solid((400, 400), (0, 0, 0, 0), mode="RGBA")).pixels
    assert tuple(transparent[3, 3]) == (255, 255, 255)
    la = decode_image(solid((400, 400), (0, 255), mode="LA")).pixels
    assert tuple(la[3, 3]) == (0, 0, 0)


def test_grayscale_and_bilevel_become_rgb() -> None:
    gray = decode_image(solid((400, 400), (90,), mode="L")).pixels
    assert tuple(gray[0, 0]) == (90, 90, 90)
    bilevel = decode_image(solid((400, 400), (1,), mode="1")).pixels
    assert tuple(bilevel[0, 0]) == (255, 255, 255)


def test_boundaries_that_pass() -> None:
    assert decode_image(solid((321, 321))).width == 321
    assert decode_image(solid((999, 333))).width == 999  # exactly 3:1
    assert decode_image(solid((4096, 2048), (0, 0, 0))).width == 4096


# --- refusals ------------------------------------------------------------------------------


def test_short_side_message() -> None:
    assert (
        refusal(solid((300, 500))) == "image: shortest side must be more than 320 pixels, got 300"
    )
    assert refusal(solid((500, 320))).endswith("got 320")


def test_long_side_message() -> None:
    assert (
        refusal(solid((4097, 2000), (0, 0, 0)))
        == "image: longest side must be at most 4096 pixels, got 4097"
    )


def test_ratio_message() -> None:
    assert (
        refusal(solid((1600, 400)))
        == "image: ratio of long side to short side must be within 3:1, got 4.00:1"
    )
    assert refusal(solid((400, 1600))).endswith("got 4.00:1")
    # just over the edge must not print as "3.00:1"
    assert refusal(solid((1001, 333))).endswith("got 3.01:1")
    assert refusal(solid((3001, 1000))).endswith("got 3.0010:1")


def test_file_size_message_for_a_noisy_png() -> None:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (1300, 1300, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG", compress_level=1)
    assert len(data) > 4_700_000
    shown = f"{len(data) / 1_000_000:.1f}"
    assert refusal(data) == f"image: file size must be less than 4.7 MB, got {shown} MB"


def test_file_size_at_the_limit_shows_bytes() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * (4_700_000 - 8)
    assert refusal(data) == (
        "image: file size must be less than 4.7 MB, got 4.7 MB (4,700,000 bytes)"
    )


def test_truncated_jpeg_is_refused() -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG")
    message = refusal(data[: len(data) // 2])
    assert message.startswith("image: could not be decoded: ")


def test_png_bomb_is_refused_from_the_header() -> None:
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 200
    # The header check names the size: had Pillow tried to decode, it would fail on the
    # few bytes of data with a different message.
    assert refusal(bomb) == "image: longest side must be at most 4096 pixels, got 20000"
    assert refusal(bomb, rules=None) == (
        "image: image is 20000x20000 pixels, more than the 67 megapixels this service decodes"
    )


def test_png_bomb_never_reaches_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    def forbidden(self: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    assert "20000" in refusal(png_bomb(20000, 20000), rules=None)
    assert "4097" in refusal(png_bomb(4097, 1000))


def test_pillow_bomb_threshold_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = refusal(solid((400, 400)))
    assert message.startswith("image: image is too large to decode safely")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (encode(Image.new("P", (400, 400)), "GIF"), "GIF"),
        (encode(Image.new("RGB", (400, 400)), "BMP"), "BMP"),
        (encode(Image.new("RGB", (400, 400)), "TIFF"), "TIFF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 400 400\n", "EPS"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"/>', "SVG"),
        (b'<?xml version="1.0"?>\n<svg width="400"/>', "SVG"),
        (b"%PDF-1.7\n", "PDF"),
    ],
)
def test_other_formats_are_refused_by_name(data: bytes, name: str) -> None:
    assert refusal(data) == f"image: format {name} is not accepted; send JPEG, PNG or WebP"


def test_text_and_unknown_bytes_are_refused() -> None:
    assert refusal(b"hello, this is not an image\n") == (
        "image: file is text, not an image; send JPEG, PNG or WebP"
    )
    assert refusal(b"<!DOCTYPE html><html></html>").startswith("image: file is HTML")
    assert refusal(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40) == (
        "image: could not be decoded: damaged or incomplete PNG header"
    )
    assert refusal(bytes(range(256))) == (
        "image: file is not a recognized image; send JPEG, PNG or WebP"
    )
    assert refusal(b"") == "image: file is empty (0 bytes)"


def test_route_rules_can_narrow_formats() -> None:
    rules = ImageRules(formats=("JPEG", "PNG"))
    data = encode(Image.new("RGB", (400, 400)), "WEBP")
    assert refusal(data, rules=rules) == "image: format WebP is not accepted; send JPEG or PNG"


def test_animated_png_is_refused() -> None:
    frames = [Image.new("RGB", (400, 400), (i * 80, 0, 0)) for i in range(3)]
    data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:])
    assert refusal(data) == (
        "image: animated images are not accepted, got 3 frames; send a still image"
    )


def test_animated_webp_is_refused() -> None:
    frames = [Image.new("RGB", (400, 400), (0, i * 80, 0)) for i in range(2)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])
    assert refusal(data).startswith("image: animated images are not accepted, got 2 frames")


def test_multi_picture_jpeg_uses_the_first_picture() -> None:
    first = Image.new("RGB", (400, 400), (200, 0, 0))
    second = Image.new("RGB", (400, 400), (0, 200, 0))
    image = decode_image(encode(first, "MPO", save_all=True, append_images=[second]))
    assert image.format == "JPEG"
    r, g, _ = (int(v) for v in image.pixels[10, 10])
    assert r > 180
    assert g < 20


def test_rgb_colour_key_transparency_is_composited() -> None:
    im = Image.new("RGB", (400, 400), (0, 255, 0))
    im.paste((10, 20, 30), (0, 0, 100, 400))
    pixels = decode_image(encode(im, "PNG", transparency=(0, 255, 0))).pixels
    assert tuple(pixels[5, 5]) == (10, 20, 30)
    assert tuple(pixels[5, 300]) == (255, 255, 255)


def test_field_name_is_used() -> None:
    assert refusal(solid((300, 400)), field="last_image").startswith("last_image: shortest side")


def test_rules_none_skips_size_rules_but_not_format() -> None:
    assert decode_image(solid((100, 40)), rules=None).width == 100
    assert "GIF" in refusal(encode(Image.new("P", (10, 10)), "GIF"), rules=None)
    assert HARD_MAX_PIXELS == 8192 * 8192


def test_corrupted_inputs_only_ever_raise_image_error() -> None:
    rng = np.random.default_rng(11)
    sources = [
        encode(Image.fromarray(rng.integers(0, 256, (340, 360, 3), dtype=np.uint8)), fmt)
        for fmt in ("PNG", "JPEG", "WEBP")
    ]
    for data in sources:
        for cut in (8, 16, 33, 100, len(data) // 3, len(data) // 2):
            with pytest.raises(ImageError):
                decode_image(data[:cut])
        # a missing trailer may be tolerated, but never with a foreign exception
        with contextlib.suppress(ImageError):
            decode_image(data[:-5])
        for _ in range(25):
            damaged = bytearray(data)
            for position in rng.integers(12, len(data), 8):
                damaged[int(position)] ^= 0xFF
            with contextlib.suppress(ImageError):
                decode_image(bytes(damaged))


def test_warning_filters_are_left_as_they_were() -> None:
    before = list(warnings.filters)
    decode_image(solid((400, 400)))
    refusal(png_bomb(20000, 20000))
    assert list(warnings.filters) == before


def test_sniff_format_names() -> None:
    assert sniff_format(solid((4, 4))) == "PNG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"\x00\x00\x00\x1cftypheic") == "HEIF"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert RUNCOMFY_RULES.max_bytes == 4_700_000
