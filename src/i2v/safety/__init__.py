"""Safety checking of generated videos: `has_nsfw_contents` in the WaveSpeed dialect."""

from __future__ import annotations

from i2v.safety.checker import SafetyChecker, create_checker, frames_to_check

__all__ = ["SafetyChecker", "create_checker", "frames_to_check"]
