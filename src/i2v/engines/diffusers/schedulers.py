"""The schedulers a render samples with, beside the one the checkpoint was saved with.

`FlowShiftSchedulers`: the loaded scheduler rebuilt with each flow shift a job asks for
(the Hub's Wan A14B and 720P configs say 3.0 where the official code samples at 5.0).
`RenoisingEuler`: the sampling of DMD-distilled checkpoints (FastWan): at each of a few
fixed noise levels the model's prediction gives the clean video, which is noised afresh
to the next level. Runs in the child (imports torch and diffusers).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from i2v.domain.errors import EngineError


class FlowShiftSchedulers:
    """The loaded scheduler rebuilt from its config with each flow shift asked for, once
    per value (`from_config(config, flow_shift=...)`, as diffusers' Wan docs do)."""

    def __init__(self, loaded: Any) -> None:
        config = loaded.config
        # UniPC on flow sigmas (every Wan repo) names it flow_shift; flow-match Euler, shift
        self.key = (
            "flow_shift"
            if config.get("use_flow_sigmas")
            else "shift"
            if "shift" in config and not config.get("use_dynamic_shifting")
            else None
        )
        self.loaded = loaded
        self.built: dict[float, Any] = {} if self.key is None else {config[self.key]: loaded}

    def get(self, shift: float) -> Any:
        scheduler = self.built.get(shift)
        if scheduler is None:
            if self.key is None:
                raise EngineError(
                    f"flow_shift: the checkpoint's scheduler {type(self.loaded).__name__} "
                    "has no flow shift to set"
                )
            scheduler = type(self.loaded).from_config(self.loaded.config, **{self.key: shift})
            self.built[shift] = scheduler
        return scheduler


# diffusers' scheduler classes carry no annotations mypy can follow through `super()`
_FlowMatchEuler: Any = FlowMatchEulerDiscreteScheduler


class RenoisingEuler(_FlowMatchEuler):  # type: ignore[misc]
    """Flow-match Euler in stochastic mode (x0, then fresh noise to the next sigma) at
    the fixed `sigmas` a distilled checkpoint was trained on, with its own seeded noise.

    Pipelines call `set_timesteps(num_inference_steps)` and `step(...)` without a
    generator; this one takes `len(sigmas)` steps at exactly those levels (another count
    gets the scheduler's own spacing) and draws the re-noise from `seed_noise(...)`'s
    generator, so a seed still fixes the video."""

    fixed_sigmas: tuple[float, ...] = ()
    noise: torch.Generator | None = None

    @classmethod
    def at(cls, sigmas: tuple[float, ...]) -> RenoisingEuler:
        # shift 1: the levels are used as given, not shifted again
        scheduler = cls(num_train_timesteps=1000, shift=1.0, stochastic_sampling=True)
        scheduler.fixed_sigmas = sigmas
        return scheduler

    def seed_noise(self, seed: int, device: torch.device) -> None:
        # a stream apart from the initial latents' (same seed, same shape: same draw)
        self.noise = torch.Generator(device).manual_seed(seed ^ 0x5DEECE66D)

    def set_timesteps(
        self, num_inference_steps: int | None = None, device: Any = None, **kwargs: Any
    ) -> None:
        if self.fixed_sigmas and num_inference_steps in (None, len(self.fixed_sigmas)):
            super().set_timesteps(sigmas=list(self.fixed_sigmas), device=device)
        else:
            super().set_timesteps(num_inference_steps, device=device, **kwargs)

    def step(self, *args: Any, generator: torch.Generator | None = None, **kwargs: Any) -> Any:
        return super().step(*args, generator=generator or self.noise, **kwargs)
