"""NudeNet's detector as the safety checker (the `safety` extra: nudenet + onnxruntime)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from nudenet import NudeDetector  # the `safety` extra; create_checker handles its absence

# Of NudeNet's 18 classes, the ones that make a frame explicit; faces, feet, covered
# parts and exposed bellies or armpits do not.
EXPLICIT = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)


class NudeNetChecker:
    def __init__(self, *, threshold: float, detector: Any = None) -> None:
        if detector is None:
            detector = NudeDetector()  # loads the ONNX model inside the wheel
        self._detector = detector
        self.threshold = threshold

    def is_explicit(self, frame: np.ndarray) -> bool:
        # NudeNet converts its input with RGBA2BGR, so RGBA is the layout it reads right.
        detections = self._detector.detect(cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA))
        return is_explicit(detections, self.threshold)


def is_explicit(detections: list[dict[str, Any]], threshold: float) -> bool:
    return any(d["class"] in EXPLICIT and d["score"] >= threshold for d in detections)
