"""Generative engines through Hugging Face diffusers: Wan 2.x and LTX-Video.

Each engine runs its pipeline in a spawned child process (see `process`).
Importing this package does not import torch or diffusers: the child does.

    create_wan_engine(options)   WanImageToVideoPipeline (TI2V-5B, I2V-A14B, 2.1 I2V/FLF2V)
    create_ltx_engine(options)   LTXImageToVideoPipeline / LTXConditionPipeline

`options` is a catalog route's options table; see docs/generative-models.md.
"""

from __future__ import annotations

from typing import Any

from i2v.engines.diffusers.options import EngineOptions, parse_options
from i2v.engines.diffusers.process import ProcessEngine
from i2v.engines.diffusers.variants import read_variant
from i2v.engines.registry import ModelFacts


def create_wan_engine(options: dict[str, Any]) -> ProcessEngine:
    """A Wan 2.x image-to-video engine; the pipeline loads on the first render."""
    return ProcessEngine("wan", parse_options(options, "wan"))


def wan_model_facts(options: dict[str, Any]) -> ModelFacts | None:
    """The training fps of the Wan weights a route names, read from their configs (no
    torch); None while the weights are not on this machine (the child checks then)."""
    parsed = parse_options(options, "wan")
    variant = read_variant(parsed.weights, parsed.cache_dir)
    if variant is None:
        return None
    return ModelFacts(variant.name, variant.fps, variant.last_image)


def create_ltx_engine(options: dict[str, Any]) -> ProcessEngine:
    """An LTX-Video image-to-video engine; the pipeline loads on the first render."""
    return ProcessEngine("ltx", parse_options(options, "ltx"))


__all__ = [
    "EngineOptions",
    "ProcessEngine",
    "create_ltx_engine",
    "create_wan_engine",
    "wan_model_facts",
]
