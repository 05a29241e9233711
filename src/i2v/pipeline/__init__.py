"""The render pipeline shared by the worker, `i2v generate` and the benchmarks."""

from __future__ import annotations

from i2v.pipeline.generate import generate_video, local_request
from i2v.pipeline.render import Rendered, load_request, render_to_file

__all__ = ["Rendered", "generate_video", "load_request", "local_request", "render_to_file"]
