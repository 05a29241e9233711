"""Engine names -> metadata and a lazy factory. Importing this module imports no engine.

The API validates catalog routes against these names without importing torch;
the worker (wired by the CLI) calls `create` to get a live engine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from i2v.domain.errors import I2VError
from i2v.engines.base import Engine


@dataclass(frozen=True)
class EngineInfo:
    name: str
    description: str
    factory: str  # "module:callable"; the callable takes the route's options dict
    gpu: bool = False
    supports_last_image: bool = False


ENGINES: dict[str, EngineInfo] = {
    info.name: info
    for info in (
        EngineInfo(
            "motion",
            "Built-in camera-motion renderer (CPU, no weights): push-in, pull-out, pans, "
            "tilts, tracking, orbit, static; read from the prompt's camera language.",
            "i2v.engines.motion:MotionEngine",
        ),
        EngineInfo(
            "wan",
            "Wan 2.x image-to-video through diffusers (TI2V-5B, I2V-A14B, 2.1 I2V/FLF2V).",
            "i2v.engines.diffusers:create_wan_engine",
            gpu=True,
            supports_last_image=True,
        ),
        EngineInfo(
            "ltx",
            "LTX-Video image-to-video through diffusers.",
            "i2v.engines.diffusers:create_ltx_engine",
            gpu=True,
        ),
        EngineInfo(
            "fake",
            "Deterministic test engine: flat frames whose shade is the frame index. "
            "For testing the service, never for users.",
            "i2v.engines.fake:FakeEngine",
        ),
    )
}


class UnknownEngine(I2VError):
    """A catalog names an engine that does not exist."""


def info(name: str) -> EngineInfo:
    try:
        return ENGINES[name]
    except KeyError:
        raise UnknownEngine(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


def create(name: str, options: dict[str, Any] | None = None) -> Engine:
    module_name, _, attr = info(name).factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    engine: Engine = factory(dict(options or {}))
    return engine
