"""Typed messages between the engine (parent) and its spawned child process.

Parent -> child: `Render`, `Cancel`, `Shutdown`.
Child -> parent: `Ready` (pipeline loaded), then per render any number of
`Progress` and `Log`, the video as `Frame` messages (one uint8 frame each, in
order), and exactly one of `Done` or `Failed`.

Frames travel one per message over the pipe: a 1280x704 frame is 2.7 MB, so a
121-frame video is ~330 MB spread over 121 sends that the parent consumes (and
hands to the encoder) as they come; the pipe's back-pressure bounds memory on
both sides. No temp file or shared-memory segment can leak when either side is
killed, which a .npy file or `SharedMemory` block would need cleaning up for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Render:
    """One render: the request's essentials plus the engine-level settings."""

    image: npt.NDArray[np.uint8]
    prompt: str
    seed: int
    frames: int  # frames the child must deliver (the parent trims/resizes nothing in time)
    width: int  # the request's output size: the child picks the native size from its aspect
    height: int
    fps: int
    last_image: npt.NDArray[np.uint8] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    """Stop the current render at the end of the running step."""


@dataclass(frozen=True)
class Shutdown:
    """Leave the main loop and exit."""


@dataclass(frozen=True)
class Ready:
    """The pipeline is loaded; `description` says what was loaded and how."""

    description: str


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    stage: str


@dataclass(frozen=True)
class Log:
    message: str


@dataclass(frozen=True)
class Frame:
    """Frame `index` of the video at the model's native size (H x W x 3, uint8)."""

    index: int
    pixels: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Done:
    frames: int
    seconds: float
    peak_memory_bytes: int = 0


@dataclass(frozen=True)
class Failed:
    """The render (or the pipeline load) did not finish.

    `cancelled`: it stopped because the parent sent `Cancel`.
    `out_of_memory`: the accelerator ran out of memory; the child exits after
    sending this so the next render starts from a clean allocator.
    """

    message: str
    cancelled: bool = False
    out_of_memory: bool = False
    during_load: bool = False


ToChild = Render | Cancel | Shutdown
FromChild = Ready | Progress | Log | Frame | Done | Failed
