"""Resident GPU weights per offload mode for each real checkpoint, counted on the meta device.

    python bench/model_memory.py           # print the tables
    python bench/model_memory.py --write   # and write them into docs/generative-models.md

Each real checkpoint's components (text encoder, CLIP image encoder, transformer(s),
VAE) are built from their real configs (tests/e2e/diffusers/real_shapes.py) on the
meta device: no weights, no GPU, a few seconds. Their parameters are counted at the
dtypes the engine loads them in (bf16; Wan's VAE and CLIP fp32), and the weights
each offload mode keeps on the GPU are worked out from how the engine applies it:

    none        every component
    model       the largest single component (A14B: one expert at a time)
    group       the engine's group offload (diffusers 0.42.1 `apply_group_offloading`):
                a component's direct ModuleList children one block at a time, with the
                next block prefetched on a CUDA stream (two resident), and everything
                else of that component (embeddings, norms, heads) for its whole forward;
                the VAE and the text/image encoders leaf by leaf (two leaves resident;
                `offload.LEAF_GROUPS`)
    sequential  accelerate's cpu_offload: one module's own parameters, plus those of the
                modules around it whose forward is still running
    fp8         the transformer(s) stored in 8 bits (half of bf16)

Weights only: activations, the VAE decode's buffers and the CUDA context come on top
(docs/generative-models.md says how much).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# the real configs live with the tests that check the tiny models against them
sys.path.insert(0, str(ROOT / "tests" / "e2e" / "diffusers"))

from i2v.engines.diffusers import offload, wan  # noqa: E402
from real_shapes import REAL, Real, configs  # noqa: E402
from report import write_section  # noqa: E402

DOC = ROOT / "docs" / "generative-models.md"
SECTION = "## GPU memory by offload mode (weights)"
COMMAND = "python bench/model_memory.py --write"
GIB = 1024**3
# what torch reports as total_memory on common cards, for the engine's `auto` choice
CARDS = {"24 GB": int(23.6 * GIB), "80 GB": int(79.6 * GIB), "141 GB": int(139.8 * GIB)}
# the order components run in (diffusers' model_cpu_offload_seq) and their table titles
COMPONENTS = {
    "text_encoder": "text encoder",
    "image_encoder": "CLIP",
    "transformer": "transformer",
    "transformer_2": "transformer_2",
    "vae": "VAE",
}
TRANSFORMERS = ("transformer", "transformer_2")
# Components the engine loads in float32 beside a bf16 pipeline (LTX: none)
FLOAT32 = {"wan": wan.FLOAT32_COMPONENTS, "ltx": ()}
LEAF_LAYERS = (
    torch.nn.Conv1d,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.ConvTranspose1d,
    torch.nn.ConvTranspose2d,
    torch.nn.ConvTranspose3d,
    torch.nn.Linear,
    torch.nn.Embedding,
)  # the layers diffusers' leaf-level group offload moves one by one


@dataclass(frozen=True)
class Component:
    """One model component's weights and what each offload mode keeps of it on the GPU."""

    name: str
    params: int
    bytes_per_param: int
    group_bytes: int  # resident while it runs under group offload
    layer_bytes: int  # resident at most under sequential offload

    @property
    def bytes(self) -> int:
        return self.params * self.bytes_per_param

    @property
    def fp8_bytes(self) -> int:
        return self.params if self.name in TRANSFORMERS else self.bytes


@dataclass(frozen=True)
class Footprint:
    """A checkpoint's components and the resident weights per offload mode."""

    real: Real
    components: tuple[Component, ...]

    def none(self, *, fp8: bool = False) -> int:
        return sum(c.fp8_bytes if fp8 else c.bytes for c in self.components)

    def model(self, *, fp8: bool = False) -> tuple[int, str]:
        return _largest((c.fp8_bytes if fp8 else c.bytes, c.name) for c in self.components)

    def group(self) -> tuple[int, str]:
        return _largest((c.group_bytes, c.name) for c in self.components)

    def transformer_group(self) -> int:
        """Group offload's resident weights while the transformer(s) denoise."""
        return max(c.group_bytes for c in self.components if c.name in TRANSFORMERS)

    def sequential(self) -> tuple[int, str]:
        return _largest((c.layer_bytes, c.name) for c in self.components)

    def auto(self, total_memory: int) -> str:
        """What the engine's `offload = "auto"` picks on a card of `total_memory` bytes."""
        return offload.choose_offload("auto", [c.bytes for c in self.components], total_memory)


def _largest(pairs: Iterator[tuple[int, str]]) -> tuple[int, str]:
    # on a tie the first in running order (A14B: `transformer`, the high-noise expert)
    return max(pairs, key=lambda pair: pair[0])


def family(real: Real) -> str:
    return "wan" if real.components["transformer"] == "WanTransformer3DModel" else "ltx"


def build(real: Real) -> dict[str, torch.nn.Module]:
    """Each model component of `real` at its real size, parameters on the meta device."""
    import diffusers
    import transformers

    modules: dict[str, torch.nn.Module] = {}
    with torch.device("meta"):
        for name, config in configs(real).items():
            class_name = real.components[name]
            assert class_name is not None
            if hasattr(diffusers, class_name):
                modules[name] = getattr(diffusers, class_name)(**config)
            else:
                model_class = getattr(transformers, class_name)
                modules[name] = model_class(model_class.config_class(**config))
    return modules


def measure(real: Real) -> Footprint:
    float32 = FLOAT32[family(real)]
    components = []
    for name, module in build(real).items():
        size = 4 if name in float32 else 2
        components.append(
            Component(
                name=name,
                params=sum(p.numel() for p in module.parameters()),
                bytes_per_param=size,
                group_bytes=size
                * (_leaf_group(module) if name in offload.LEAF_GROUPS else _block_group(module)),
                layer_bytes=size * _one_layer(module),
            )
        )
    components.sort(key=lambda c: list(COMPONENTS).index(c.name))
    return Footprint(real, tuple(components))


def _count(module: torch.nn.Module, *, recurse: bool = True) -> int:
    return sum(p.numel() for p in module.parameters(recurse=recurse))


def _block_group(module: torch.nn.Module) -> int:
    """Parameters resident under block-level group offload with one block per group and
    a stream: the component's rest for its whole forward, plus the running block and
    the prefetched next one."""
    blocks = [
        _count(block)
        for child in module.children()
        if isinstance(child, torch.nn.ModuleList | torch.nn.Sequential)
        for block in child
    ]
    # counted as a whole: a tied embedding (T5's `shared` = `encoder.embed_tokens`) once
    rest = _count(module) - sum(blocks)
    pairs = [a + b for a, b in itertools.pairwise(blocks)] or blocks or [0]
    return rest + max(pairs)


def _leaf_group(module: torch.nn.Module) -> int:
    """Parameters resident under leaf-level group offload with a stream: the running and
    the prefetched layer, and every parameter outside such layers (norms, biases of
    non-layer modules), which travels with its parent module's forward."""
    leaves = sorted(
        (_count(m) for m in module.modules() if isinstance(m, LEAF_LAYERS)), reverse=True
    )
    in_leaves = sum(leaves)
    return _count(module) - in_leaves + sum(leaves[:2])


def _one_layer(module: torch.nn.Module) -> int:
    """The most parameters accelerate's cpu_offload holds at once: hooks move each
    module's own parameters for its forward, which nests inside its parents'."""
    best = 0

    def walk(node: torch.nn.Module, above: int) -> None:
        nonlocal best
        held = above + _count(node, recurse=False)
        best = max(best, held)
        for child in node.children():
            walk(child, held)

    walk(module, 0)
    return best


def _gib(value: int) -> str:
    return f"{value / GIB:.1f}" if value >= GIB else f"{value / GIB:.2f}"


def _params(value: int) -> str:
    return f"{value / 1e9:.2f} B" if value >= 1e9 else f"{value / 1e6:.0f} M"


def table(footprints: list[Footprint]) -> str:
    """Both tables as markdown: weights by component, resident weights by offload mode."""
    names = [n for n in COMPONENTS if any(c.name == n for f in footprints for c in f.components)]
    lines = [
        "Weights by component, GiB (parameters; dtype as the engine loads it):",
        "",
        "| model | " + " | ".join(COMPONENTS[n] for n in names) + " | total |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for f in footprints:
        found = {c.name: c for c in f.components}
        cells = [
            f"{_gib(found[n].bytes)} ({_params(found[n].params)}, "
            f"{'fp32' if found[n].bytes_per_param == 4 else 'bf16'})"
            if n in found
            else "–"
            for n in names
        ]
        total = sum(c.params for c in f.components)
        lines.append(
            f"| {f.real.name} | " + " | ".join(cells) + f" | {_gib(f.none())} ({_params(total)}) |"
        )
    lines += [
        "",
        "Resident GPU weights by offload mode, GiB (the component that sets it); weights "
        "only, activations extra:",
        "",
        "| model | none | model | group | sequential | none, fp8 | model, fp8 | "
        + " | ".join(f"`auto` on {card}" for card in CARDS)
        + " |",
        "|---|" + "---:|" * 6 + "---|" * len(CARDS),
    ]
    for f in footprints:
        cells = [
            _gib(f.none()),
            _with(f.model()),
            f"{_with(f.group())[:-1]}; transformer {_gib(f.transformer_group())})",
            _with(f.sequential()),
            _gib(f.none(fp8=True)),
            _with(f.model(fp8=True)),
        ] + [f.auto(total) for total in CARDS.values()]
        lines.append(f"| {f.real.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _with(pair: tuple[int, str]) -> str:
    value, name = pair
    return f"{_gib(value)} ({COMPONENTS[name]})"


def section(footprints: list[Footprint]) -> str:
    """The doc's section: how the numbers were computed, then both tables."""
    paragraphs = [
        f"Computed, not measured, by `{COMMAND}` (no GPU, no weights): it builds every "
        "component of each real checkpoint from its real config (the values recorded in "
        "`tests/e2e/diffusers/real_shapes.py`, from the converters that wrote the Hub "
        "repos) on PyTorch's meta device and counts its parameters at the dtype the engine "
        "loads it in (bf16; Wan's VAE and CLIP image encoder fp32; LTX all bf16). What "
        "each `offload` mode keeps on the GPU follows from how the engine applies it:",
    ]
    modes = [
        "`none`: every component.",
        "`model`: the largest component, one at a time (A14B: one expert at a time).",
        "`group`: diffusers' block-level group offload: the running transformer block and "
        "the next one (prefetched on a CUDA stream), plus the component's embeddings, "
        "norms and heads for its whole forward; the VAE and the text and image encoders "
        "leaf by leaf (their blocks sit one level below the model, `encoder.block`, where "
        "block-level grouping does not look: as blocks, the whole UMT5 would be one "
        "10.6 GiB group). The transformer's own group is given beside the largest.",
        "`sequential`: accelerate's layer-by-layer hooks: the largest single layer (the "
        "text encoder's token embedding) with the parameters of the modules around it.",
        'fp8 (`fp8 = "layerwise"`): the transformer(s) stored in 8 bits, half of bf16 '
        "(the norms and embeddings layerwise casting leaves in bf16 add a few percent).",
        "`auto`: what the engine picks from these sizes "
        "(`i2v.engines.diffusers.offload.choose_offload`) on a card of that size.",
    ]
    closing = (
        "**Weights only**: activations, attention buffers, the VAE decode and the CUDA "
        "context come on top (Wan2.2's README: TI2V-5B 720p peaks at 22.8 GB with offload; "
        "A14B 720p at 59.7 GB on one H100). LTX-Video 0.9.7-distilled and 0.9.8-13B-distilled "
        "load with the 0.9.7-dev shapes (inferred); Wan2.1 I2V 480P and 720P share one shape."
    )
    wrap = functools.partial(textwrap.fill, width=90)
    return (
        f"{SECTION}\n\n"
        + "\n\n".join(wrap(text) for text in paragraphs)
        + "\n\n"
        + "\n".join(wrap(text, initial_indent="- ", subsequent_indent="  ") for text in modes)
        + "\n\n"
        + wrap(closing)
        + "\n\n"
        + table(footprints)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace {SECTION!r} in --doc")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    footprints = [measure(real) for real in REAL]
    text = section(footprints)
    print(text)
    if args.write:
        write_section(SECTION, text, args.doc)
        print(f"wrote {SECTION!r} into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
