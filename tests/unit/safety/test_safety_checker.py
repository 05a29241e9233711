"""The safety checker: which frames it looks at, what counts as explicit, and the real
NudeNet model (offline: its ONNX file ships in the wheel) on ordinary photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from i2v.domain.errors import ConfigError
from i2v.safety import create_checker, frames_to_check
from i2v.safety.nudity import NudeNetChecker, is_explicit
from i2v.video.frames import to_rgb
from photos import photo_bytes


def test_frames_to_check_spread_over_the_video() -> None:
    assert frames_to_check(121) == frozenset({0, 17, 34, 51, 69, 86, 103, 120})
    assert frames_to_check(241, samples=3) == frozenset({0, 120, 240})
    assert frames_to_check(5) == frozenset(range(5))


def test_only_exposed_intimate_parts_above_the_threshold_count() -> None:
    def d(cls: str, score: float) -> dict[str, object]:
        return {"class": cls, "score": score, "box": [0, 0, 10, 10]}

    assert is_explicit([d("FEMALE_BREAST_EXPOSED", 0.8)], 0.45)
    assert is_explicit([d("FACE_FEMALE", 0.99), d("MALE_GENITALIA_EXPOSED", 0.5)], 0.45)
    assert not is_explicit([d("FEMALE_BREAST_EXPOSED", 0.3)], 0.45)
    assert not is_explicit([d("FEMALE_BREAST_COVERED", 0.9), d("BELLY_EXPOSED", 0.9)], 0.45)
    assert not is_explicit([], 0.45)


def test_the_checker_hands_nudenet_the_frame_in_the_layout_it_reads() -> None:
    seen: list[np.ndarray] = []

    class Detector:
        def detect(self, image: np.ndarray) -> list[dict[str, object]]:
            seen.append(image)
            return [{"class": "BUTTOCKS_EXPOSED", "score": 0.7, "box": [0, 0, 1, 1]}]

    frame = np.zeros((4, 6, 3), np.uint8)
    frame[..., 0] = 200  # red
    assert NudeNetChecker(threshold=0.45, detector=Detector()).is_explicit(frame)
    assert seen[0].shape == (4, 6, 4)
    # NudeNet applies RGBA2BGR then swaps to RGB: the model must see red as red.
    assert cv2.cvtColor(seen[0], cv2.COLOR_RGBA2BGR)[0, 0].tolist() == [0, 0, 200]


def test_real_nudenet_passes_ordinary_photos() -> None:
    checker = create_checker("nudenet", threshold=0.45)
    assert checker is not None
    photo = cv2.cvtColor(cv2.imdecode(np.frombuffer(photo_bytes(), np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert not checker.is_explicit(photo)
    assert not checker.is_explicit(np.full((480, 640, 3), 128, np.uint8))


def test_i420_frames_are_converted_to_rgb() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 1] = 180
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    back = to_rgb(i420, "yuv420p")
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).max() <= 3
    assert to_rgb(rgb, "rgb24") is rgb


def test_unknown_and_disabled_checkers() -> None:
    assert create_checker("off", threshold=0.5) is None
    assert create_checker("auto", threshold=0.5) is not None  # the extra is installed here
    with pytest.raises(ConfigError, match="safety_checker: must be one of auto, nudenet, off"):
        create_checker("strict", threshold=0.5)
