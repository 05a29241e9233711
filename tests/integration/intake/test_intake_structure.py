"""Container walks refuse decode bombs by their part counts, before any decoder runs."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from hostile import progressive_jpeg, scan_bomb
from i2v.domain.errors import ImageError
from i2v.intake import image as image_module
from i2v.intake.image import decode_image, inspect_image
from i2v.intake.structure import (
    MAX_JPEG_SCANS,
    MAX_JPEG_SEGMENTS,
    MAX_PNG_IDAT_CHUNKS,
    MAX_PNG_OTHER_CHUNKS,
    jpeg_parts,
    png_chunks,
    webp_chunks,
)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with(idat_chunks: int, text_chunks: int, size: int = 400) -> bytes:
    """A valid size x size gray PNG whose data is split over `idat_chunks` IDAT chunks and
    which carries `text_chunks` tEXt chunks."""
    raw = b"".join(b"\x00" + bytes(size) for _ in range(size))
    compressed = zlib.compress(raw, 9)
    step = -(-len(compressed) // idat_chunks)
    pieces = [compressed[i : i + step] for i in range(0, len(compressed), step)]
    pieces += [b""] * (idat_chunks - len(pieces))  # empty IDAT chunks are legal
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
        + b"".join(png_chunk(b"tEXt", b"k\x00v") for _ in range(text_chunks))
        + b"".join(png_chunk(b"IDAT", piece) for piece in pieces)
        + png_chunk(b"IEND", b"")
    )


class DecoderCalled(BaseException):  # not an Exception: intake must not wrap it
    pass


@pytest.fixture
def no_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if intake hands the data to Pillow at all."""

    def spy(*args: object, **kwargs: object) -> None:
        raise DecoderCalled("Image.open was called")

    monkeypatch.setattr(image_module.Image, "open", spy)


# --- JPEG scans ----------------------------------------------------------------------------


def test_a_real_progressive_jpeg_has_the_libjpeg_script_and_decodes() -> None:
    data = progressive_jpeg(640, 480)
    assert jpeg_parts(data).scans == 10
    assert decode_image(data).format == "JPEG"


def test_a_baseline_jpeg_has_one_scan() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 400), (1, 2, 3)).save(buffer, format="JPEG")
    assert jpeg_parts(buffer.getvalue()).scans == 1


def test_scan_bomb_is_refused_before_the_decoder_runs(no_decoder: None) -> None:
    bomb = scan_bomb(640, 480, 1000)
    with pytest.raises(ImageError) as info:
        decode_image(bomb)
    assert info.value.message == "image: a JPEG may have at most 64 scans, got 1010"


def test_scan_bomb_is_refused_by_inspect_too(no_decoder: None) -> None:
    with pytest.raises(ImageError, match="at most 64 scans"):
        inspect_image(scan_bomb(640, 480, 100), field="last_image")


def test_scan_limit_edge(no_decoder: None) -> None:
    # 10 scans + 54 repeats = 64: passes the walk and reaches the (spied) decoder.
    with pytest.raises(DecoderCalled):
        decode_image(scan_bomb(400, 400, MAX_JPEG_SCANS - 10))
    with pytest.raises(ImageError, match=r"got 65$"):
        decode_image(scan_bomb(400, 400, MAX_JPEG_SCANS - 9))


def test_the_walk_is_bounded_by_the_segment_cap(no_decoder: None) -> None:
    # A million empty scans in 4 MB: the walk stops past the cap instead of walking them all.
    flood = b"\xff\xd8" + b"\xff\xda\x00\x02" * 1_000_000 + b"\xff\xd9"
    parts = jpeg_parts(flood)
    assert parts.stopped
    assert parts.segments == MAX_JPEG_SEGMENTS + 1
    with pytest.raises(ImageError) as info:
        decode_image(flood, rules=None)
    assert info.value.message == (
        f"image: a JPEG may have at most 64 scans, got at least {MAX_JPEG_SEGMENTS + 1}"
    )


def test_many_comment_segments_are_refused(no_decoder: None) -> None:
    data = progressive_jpeg(400, 400)
    comments = b"\xff\xfe\x00\x04hi" * (MAX_JPEG_SEGMENTS + 10)
    with pytest.raises(ImageError, match="at most 4096 marker segments, got at least 4097"):
        decode_image(data[:2] + comments + data[2:])


def test_markers_inside_segments_and_stuffed_bytes_are_not_scans() -> None:
    # An APP segment whose payload contains FF DA bytes, and entropy data full of FF 00 and
    # restart markers: only the one real SOS counts.
    app = b"\xff\xe1\x00\x06" + b"\xff\xda\xff\xda"
    entropy = b"\x12\xff\x00\x34\xff\xd0\x56\xff\xff\xd9"
    data = b"\xff\xd8" + app + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + entropy
    parts = jpeg_parts(data)
    assert (parts.scans, parts.segments, parts.stopped) == (1, 2, False)


def test_a_truncated_jpeg_ends_the_walk_and_the_decoder_reports_it() -> None:
    data = progressive_jpeg(400, 400)
    assert jpeg_parts(data[:-1000]).scans <= 10
    with pytest.raises(ImageError, match="could not be decoded"):
        decode_image(data[: len(data) // 3])


# --- PNG chunks ----------------------------------------------------------------------------


def test_png_chunks_are_counted() -> None:
    data = png_with(idat_chunks=7, text_chunks=3)
    assert png_chunks(data) == (7, 3 + 2)  # tEXt x3, IHDR, IEND
    assert decode_image(data).format == "PNG"


def test_png_with_too_many_idat_chunks_is_refused(no_decoder: None) -> None:
    data = png_with(idat_chunks=MAX_PNG_IDAT_CHUNKS + 5, text_chunks=0)
    with pytest.raises(ImageError) as info:
        decode_image(data)
    assert info.value.message == (
        f"image: a PNG may have at most {MAX_PNG_IDAT_CHUNKS} IDAT chunks, "
        f"got at least {MAX_PNG_IDAT_CHUNKS + 1}"
    )


def test_png_with_too_many_other_chunks_is_refused(no_decoder: None) -> None:
    data = png_with(idat_chunks=1, text_chunks=MAX_PNG_OTHER_CHUNKS)
    with pytest.raises(ImageError, match="at most 256 chunks besides IDAT, got at least 257"):
        decode_image(data)


# --- WebP ----------------------------------------------------------------------------------


def webp(frames: int) -> bytes:
    images = [Image.new("RGB", (400, 400), (0, i * 40, 0)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="WEBP", save_all=frames > 1, append_images=images[1:])
    return buffer.getvalue()


def test_still_webp_has_no_frames() -> None:
    chunks, frames = webp_chunks(webp(1))
    assert frames == 0
    assert chunks >= 1


def test_animated_webp_is_refused_before_the_decoder(no_decoder: None) -> None:
    with pytest.raises(ImageError) as info:
        decode_image(webp(3))
    assert info.value.message == (
        "image: animated images are not accepted, got 3 frames; send a still image"
    )


# --- facts ---------------------------------------------------------------------------------


def test_inspect_reports_the_size_decode_shows() -> None:
    im = Image.new("RGB", (640, 400), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    im.save(buffer, format="JPEG", exif=exif.tobytes())
    data = buffer.getvalue()
    facts = inspect_image(data)
    decoded = decode_image(data)
    assert (facts.width, facts.height) == (decoded.width, decoded.height) == (400, 640)
    assert (facts.format, facts.size_bytes) == ("JPEG", len(data))
