"""Typed messages between the engine (parent) and its spawned child process.

Parent -> child: `Render`, `Cancel`, `Shutdown`.
Child -> parent: `Ready` (pipeline loaded), then per render any number of
`Progress`, `Log` and `Busy`, the video as `Frame` messages (one uint8 frame each,
in order), and exactly one of `Done` or `Failed`. Between renders the child sends
nothing.

Several GPUs (`parallel`): the child is rank 0 of a group. Before `Ready` it sends
`Rendezvous`, which the parent passes on to the other ranks; they get `Render` and
`Shutdown` too but answer nothing, except one `Failed` as their last word when they
fail. `Cancel` goes to rank 0 alone, which tells the others.

Frames travel one per message over the pipe: a 1280x704 frame is 2.7 MB, so a
121-frame video is ~330 MB spread over 121 sends that the parent consumes (and
hands to the encoder) as they come; the pipe's back-pressure bounds memory on
both sides. No temp file or shared-memory segment can leak when either side is
killed, which a .npy file or `SharedMemory` block would need cleaning up for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from i2v.domain.request import GenerationRequest


@dataclass(frozen=True)
class Render:
    """One render: the worker's request as it is (the job spec and its pixels). The child
    delivers exactly `request.frames` frames at the model's native size for the request's
    aspect; the parent resizes them to the output size."""

    request: GenerationRequest


@dataclass(frozen=True)
class Cancel:
    """Stop the current render at the end of the running step."""


@dataclass(frozen=True)
class Shutdown:
    """Leave the main loop and exit."""


@dataclass(frozen=True)
class Rendezvous:
    """Rank 0 of a context-parallel group listens on 127.0.0.1:`port` (loopback only)
    for the other `ranks - 1` ranks; the parent passes this on to them."""

    port: int
    ranks: int


@dataclass(frozen=True)
class Ready:
    """The pipeline is loaded; `description` says what was loaded and how, `offload`
    the offload mode it runs with (what `auto` chose)."""

    description: str
    offload: str = "none"


@dataclass(frozen=True)
class Busy:
    """A heartbeat: the child is alive and inside a render, e.g. in one long step or
    the VAE decode, where it sends nothing else."""


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
    # a load that failed placing the pipeline: the offload mode it was placed with (what
    # `auto` chose), so that an out-of-memory error steps down from that mode
    offload: str = ""
    # a group's render every rank refused alike before its first collective (the same
    # I2VError from the same checks): the group stays warm, as one process does
    refused: bool = False
    # a group's rank stopped because another rank could not start the render: that
    # rank's own Failed says why
    after_peer: bool = False


ToChild = Render | Cancel | Shutdown | Rendezvous
FromChild = Rendezvous | Ready | Progress | Log | Busy | Frame | Done | Failed
