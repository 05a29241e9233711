"""Decode an untrusted image into normalized RGB pixels, or refuse it with a precise reason.

Order matters and is the point of this module:

1. the byte size is checked before Pillow sees the data;
2. the format is chosen by magic bytes from an allowlist (no GIF/BMP/TIFF/EPS/SVG/... plugin
   ever parses our input);
3. the container's parts are counted from its markers (`i2v.intake.structure`: JPEG scans,
   PNG chunks, WebP frames), so a scan bomb is refused before a decoder sees it;
4. the dimensions are read from the header and checked against the rules and a hard pixel cap
   *before* any pixel is decoded, so a 20000x20000 "bomb" costs a few bytes of parsing;
5. only then are pixels decoded, EXIF orientation applied and the mode normalized to RGB.

`decode_image` returns the pixels; `inspect_image` runs the same checks and the same decode
but keeps only the facts (size, format), which is all an API process needs to accept a job.

Every Pillow failure leaves here as an `ImageError`; nothing else escapes.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from i2v.domain.errors import ImageError
from i2v.domain.request import RGBImage
from i2v.intake.structure import animation_refused, check_structure

# Transparent pixels are composited onto white: it is what a browser or an image viewer shows
# for a transparent PNG on a page, so the first video frame matches what the user saw.
BACKGROUND = (255, 255, 255)

# Absolute cap on decoded pixels, even with no rules (64 Mpx = 192 MiB of RGB). It sits below
# Pillow's own bomb threshold (~89 Mpx), so our check always fires first and names the size.
HARD_MAX_PIXELS = 8192 * 8192

_DISPLAY = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}

# Magic numbers we recognise only to *name* a refused file; none of these reaches a decoder.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"qoif", "QOI"),
    (b"DDS ", "DDS"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "HDR"),
)

# catch_warnings swaps process-global state; two threads nesting it can leave the filters
# changed for good. This serializes in-process decodes only (a worker's, `i2v generate`'s);
# the API decodes in `i2v.intake.decoder`'s child processes, one decode per process.
_DECODE_LOCK = threading.Lock()

# What each EXIF orientation asks of the stored pixels to show the picture upright (the TIFF
# tags' table; 1, and any value outside 1-8, shows the picture as stored).
_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Those that turn the picture a quarter turn: width and height swap.
_QUARTER_TURNS = frozenset(
    {
        Image.Transpose.TRANSPOSE,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
    }
)

T = TypeVar("T")


@dataclass(frozen=True)
class ImageRules:
    """Limits an input image must meet. Sizes apply to the image as displayed (EXIF-oriented).

    `max_bytes` is decimal: RunComfy's "4.7 MB" is 4,700,000 bytes, and the size must be
    strictly less. Sides must be strictly more than `min_side_exclusive` and at most
    `max_side`. The long/short ratio may be at most `max_ratio` (3:1 itself passes; the seed's
    `width/height < 3` and `> 0.33` disagree on that edge, we take the symmetric reading).
    """

    max_bytes: int | None = 4_700_000
    min_side_exclusive: int = 320
    max_side: int = 4096
    max_ratio: float = 3.0
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")


RUNCOMFY_RULES = ImageRules()


@dataclass(frozen=True)
class ImageFacts:
    """What intake learned about an image that passed every rule and decoded: its size as
    displayed (EXIF-oriented), its format and its byte size; no pixels."""

    width: int
    height: int
    format: str
    size_bytes: int


@dataclass(frozen=True)
class IntakeImage:
    """A validated image: RGB pixels (EXIF orientation applied) plus what it came as."""

    pixels: RGBImage
    width: int
    height: int
    format: str
    size_bytes: int

    def encode_png(self) -> bytes:
        """Lossless PNG of the normalized pixels (no EXIF, ICC or text chunks carried over).

        Level 1: half the time of level 3 for about 5% more bytes; the copy is short-lived.
        """
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


def sniff_format(data: bytes) -> str | None:
    """Name the file type from its first bytes ("JPEG", "WEBP", "GIF", "text"...), or None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIF"
        return "MP4"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    sample = data[:512]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "text"
    return None


def decode_image(
    data: bytes, *, field: str = "image", rules: ImageRules | None = RUNCOMFY_RULES
) -> IntakeImage:
    """Validate and decode `data`; raise `ImageError` naming `field`, the rule and the value.

    With `rules=None` only the format allowlist (JPEG, PNG, WebP), the structure limits, the
    animation refusal and the hard pixel cap apply.
    """
    return _checked_decode(data, field, rules, _pixels)


def inspect_image(
    data: bytes, *, field: str = "image", rules: ImageRules | None = RUNCOMFY_RULES
) -> ImageFacts:
    """Every check and the full decode of `decode_image` (so a damaged file is refused), but
    only the facts are kept: no orientation or RGB conversion of the pixels."""
    return _checked_decode(data, field, rules, _facts)


def _checked_decode(
    data: bytes,
    field: str,
    rules: ImageRules | None,
    finish: Callable[[Image.Image, str, int], T],
) -> T:
    effective = rules or ImageRules(max_bytes=None, min_side_exclusive=0, max_side=0, max_ratio=0)
    size = len(data)
    if size == 0:
        raise ImageError("file is empty (0 bytes)", field=field, value=0)
    if effective.max_bytes is not None and size >= effective.max_bytes:
        raise ImageError(
            f"file size must be less than {_mb(effective.max_bytes)} MB, "
            f"got {_got_mb(size, effective.max_bytes)}",
            field=field,
            value=size,
        )
    fmt = _check_format(data, effective.formats, field)
    check_structure(data, fmt, field)
    with _DECODE_LOCK, warnings.catch_warnings():
        # Pillow's other warnings (odd EXIF, palette notes) are noise for a refusal decision;
        # the bomb warning is promoted to an error so it can never pass silently.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(data, fmt, effective, rules is not None, field, finish)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow's own threshold fired inside open(); name the size by our rules when the
            # header can be read without it, otherwise pass on Pillow's reason.
            _check_header_only(data, fmt, effective, rules is not None, field)
            raise ImageError(
                f"image is too large to decode safely ({exc})", field=field, value=size
            ) from exc
        except UnidentifiedImageError as exc:
            raise ImageError(
                f"could not be decoded: damaged or incomplete {_DISPLAY[fmt]} header",
                field=field,
                value=size,
            ) from exc
        except MemoryError as exc:
            raise ImageError("image is too large to decode", field=field, value=size) from exc
        except Exception as exc:
            raise ImageError(
                f"could not be decoded: {_reason(exc)}", field=field, value=size
            ) from exc


def _check_format(data: bytes, formats: tuple[str, ...], field: str) -> str:
    accepted = _accepted_text(formats)
    detected = sniff_format(data)
    if detected in formats:
        return detected
    if detected is None:
        raise ImageError(
            f"file is not a recognized image; send {accepted}", field=field, value=data[:16]
        )
    if detected in ("text", "HTML"):
        raise ImageError(
            f"file is {detected}, not an image; send {accepted}", field=field, value=data[:16]
        )
    raise ImageError(
        f"format {_DISPLAY.get(detected, detected)} is not accepted; send {accepted}",
        field=field,
        value=detected,
    )


def _decode(
    data: bytes,
    fmt: str,
    rules: ImageRules,
    check_rules: bool,
    field: str,
    finish: Callable[[Image.Image, str, int], T],
) -> T:
    with Image.open(io.BytesIO(data), formats=[fmt]) as im:
        _check_dimensions(im.size, rules, check_rules, field)  # header only: nothing decoded
        frames = int(getattr(im, "n_frames", 1))
        # A multi-picture JPEG (MPO: stereo pairs, phone depth maps) is a photo plus extras,
        # not an animation; its first picture is the photo and is what open() selected.
        if frames > 1 and fmt != "JPEG":
            raise animation_refused(frames, field)
        im.load()
        return finish(im, fmt, len(data))


@dataclass(frozen=True)
class _Orientation:
    """How a picture is shown: the transpose its EXIF orientation asks for (None: as
    stored) and its size once transposed."""

    transpose: Image.Transpose | None
    width: int
    height: int


def _orientation(im: Image.Image) -> _Orientation:
    """The one reading of `im`'s EXIF orientation, for both the facts the API accepts a job
    on and the pixels the worker renders, so the two can never disagree on the size."""
    try:
        tag = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        # A broken EXIF block is common in phone and editor output; the pixels themselves
        # are fine, so show them as stored rather than refuse the photo.
        tag = 1
    # Only a number names an orientation; a malformed tag ("6" as text) is shown as stored.
    transpose = _TRANSPOSES.get(tag) if isinstance(tag, int) else None
    width, height = im.size
    if transpose in _QUARTER_TURNS:
        width, height = height, width
    return _Orientation(transpose, width, height)


def _pixels(im: Image.Image, fmt: str, size_bytes: int) -> IntakeImage:
    pixels = _to_rgb(_orient(im, _orientation(im)))
    out_height, out_width = pixels.shape[:2]
    return IntakeImage(
        pixels=pixels, width=out_width, height=out_height, format=fmt, size_bytes=size_bytes
    )


def _facts(im: Image.Image, fmt: str, size_bytes: int) -> ImageFacts:
    shown = _orientation(im)
    return ImageFacts(width=shown.width, height=shown.height, format=fmt, size_bytes=size_bytes)


def _check_header_only(
    data: bytes, fmt: str, rules: ImageRules, check_rules: bool, field: str
) -> None:
    """Read the size through the format plugin directly, skipping Image.open's bomb check.

    Constructing the plugin parses the header only; no pixel buffer is allocated.
    """
    factory = Image.OPEN[fmt][0]
    try:
        with factory(io.BytesIO(data), "") as im:
            size = im.size
    except Exception:
        return
    _check_dimensions(size, rules, check_rules, field)


def _check_dimensions(
    size: tuple[int, int], rules: ImageRules, check_rules: bool, field: str
) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})", field=field, value=size)
    if check_rules:
        # Orientation only swaps width and height; every rule is symmetric in the two, so
        # they can all be enforced on the header size before decoding.
        _check_size(width, height, rules, field)
    if width * height > HARD_MAX_PIXELS:
        raise ImageError(
            f"image is {width}x{height} pixels, more than the "
            f"{HARD_MAX_PIXELS // 1_000_000} megapixels this service decodes",
            field=field,
            value=size,
        )


def _check_size(width: int, height: int, rules: ImageRules, field: str) -> None:
    short, long = min(width, height), max(width, height)
    if short <= rules.min_side_exclusive:
        raise ImageError(
            f"shortest side must be more than {rules.min_side_exclusive} pixels, got {short}",
            field=field,
            value=(width, height),
        )
    if long > rules.max_side:
        raise ImageError(
            f"longest side must be at most {rules.max_side} pixels, got {long}",
            field=field,
            value=(width, height),
        )
    ratio = long / short
    if ratio > rules.max_ratio:
        shown = f"{ratio:.2f}"
        if float(shown) <= rules.max_ratio:  # 3001x1000 must not read "got 3.00:1"
            shown = f"{ratio:.4f}"
        raise ImageError(
            f"ratio of long side to short side must be within {rules.max_ratio:g}:1, got {shown}:1",
            field=field,
            value=(width, height),
        )


def _orient(im: Image.Image, orientation: _Orientation) -> Image.Image:
    # transpose() keeps `info` (transparency, ICC profile), which the RGB conversion reads;
    # the EXIF left in it is dropped with the rest of the metadata.
    return im if orientation.transpose is None else im.transpose(orientation.transpose)


def _to_rgb(im: Image.Image) -> RGBImage:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        # convert("L") would clamp 16-bit values to 255; scale them instead (0x8000 -> 128).
        wide = np.asarray(im.convert("I"), dtype=np.int64)
        gray = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "CMYK":
        rgb = _cmyk_to_rgb(im)
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgb = _flatten(im.convert("RGBA"))
    else:
        rgb = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _flatten(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # unusable embedded profile: fall back to the naive formula
        if converted is not None:
            return converted
    return im.convert("RGB")


def _accepted_text(formats: tuple[str, ...]) -> str:
    names = [_DISPLAY.get(f, f) for f in formats]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g}"


def _got_mb(n: int, limit: int) -> str:
    shown = f"{n / 1_000_000:.1f}"
    if float(shown) * 1_000_000 <= limit:
        # near the limit one decimal hides the overshoot ("4.7 MB" for 4,700,123 bytes)
        return f"{shown} MB ({n:,} bytes)"
    return f"{shown} MB"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
