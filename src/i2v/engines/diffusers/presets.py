"""Sampling presets: the schedule, guidance and LoRAs a distilled checkpoint was made for.

A distilled model renders in a handful of steps only when it is sampled the way it was
distilled; with the base model's 40-50 steps and CFG it is slower and usually worse. A
route names one with `preset = "..."`; the preset then supplies the fallbacks the model's
own recommendations would otherwise give (a request's or the route's explicit
`steps`/`guidance_scale`/`flow_shift` still win, as everywhere).

    ltx "distilled"   LTX-Video 0.9.7 / 0.9.8 distilled (diffusers' ltx_video docs, first
                      pass): eight fixed timesteps, guidance 1.0, guidance_rescale 0.7,
                      image_cond_noise_scale 0.0, on LTXConditionPipeline.
    wan "lightx2v"    Wan2.2 I2V-A14B with lightx2v's 4-step distillation LoRAs, one per
                      expert (ModelTC/LightX2V wan_moe_i2v_distill_with_lora.json): 4 steps,
                      no CFG (guidance 1.0 on both experts), shift 5.0. UniPC at shift 5
                      gives t = [999, 937, 833, 625], LightX2V's own schedule, and the
                      0.9 boundary gives each expert two steps, as LightX2V does.
    wan "dmd"         FastWan2.2-TI2V-5B (FastVideo's DMD-distilled TI2V-5B, the full-attention
                      diffusers export): 3 steps at t = [1000, 757, 522], no CFG; each step
                      predicts the clean video and re-noises it with fresh noise to the next
                      level (FastVideo's DMD sampling), done here by a seeded
                      flow-match Euler scheduler in stochastic mode with those sigmas.

Torch-free: the parent checks a catalog's preset against its weights with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One way of sampling a distilled checkpoint. `None`: the model's own value."""

    name: str
    family: str  # the engine that has it: "wan" or "ltx"
    model: str  # the checkpoint family it is for, as named in docs and errors
    steps: int
    guidance_scale: float
    guidance_scale_2: float | None = None  # Wan2.2 A14B's low-noise expert
    flow_shift: float | None = None  # Wan's sampling shift
    timesteps: tuple[float, ...] | None = None  # LTX: the timesteps passed to the pipeline
    # Wan: fixed noise levels, each step predicting x0 and re-noising (DMD); needs no shift
    renoise_sigmas: tuple[float, ...] | None = None
    guidance_rescale: float = 0.0  # LTX
    image_cond_noise_scale: float | None = None  # LTX Condition; None: the pipeline's
    # experts that must carry a LoRA from the route's `loras` ("high", "low"): a LoRA
    # distillation renders noise without its LoRAs
    lora_experts: tuple[str, ...] = ()
    # which Wan checkpoint family (`variants.Variant.name`) the preset applies to
    variant: str = ""


LTX_DISTILLED = Preset(
    name="distilled",
    family="ltx",
    model="LTX-Video 0.9.7/0.9.8 distilled",
    steps=8,
    guidance_scale=1.0,
    timesteps=(1000, 993, 987, 981, 975, 909, 725, 0.03),
    guidance_rescale=0.7,
    image_cond_noise_scale=0.0,
)
WAN_LIGHTX2V = Preset(
    name="lightx2v",
    family="wan",
    model="Wan2.2 I2V-A14B + lightx2v 4-step LoRAs",
    steps=4,
    guidance_scale=1.0,
    guidance_scale_2=1.0,
    flow_shift=5.0,
    lora_experts=("high", "low"),
    variant="Wan2.2 I2V-A14B",
)
WAN_DMD = Preset(
    name="dmd",
    family="wan",
    model="FastWan2.2-TI2V-5B (DMD, 3 steps)",
    steps=3,
    guidance_scale=1.0,
    renoise_sigmas=(1.0, 0.757, 0.522),
    variant="Wan2.2 TI2V-5B",
)

PRESETS: dict[str, dict[str, Preset]] = {
    "wan": {p.name: p for p in (WAN_LIGHTX2V, WAN_DMD)},
    "ltx": {p.name: p for p in (LTX_DISTILLED,)},
}


def preset_for(family: str, name: str) -> Preset | None:
    """The named preset of `family` ("" -> None); an unknown name raises KeyError."""
    if not name:
        return None
    return PRESETS[family][name]


def wrong_family(preset: Preset, family: str, weights: str) -> str | None:
    """Why `preset` cannot sample `weights` of the Wan family named `family` (None: it can).
    A preset samples the checkpoint family it was distilled from, no other."""
    if not preset.variant or preset.variant == family:
        return None
    return (
        f"preset: {preset.name!r} is for {preset.model} ({preset.variant} weights), but "
        f"{weights!r} is {family}; remove preset or point weights at {preset.variant}"
    )
