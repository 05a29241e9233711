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
