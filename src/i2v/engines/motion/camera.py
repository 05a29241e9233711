"""Camera language in a prompt -> one camera move.

A single still has no depth, so every move is a 2-D camera over the picture: push-in and
pull-out (zoom), pan and tilt (the view slides), tracking (a lateral slide with a slight
push), orbit (an arc with a little roll) and static. The first camera phrase in the prompt
wins; with none, the seed picks the move, so a prompt that only describes the scene still
gets a deterministic, varied camera.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["static", "push", "pull", "pan", "tilt", "track", "orbit"]
Direction = Literal["in", "out", "left", "right", "up", "down", "none"]
Speed = Literal["slow", "normal", "fast"]

SPEED_FACTOR: dict[Speed, float] = {"slow": 0.5, "normal": 1.0, "fast": 1.8}


@dataclass(frozen=True)
class Move:
    """One camera move for a whole clip.

    `named` tells whether the prompt asked for it (True) or the seed picked it (False).
    """

    kind: Kind
    direction: Direction
    speed: Speed = "normal"
    named: bool = True

    @property
    def speed_factor(self) -> float:
        return SPEED_FACTOR[self.speed]

    def __str__(self) -> str:
        words: list[str] = [self.speed] if self.speed != "normal" else []
        words.append(self.kind)
        if self.direction != "none":
            words.append(self.direction)
        return " ".join(words)


STATIC = Move("static", "none")

_SIDE = r"(?:\s+(?:to(?:wards?)?\s+)?(?:the\s+)?(left|right))?"
_UPDOWN = r"(?:\s+(?:to(?:wards?)?\s+)?(?:the\s+)?(up|down|upwards?|downwards?))?"

# (pattern, kind, fixed direction or None to read it from the match's group 1)
_PHRASES: tuple[tuple[str, Kind, Direction | None], ...] = (
    (
        r"\b(?:static|locked[- ]?(?:off|down)|fixed camera|still camera|tripod"
        r"|no camera (?:movement|motion)|camera (?:is |stays |remains )?(?:still|fixed))\b",
        "static",
        "none",
    ),
    (
        r"\b(?:zoom(?:s|ed|ing)?|push(?:es|ed|ing)?|dolly(?:ing)?|dollies)"
        r"[- ]?(?:out|back)\b|\bpull(?:s|ed|ing)?[- ]?(?:back|out|away)\b"
        r"|\b(?:reveal(?:s|ing)?|wide shot|zoom(?:s|ing)? away)\b",
        "pull",
        "out",
    ),
    (
        r"\b(?:zoom(?:s|ed|ing)?|push(?:es|ed|ing)?|dolly(?:ing)?|dollies"
        r"|creep(?:s|ing)?)[- ]?in(?:wards?|to)?\b"
        r"|\b(?:push[- ]in|close[- ]?up|zoom(?:s|ing)?)\b",
        "push",
        "in",
    ),
    (r"\b(?:track(?:s|ing)?|truck(?:s|ing)?|crab(?:s|bing)?)" + _SIDE + r"\b", "track", None),
    (r"\bdoll(?:y|ies|ying)\s+(?:to\s+)?(?:the\s+)?(left|right)\b", "track", None),
    (r"\bdoll(?:y|ies|ying)\b", "push", "in"),
    (r"\bpan(?:s|ned|ning)?" + _SIDE + r"\b", "pan", None),
    (r"\btilt(?:s|ed|ing)?" + _UPDOWN + r"\b", "tilt", None),
    (
        r"\b(?:orbit(?:s|ing)?|arc(?:s|ing)?|circl(?:e|es|ing) around|rotat(?:e|es|ing) around)"
        + _SIDE
        + r"\b",
        "orbit",
        None,
    ),
)

_PATTERNS = tuple(
    (re.compile(pattern, re.IGNORECASE), kind, direction) for pattern, kind, direction in _PHRASES
)

_SLOW = re.compile(r"\b(?:slow(?:ly)?|gentl[ey]|subtle|subtly|calm(?:ly)?|soft(?:ly)?)\b", re.I)
_FAST = re.compile(
    r"\b(?:fast|quick(?:ly)?|rapid(?:ly)?|swift(?:ly)?|whip|dramatic(?:ally)?)\b", re.I
)

# What the seed picks from when the prompt names no move; push-in is the classic default.
_SEED_CHOICES: tuple[tuple[Kind, tuple[Direction, ...], int], ...] = (
    ("push", ("in",), 4),
    ("pull", ("out",), 2),
    ("pan", ("left", "right"), 2),
    ("tilt", ("up", "down"), 1),
    ("track", ("left", "right"), 2),
    ("orbit", ("left", "right"), 1),
)


def parse_move(prompt: str, seed: int, *, camera_fixed: bool = False) -> Move:
    """The camera move for `prompt`; the seed picks one when the prompt names none.

    >>> str(parse_move("slow push in on the cup", 0))
    'slow push in'
    """
    if camera_fixed:
        return STATIC
    rng = random.Random(seed)
    speed = _speed(prompt)
    found = [
        (match.start(), kind, direction, match)
        for pattern, kind, direction in _PATTERNS
        for match in [pattern.search(prompt)]
        if match is not None
    ]
    if not found:
        return _seeded(rng, speed)
    _, kind, direction, match = min(found, key=lambda item: item[0])
    if direction is None:
        direction = _direction_of(match, kind, rng)
    if kind == "static":
        return STATIC
    return Move(kind, direction, speed, named=True)


def _speed(prompt: str) -> Speed:
    slow, fast = _SLOW.search(prompt), _FAST.search(prompt)
    if slow and fast:
        return "slow" if slow.start() < fast.start() else "fast"
    if slow:
        return "slow"
    if fast:
        return "fast"
    return "normal"


def _direction_of(match: re.Match[str], kind: Kind, rng: random.Random) -> Direction:
    word = (match.group(1) or "").lower() if match.groups() else ""
    if word.startswith("up"):
        return "up"
    if word.startswith("down"):
        return "down"
    if word in ("left", "right"):
        return word  # type: ignore[return-value]
    choices: tuple[Direction, ...] = ("up", "down") if kind == "tilt" else ("left", "right")
    return rng.choice(choices)


def _seeded(rng: random.Random, speed: Speed) -> Move:
    kinds = [kind for kind, _, _ in _SEED_CHOICES]
    weights = [weight for _, _, weight in _SEED_CHOICES]
    index = rng.choices(range(len(kinds)), weights=weights)[0]
    kind, directions, _ = _SEED_CHOICES[index]
    return Move(kind, rng.choice(directions), speed, named=False)
