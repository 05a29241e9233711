"""A checker for service tests: flags every frame, so a test can see a flag go through."""

from __future__ import annotations

import numpy as np


class FlagEverything:
    def is_explicit(self, frame: np.ndarray) -> bool:
        return frame.ndim == 3 and frame.shape[2] == 3  # looked at a real RGB frame
