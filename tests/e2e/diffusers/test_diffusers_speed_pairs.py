"""Every pair of speed options a catalog may combine either loads and renders, or is
refused when the catalog loads with a message naming both options.

The parse half is pure, and checks the pair rules as if every optional package were
installed (a missing one is refused on its own, see test_fast_options.py). The render
half runs each accepted pair on the tiny LTX pipeline in this process, where this machine
can: a CPU has nothing to offload to, runs float16, torchao's float8 matmuls and the
FlashAttention/SageAttention kernels not at all, and compiles with inductor for minutes,
so those pairs render only where CUDA is (they are reported as skipped here with the
reason, never as passed).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from i2v.domain.catalog import CatalogError
from i2v.engines.diffusers import options as engine_options
from i2v.engines.diffusers.options import parse_options
from jobs import generation_request

Setting = tuple[str, Any]

SPEED_SETTINGS: list[Setting] = [
    *(("offload", mode) for mode in ("auto", "none", "model", "group", "sequential")),
    ("compile", True),
    ("first_block_cache", 0.1),
    ("taylorseer_cache", 2),
    *(("fp8", mode) for mode in ("layerwise", "torchao")),
    *(("attention_backend", name) for name in ("native", "flash", "sage")),
    ("vae_tiling", True),
    ("vae_tiling", False),
    *(("dtype", name) for name in ("bfloat16", "float16", "float32")),
]

# The pairs refused at catalog load, and why (the options module says it to the operator)
REFUSED: set[frozenset[Setting]] = {
    # torch._dynamo Unsupported inside the cache hooks on the first render (CPU too)
    frozenset({("compile", True), ("first_block_cache", 0.1)}),
    frozenset({("compile", True), ("taylorseer_cache", 2)}),
    # the offload hooks move weights inside forward, in torch.compiler.disable'd hooks that
    # fullgraph cannot call (both seen failing on an H200; compile + offload=model renders)
    frozenset({("compile", True), ("offload", "group")}),
    frozenset({("compile", True), ("offload", "sequential")}),
    # the FlashAttention and SageAttention kernels take half precision only
    frozenset({("attention_backend", "flash"), ("dtype", "float32")}),
    frozenset({("attention_backend", "sage"), ("dtype", "float32")}),
    # the layerwise casting hook builds nn.Parameters in forward: dynamo Unsupported (CPU too)
    frozenset({("compile", True), ("fp8", "layerwise")}),
    # one step cache at a time: TaylorSeer's per-module step counts drift on skipped blocks
    frozenset({("first_block_cache", 0.1), ("taylorseer_cache", 2)}),
    # torchao's float8 tensors keep data in inner tensors that these offloads leave behind
    frozenset({("fp8", "torchao"), ("offload", "group")}),
    frozenset({("fp8", "torchao"), ("offload", "sequential")}),
}

PAIRS = [
    (first, second)
    for first, second in itertools.combinations(SPEED_SETTINGS, 2)
    if first[0] != second[0]
]


def _id(pair: tuple[Setting, Setting]) -> str:
    return "+".join(f"{name}={value}" for name, value in pair)


def _options(weights: str, pair: tuple[Setting, Setting]) -> dict[str, Any]:
    return {"weights": weights, **dict(pair)}


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
def test_each_pair_parses_or_is_refused_naming_both(
    pair: tuple[Setting, Setting], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_options, "_installed_version", lambda package: "99.0")
    (first, _), (second, _) = pair
    if frozenset(pair) in REFUSED:
        with pytest.raises(CatalogError) as refused:
            parse_options(_options("org/model", pair), "ltx")
        assert f"{first} = " in refused.value.message
        assert f"{second} = " in refused.value.message
    else:
        parse_options(_options("org/model", pair), "ltx")


def _why_not_here(pair: tuple[Setting, Setting]) -> str | None:
    import torch

    cuda = torch.cuda.is_available()
    for name, value in pair:
        try:  # a setting whose package is missing here is refused on its own
            parse_options({"weights": "org/model", name: value}, "ltx")
        except CatalogError as refused:
            return refused.message
        if name == "fp8" and value == "torchao" and not _float8_matmuls(cuda):
            return "fp8=torchao: float8 matmuls need CUDA compute capability 8.9+"
        if cuda:
            continue
        if name == "compile":
            return "compile: inductor builds C++ kernels per pair on a CPU (10-35 s); runs on CUDA"
        if name == "offload" and value != "none":
            return "offload: a CPU has nothing to offload to (auto means none there)"
        if name == "dtype" and value == "float16":
            return "dtype=float16: CPU kernels are missing for half precision"
    return None


def _float8_matmuls(cuda: bool) -> bool:
    import torch

    return cuda and torch.cuda.get_device_capability() >= (8, 9)


@pytest.mark.parametrize("pair", [p for p in PAIRS if frozenset(p) not in REFUSED], ids=_id)
def test_each_accepted_pair_renders_on_a_tiny_model(
    pair: tuple[Setting, Setting], weights: dict[str, Path]
) -> None:
    reason = _why_not_here(pair)
    if reason:
        pytest.skip(reason)
    from i2v.engines.diffusers.ltx import LTXRenderer

    options = _options(str(weights["ltx"]), pair) | {
        "steps": 2,
        "max_sequence_length": 16,
        "max_area": 32 * 32,
    }
    renderer = LTXRenderer(parse_options(options, "ltx"))
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frames = list(renderer(generation_request(image), lambda done, total, stage: None))

    assert len(frames) == 9
    for name, value in pair:
        if name in ("offload", "compile", "first_block_cache", "taylorseer_cache", "fp8"):
            expected = value if name != "offload" or value != "auto" else ""
            assert f"{name}={expected}" in renderer.description


@pytest.mark.parametrize(
    "cache", [{"first_block_cache": 0.1}, {"taylorseer_cache": 2, "steps": 6}], ids=str
)
def test_compile_with_a_step_cache_really_fails_so_the_refusal_is_needed(
    weights: dict[str, Path], cache: dict[str, Any]
) -> None:
    """The refusal stays only while the pair fails: this renders it past the catalog
    check (on a CPU too: dynamo refuses the cache hook before any kernel is built). If a
    diffusers upgrade makes it work, this fails: lift the refusal in options.py."""
    from i2v.engines.diffusers.ltx import LTXRenderer
    from i2v.engines.diffusers.options import EngineOptions

    options = EngineOptions(
        **{
            "weights": str(weights["ltx"]),
            "compile": True,
            "steps": 2,
            "max_sequence_length": 16,
            "max_area": 32 * 32,
        }
        | cache
    )
    renderer = LTXRenderer(options)
    image = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(Exception, match=r"torch\.compiler\.disable"):
        list(renderer(generation_request(image), lambda done, total, stage: None))
