"""Offload modes: which one `auto` picks for a pipeline, and the step down after an OOM.

Pure arithmetic on byte counts (no torch), shared by the child, which measures the
loaded modules and the GPU, and the parent, which restarts an engine that ran out of
memory with the next mode.

    none        the whole pipeline on the GPU
    model       one component (text encoder, transformer, VAE...) on the GPU at a time
    group       one transformer block at a time, streamed ahead of compute
    sequential  one layer at a time (slowest, least memory)
"""

from __future__ import annotations

from collections.abc import Sequence

GIB = 1024**3

#: Components group offload moves leaf by leaf rather than block by block. Pipelines
#: enter a VAE through encode()/decode(), not forward(), so block-level hooks left LTX's
#: VAE conv_in on the CPU (seen on an H200); and the UMT5/T5/CLIP encoders keep their
#: blocks one level down (`encoder.block`), where block-level grouping does not look, so
#: the whole 10.6 GiB UMT5 would be one group (as much as model offload).
LEAF_GROUPS = ("vae", "text_encoder", "image_encoder")

#: From least to most memory-saving; an OOM moves a route one step to the right.
OFFLOAD_STEPS = ("none", "model", "group", "sequential")

#: Resident weights may take at most this share of the GPU's memory. Wan2.2's own
#: table (reference/open-models.md §4) has I2V-A14B 720p at a 59.7 GB peak on one
#: H100 with one 14B expert resident (26.6 GiB = 28.6 GB): activations, the VAE decode
#: and the allocator's slack take ~31 GB (~29 GiB), 36% of an 80 GB card (79.6 GiB).
#: So weights fit in at most ~64% of the card; 0.6 keeps a margin. On an 80 GB card
#: the A14B pipeline (2 x 26.6 GiB experts + 12.5 GiB UMT5 + VAE) no longer counts as
#: fitting whole, and model offload (26.6 GiB resident) does; on a 141 GB H200 it does.
WEIGHTS_SHARE = 0.6

#: Never less than this free beside the weights, whatever the card: TI2V-5B 720p peaks
#: at 22.8 GB on a 24 GB card with ~10 GB of transformer resident (Wan2.2 README),
#: ~12 GiB of activations and decode.
MIN_HEADROOM_BYTES = 12 * GIB


def fits(weights_bytes: int, total_memory: int) -> bool:
    """Whether `weights_bytes` of resident weights leave room to render on the card."""
    return (
        weights_bytes <= WEIGHTS_SHARE * total_memory
        and total_memory - weights_bytes >= MIN_HEADROOM_BYTES
    )


def choose_offload(choice: str, module_sizes: Sequence[int], total_memory: int) -> str:
    """The offload mode for a pipeline whose modules weigh `module_sizes` bytes on a GPU
    of `total_memory` bytes. `auto`: none if the whole pipeline fits, model offload if
    the largest component does, group offload otherwise. Any other choice is kept."""
    if choice != "auto":
        return choice
    if fits(sum(module_sizes), total_memory):
        return "none"
    if fits(max(module_sizes, default=0), total_memory):
        return "model"
    return "group"


def step_down(mode: str) -> str | None:
    """The next more memory-saving mode after an out-of-memory error; None after the last."""
    index = OFFLOAD_STEPS.index(mode)
    return OFFLOAD_STEPS[index + 1] if index + 1 < len(OFFLOAD_STEPS) else None


class PlacementError(Exception):
    """Placing a loaded pipeline on its device failed (typically out of GPU memory);
    `offload` is the mode it was placed with, which `auto` chose in the child."""

    def __init__(self, offload: str, cause: Exception) -> None:
        super().__init__(f"placing the pipeline with offload={offload}: {cause}")
        self.offload = offload
