from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from i2v.domain.errors import Cancelled, EngineError
from i2v.domain.request import RGBImage
from i2v.video import EncoderSettings, encode, probe, top_level_boxes


def gradient_frames(n: int, width: int = 96, height: int = 64) -> Iterator[RGBImage]:
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    for i in range(n):
        frame = np.broadcast_to(ramp, (height, width, 3)) * 0.8 + i % 50
        yield np.ascontiguousarray(frame.astype(np.uint8))


def test_encode_writes_exactly_the_frames_given(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    seen: list[int] = []
    assert encode(gradient_frames(30), out, width=96, height=64, on_frame=seen.append) == 30
    assert seen == list(range(1, 31))
    info = probe(out)
    assert (info.width, info.height, info.frames) == (96, 64, 30)
    assert info.fps == 24
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert info.duration_s == pytest.approx(30 / 24, abs=0.01)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 30


def test_the_index_comes_first_so_browsers_can_stream(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    encode(gradient_frames(10), out, width=96, height=64)
    boxes = top_level_boxes(out)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")
    assert probe(out).faststart


def test_same_frames_give_the_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    encode(gradient_frames(40), a, width=96, height=64)
    encode(gradient_frames(40), b, width=96, height=64)
    encode(gradient_frames(41), c, width=96, height=64)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_the_bytes_do_not_depend_on_what_ran_before(tmp_path: Path) -> None:
    # With x264's macroblock tree on, this exact sequence gave 2-4 different files out of 4
    # in most runs: it reads heap memory that a previous, larger encode left behind.
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 380, 3), dtype=np.uint8), (0, 0), 3)
    clip = [np.ascontiguousarray(base[i : i + 180, i : i + 320]) for i in range(20)]
    digests = set()
    for _ in range(4):
        noise = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(3)]
        encode(iter(noise), tmp_path / "noise.mp4", width=1280, height=720)
        encode(iter(clip), tmp_path / "clip.mp4", width=320, height=180)
        digests.add((tmp_path / "clip.mp4").read_bytes())
    assert len(digests) == 1


def test_the_frame_count_is_checked(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    with pytest.raises(EngineError, match="expected 12 frames, the engine gave 10"):
        encode(gradient_frames(10), out, width=96, height=64, expected_frames=12)
    assert not out.exists()
    with pytest.raises(EngineError, match="no frames"):
        encode(iter([]), out, width=96, height=64)
    assert not out.exists()


def test_an_error_in_the_frames_removes_the_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"

    def cancelled_midway() -> Iterator[RGBImage]:
        yield from gradient_frames(8)
        raise Cancelled()

    with pytest.raises(Cancelled):
        encode(cancelled_midway(), out, width=96, height=64)
    assert not out.exists()


def test_wrong_frame_shape_and_odd_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="frame 0"):
        encode(gradient_frames(3, 94, 64), tmp_path / "v.mp4", width=96, height=64)
    with pytest.raises(EngineError, match="even"):
        encode(gradient_frames(3, 95, 64), tmp_path / "v.mp4", width=95, height=64)


def test_an_encoder_failure_surfaces_in_the_caller(tmp_path: Path) -> None:
    with pytest.raises(av.error.FFmpegError):
        encode(
            gradient_frames(5),
            tmp_path / "v.mp4",
            width=96,
            height=64,
            settings=EncoderSettings(preset="no-such-preset"),
        )


def test_i420_frames_go_to_x264_as_they_are(tmp_path: Path) -> None:
    # The RGB path converts with cv2's RGB2YUV_I420 in the encoder thread; handing it those
    # same I420 arrays must give the same file, byte for byte.
    rgb, i420 = tmp_path / "rgb.mp4", tmp_path / "i420.mp4"
    encode(gradient_frames(12), rgb, width=96, height=64)
    converted = (cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420) for f in gradient_frames(12))
    assert encode(converted, i420, width=96, height=64, pixel_format="yuv420p") == 12
    assert i420.read_bytes() == rgb.read_bytes()
    info = probe(i420)
    assert (info.width, info.height, info.frames, info.pix_fmt) == (96, 64, 12, "yuv420p")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((64, 96, 3), r"a yuv420p frame must be 96x96 uint8, got \(64, 96, 3\)"),
        ((64, 96), r"a yuv420p frame must be 96x96 uint8, got \(64, 96\)"),
        ((96, 94), r"got \(96, 94\)"),
    ],
)
def test_wrong_i420_shapes_are_refused(
    tmp_path: Path, shape: tuple[int, ...], message: str
) -> None:
    out = tmp_path / "v.mp4"
    frames = iter([np.zeros(shape, np.uint8)])
    with pytest.raises(EngineError, match=message):
        encode(frames, out, width=96, height=64, pixel_format="yuv420p")
    assert not out.exists()


def test_an_i420_frame_is_not_taken_for_rgb_nor_an_unknown_format(tmp_path: Path) -> None:
    i420 = [np.zeros((96, 96), np.uint8)]
    with pytest.raises(EngineError, match=r"a rgb24 frame must be 64x96x3 uint8"):
        encode(iter(i420), tmp_path / "v.mp4", width=96, height=64)
    with pytest.raises(
        EngineError, match="pixel_format: must be one of rgb24, yuv420p, got 'nv12'"
    ):
        encode(iter(i420), tmp_path / "v.mp4", width=96, height=64, pixel_format="nv12")  # type: ignore[arg-type]
