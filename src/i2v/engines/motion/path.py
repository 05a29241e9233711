"""A camera move -> one camera pose per frame.

Poses live in "frame-0 pixels": the output picture at frame 0 (the input, cover-cropped and
resized to the output size) spans [0, W] x [0, H]. A pose is the view's centre, its zoom
(1 = frame 0, 2 = half the width visible) and its roll. Every path starts at the identity
pose, so frame 0 is always the framed input.

Zoom is interpolated in log space (exponential): a constant rate of log-zoom is what reads
as a constant camera speed, and it keeps each picture point's motion smooth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from i2v.engines.motion.camera import Move

Easing = Literal["ease", "linear"]
EASINGS: tuple[Easing, ...] = ("ease", "linear")

# Per-clip amplitudes at normal speed for a 5 s clip.
PUSH_ZOOM = 0.25  # push-in ends at 1.25x
PULL_ZOOM = 0.20  # pull-out ends showing 1.2x the frame's width
PAN_TRAVEL = 0.12  # of the frame width
TILT_TRAVEL = 0.10  # of the frame height
TRACK_TRAVEL = 0.16
TRACK_PUSH = 1.06
ORBIT_ROLL_DEG = 3.5
ORBIT_DRIFT = 0.05
FOCUS_JITTER = 0.06  # push/pull focus point: centre +- this fraction, from the seed


@dataclass(frozen=True)
class Pose:
    cx: float
    cy: float
    zoom: float = 1.0
    roll: float = 0.0  # radians

    def corners(self, width: int, height: int) -> list[tuple[float, float]]:
        """The view's four corners in frame-0 pixels."""
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        hw, hh = width / 2 / self.zoom, height / 2 / self.zoom
        return [
            (self.cx + cos * dx - sin * dy, self.cy + sin * dx + cos * dy)
            for dx, dy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
        ]


@dataclass(frozen=True)
class Margins:
    """Real picture beyond frame 0's edges (from the cover crop), in frame-0 pixels."""

    left: float = 0.0
    right: float = 0.0
    top: float = 0.0
    bottom: float = 0.0


def ease(t: float, easing: Easing) -> float:
    """Progress 0..1 for time 0..1; "ease" starts and stops with zero velocity."""
    if easing == "linear":
        return t
    return 0.5 - 0.5 * math.cos(math.pi * t)


def plan_path(
    move: Move,
    width: int,
    height: int,
    frames: int,
    *,
    seed: int,
    margins: Margins = Margins(),
    easing: Easing = "ease",
) -> list[Pose]:
    """One pose per frame for `move`; poses[0] is the identity (the framed input)."""
    centre = (width / 2, height / 2)
    amount = move.speed_factor * _duration_scale(frames)
    rng = random.Random(seed ^ 0x5EED)
    last = max(frames - 1, 1)
    progress = [ease(i / last, easing) for i in range(frames)]

    if move.kind == "static":
        return [Pose(*centre) for _ in progress]

    if move.kind in ("push", "pull"):
        end_zoom = 1 + PUSH_ZOOM * amount if move.kind == "push" else 1 / (1 + PULL_ZOOM * amount)
        focus = (
            centre[0] + rng.uniform(-FOCUS_JITTER, FOCUS_JITTER) * width,
            centre[1] + rng.uniform(-FOCUS_JITTER, FOCUS_JITTER) * height,
        )
        return [_about(focus, centre, end_zoom**e) for e in progress]

    if move.kind in ("pan", "track"):
        sign = -1.0 if move.direction == "left" else 1.0
        travel = (PAN_TRAVEL if move.kind == "pan" else TRACK_TRAVEL) * amount * width
        room = margins.left if sign < 0 else margins.right
        least = 1.0 if move.kind == "pan" else TRACK_PUSH
        end_zoom = max(least, _zoom_to_fit(width / 2, travel, room))
        return [Pose(centre[0] + sign * travel * e, centre[1], end_zoom**e) for e in progress]

    if move.kind == "tilt":
        sign = -1.0 if move.direction == "up" else 1.0
        travel = TILT_TRAVEL * amount * height
        room = margins.top if sign < 0 else margins.bottom
        end_zoom = max(1.0, _zoom_to_fit(height / 2, travel, room))
        return [Pose(centre[0], centre[1] + sign * travel * e, end_zoom**e) for e in progress]

    # orbit: an arc read as a slow roll with a drift, zoomed just enough to keep the
    # rotated view inside the picture.
    sign = -1.0 if move.direction == "left" else 1.0
    roll = math.radians(ORBIT_ROLL_DEG) * amount
    drift = ORBIT_DRIFT * amount * width
    cos, sin = math.cos(roll), math.sin(roll)
    cover = max(cos + height / width * sin, cos + width / height * sin)
    end_zoom = cover * max(1.0, _zoom_to_fit(width / 2, drift, 0.0))
    return [
        Pose(centre[0] + sign * drift * e, centre[1], end_zoom**e, -sign * roll * e)
        for e in progress
    ]


def _about(focus: tuple[float, float], centre: tuple[float, float], zoom: float) -> Pose:
    """The pose zoomed by `zoom` about `focus`, which stays put on screen."""
    fx, fy = focus
    return Pose(fx + (centre[0] - fx) / zoom, fy + (centre[1] - fy) / zoom, zoom)


def _zoom_to_fit(half: float, travel: float, room: float) -> float:
    """Zoom at which a view slid by `travel` stays inside a picture with `room` to spare."""
    return half / max(half - travel + room, half * 0.25)


def _duration_scale(frames: int) -> float:
    """Longer clips travel a little further, but not twice as far for twice the time."""
    return min(max(math.sqrt((frames - 1) / 120), 0.4), 1.5)
