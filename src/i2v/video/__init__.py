"""Video files: encode RGB or I420 frames to H.264 MP4 (PyAV) and probe what was written."""

from __future__ import annotations

from i2v.video.encode import DEFAULT_SETTINGS, EncoderSettings, encode
from i2v.video.probe import VideoInfo, probe, top_level_boxes

__all__ = ["DEFAULT_SETTINGS", "EncoderSettings", "VideoInfo", "encode", "probe", "top_level_boxes"]
