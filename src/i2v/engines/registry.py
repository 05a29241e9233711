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
    # of the optional inputs only some engines have (ENGINE_INPUTS), those this one takes
    takes: frozenset[str] = frozenset()
    # "module:callable(options) -> ModelFacts | None": what the route's weights say about
    # the model (None: not known yet, e.g. weights not downloaded); "": nothing to say
    model_facts: str = ""

    @property
    def supports_last_image(self) -> bool:
        return "last_image" in self.takes


# Optional route inputs that depend on the engine: a flow shift (Wan's schedulers), LoRAs
# (the diffusers engines), a last frame (Wan2.2 A14B, Wan2.1 FLF2V)
ENGINE_INPUTS = frozenset({"flow_shift", "loras", "last_image"})


@dataclass(frozen=True)
class ModelFacts:
    """What a route's weights say about the model, read without loading them."""

    model: str  # e.g. "Wan2.1 I2V-14B"
    fps: int  # the rate it was trained at, the only one its motion looks right at
    last_image: bool  # takes a last frame


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
            takes=ENGINE_INPUTS,
            model_facts="i2v.engines.diffusers:wan_model_facts",
        ),
        EngineInfo(
            "ltx",
            "LTX-Video image-to-video through diffusers.",
            "i2v.engines.diffusers:create_ltx_engine",
            gpu=True,
            takes=frozenset({"loras"}),
        ),
        EngineInfo(
            "fake",
            "Deterministic test engine: flat frames whose shade is the frame index. "
            "For testing the service, never for users.",
            "i2v.engines.fake:FakeEngine",
            takes=frozenset({"flow_shift", "loras"}),  # carried in the job; the tests read it
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
    factory = _load(info(name).factory)
    engine: Engine = factory(dict(options or {}))
    return engine


def model_facts(name: str, options: dict[str, Any] | None = None) -> ModelFacts | None:
    """What the route's weights say about its model (its one frame rate, whether it takes
    a last frame), when the engine reads such facts and the weights are on this machine."""
    target = info(name).model_facts
    if not target:
        return None
    facts: ModelFacts | None = _load(target)(dict(options or {}))
    return facts


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
