"""Count the parts of an image container from its markers, without decoding anything.

A decoder's work can grow with the number of parts a file has, not with its size: each scan
of a progressive JPEG makes libjpeg walk the whole coefficient buffer again, so a 155 KB
4096x4096 JPEG whose last scan repeats 1,000 times takes 16 s to decode, and at the 4.7 MB
cap it could repeat 80,000 times. These walks only follow lengths and markers (a regex
search in C over the entropy-coded data), so they cost milliseconds at the size cap, and
refuse a file before any decoder sees it.

The limits sit far above what real encoders write:

- JPEG scans: libjpeg's (and Pillow's) progressive script has 10 scans for colour and 6 for
  grayscale; mozjpeg's scan optimization and jpegtran pick from the same kind of scripts (12
  at most seen); a baseline file has 1 (3 when components are not interleaved). 64 leaves
  five times headroom and keeps the worst accepted decode at about 64 passes (about 1 s for
  a 4096x4096 image on one core).
- JPEG segments (every marker with a length): a camera file has about 20, a progressive one
  with a table per scan about 40, extended XMP a few dozen more; past 4,096 the walk stops
  and the file is refused, so the walk itself is bounded too (a 4.7 MB file could hold a
  million empty segments, a second of Python to walk).
- PNG: libpng splits the data into 8 KB IDAT chunks, so a 4.7 MB PNG has about 600; 16,384
  covers a 128 MB PNG. Every other chunk (text, colour, EXIF...) is parsed in Python at
  open; editors write a few dozen; 256 is the cap.
- WebP: a still image has at most six chunks (VP8X, ICCP, ALPH, VP8/VP8L, EXIF, XMP);
  an animation (more than one ANMF frame chunk) is refused before Pillow walks its frames.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from i2v.domain.errors import ImageError

MAX_JPEG_SCANS = 64
MAX_JPEG_SEGMENTS = 4_096
MAX_PNG_IDAT_CHUNKS = 16_384
MAX_PNG_OTHER_CHUNKS = 256
MAX_WEBP_CHUNKS = 64

# A marker inside or between segments: 0xFF, then anything but a stuffed zero, a restart
# marker (both occur inside entropy-coded data) or another 0xFF (fill bytes before a marker).
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI, _SOI, _TEM = 0xDA, 0xD9, 0xD8, 0x01
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_structure(data: bytes, fmt: str, field: str) -> None:
    """Refuse `data` (already sniffed as `fmt`) when it has more parts than any real file of
    its format, or is animated; `ImageError` names the rule and the count."""
    if fmt == "JPEG":
        parts = jpeg_parts(data)
        _check_count("a JPEG", "scans", parts.scans, MAX_JPEG_SCANS, parts.stopped, field)
        _check_count(
            "a JPEG", "marker segments", parts.segments, MAX_JPEG_SEGMENTS, parts.stopped, field
        )
    elif fmt == "PNG":
        idat, other = png_chunks(data)
        # The PNG and WebP walks stop at the first count past a limit: "at least" is exact.
        _check_count("a PNG", "IDAT chunks", idat, MAX_PNG_IDAT_CHUNKS, True, field)
        _check_count("a PNG", "chunks besides IDAT", other, MAX_PNG_OTHER_CHUNKS, True, field)
    elif fmt == "WEBP":
        chunks, frames = webp_chunks(data)
        if frames > 1:
            raise animation_refused(frames, field)
        _check_count("a WebP", "chunks", chunks, MAX_WEBP_CHUNKS, True, field)


def animation_refused(frames: int, field: str) -> ImageError:
    """The refusal of an image with `frames` (> 1) frames."""
    return ImageError(
        f"animated images are not accepted, got {frames} frames; send a still image",
        field=field,
        value=frames,
    )


def _check_count(what: str, parts: str, count: int, limit: int, stopped: bool, field: str) -> None:
    if count > limit:
        got = f"at least {count}" if stopped else str(count)
        raise ImageError(
            f"{what} may have at most {limit} {parts}, got {got}", field=field, value=count
        )


@dataclass(frozen=True)
class JpegParts:
    """What a walk of a JPEG's markers counted. `stopped`: the walk gave up past
    `MAX_JPEG_SEGMENTS`, so the file has at least that many parts."""

    scans: int
    segments: int
    stopped: bool


def jpeg_parts(data: bytes) -> JpegParts:
    """The scans (SOS segments) and all marker segments of a JPEG's first picture, up to its
    EOI or `MAX_JPEG_SEGMENTS` + 1 segments.

    Walks segment lengths and searches the entropy-coded data for the next marker, as a
    decoder does; a truncated or damaged file just ends the walk (the decoder reports it).
    """
    scans = segments = 0
    pos = 2  # after SOI
    size = len(data)
    while segments <= MAX_JPEG_SEGMENTS:
        found = _JPEG_MARKER.search(data, pos)
        if found is None:
            break
        at = found.start()
        marker = data[at + 1]
        if marker == _EOI or at + 4 > size:
            break
        if marker in (_SOI, _TEM):
            pos = at + 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        segments += 1
        if marker == _SOS:
            scans += 1
        # A length under 2 is damage; step past the marker so the walk always advances.
        pos = at + 2 + max(length, 2)
    return JpegParts(scans, segments, stopped=segments > MAX_JPEG_SEGMENTS)


def png_chunks(data: bytes) -> tuple[int, int]:
    """`(IDAT chunks, other chunks)` of a PNG, up to IEND, the end of the data or the first
    count past its limit (the walk is bounded by the limits, not by the file)."""
    if not data.startswith(_PNG_SIGNATURE):
        return 0, 0
    idat = other = 0
    pos = len(_PNG_SIGNATURE)
    size = len(data)
    while pos + 8 <= size and idat <= MAX_PNG_IDAT_CHUNKS and other <= MAX_PNG_OTHER_CHUNKS:
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            idat += 1
        else:
            other += 1
        if kind == b"IEND":
            break
        pos += 12 + length  # length, type, data, CRC
    return idat, other


def webp_chunks(data: bytes) -> tuple[int, int]:
    """`(chunks, animation frames)` of a WebP (RIFF) file, up to the end of the data or the
    first chunk past `MAX_WEBP_CHUNKS`. A still image has no ANMF chunk (0 frames)."""
    chunks = frames = 0
    pos = 12  # "RIFF", size, "WEBP"
    size = len(data)
    while pos + 8 <= size and chunks <= MAX_WEBP_CHUNKS:
        kind, length = struct.unpack_from("<4sI", data, pos)
        chunks += 1
        if kind == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)  # chunks are padded to an even size
    return chunks, frames
