"""The built-in motion engine: camera moves over a still, CPU only, no weights."""

from __future__ import annotations

from i2v.engines.motion.camera import Move, parse_move
from i2v.engines.motion.engine import MotionEngine, frame_image

__all__ = ["MotionEngine", "Move", "frame_image", "parse_move"]
