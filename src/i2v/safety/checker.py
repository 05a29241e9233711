"""The safety checker: does a frame show explicit nudity? One verb, several implementations.

The worker shows it a few frames spread over each video (the first, the last and evenly in
between), as RGB, and flags the output if any is explicit. The default is NudeNet's
detector (an ONNX model shipped inside its wheel: nothing to download); `off` turns the
check off for the whole deployment, and requests can skip it (`enable_safety_checker`).
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from i2v.domain.errors import ConfigError

log = logging.getLogger(__name__)

SAMPLES = 8  # frames looked at per video: ~30 ms each for NudeNet on a CPU core
CHECKERS = ("auto", "nudenet", "off", "flag-all")


class SafetyChecker(Protocol):
    def is_explicit(self, frame: np.ndarray) -> bool:
        """Whether the RGB uint8 frame (height x width x 3) shows explicit content."""
        ...


def create_checker(name: str, *, threshold: float) -> SafetyChecker | None:
    """The checker named in settings; None for `off`. `auto` (the default) is NudeNet when
    the `safety` extra is installed and off otherwise, said in the log: a plain install
    starts, and one with the extra checks like WaveSpeed does."""
    if name == "off":
        return None
    if name in ("nudenet", "auto"):
        try:
            from i2v.safety.nudity import NudeNetChecker
        except ImportError:
            if name == "auto":
                log.warning("safety checker off: install i2v[safety] to check outputs")
                return None
            raise ConfigError(
                "safety_checker 'nudenet' needs the nudenet package: install i2v[safety], "
                "or set I2V_SAFETY_CHECKER=off"
            ) from None
        return NudeNetChecker(threshold=threshold)
    if name == "flag-all":
        from i2v.safety.fake import FlagEverything

        return FlagEverything()
    raise ConfigError(f"safety_checker: must be one of {', '.join(CHECKERS)}, got {name!r}")


def frames_to_check(count: int, samples: int = SAMPLES) -> frozenset[int]:
    """Indices of the frames to look at among `count`: first, last, evenly between."""
    if count <= samples:
        return frozenset(range(count))
    step = (count - 1) / (samples - 1)
    return frozenset(round(i * step) for i in range(samples))
