from __future__ import annotations

import pytest

from i2v.engines.motion.camera import STATIC, Move, parse_move


@pytest.mark.parametrize(
    ("prompt", "kind", "direction"),
    [
        ("slow zoom in on the cup", "push", "in"),
        ("the camera pushes in toward her face", "push", "in"),
        ("dolly in, golden hour", "push", "in"),
        ("a close-up of the steam", "push", "in"),
        ("pull back to reveal the city", "pull", "out"),
        ("zoom out slowly", "pull", "out"),
        ("dolly out from the table", "pull", "out"),
        ("pan left across the skyline", "pan", "left"),
        ("camera pans to the right", "pan", "right"),
        ("tilt up to the sky", "tilt", "up"),
        ("tilting down the tower", "tilt", "down"),
        ("tracking shot to the left of the runner", "track", "left"),
        ("truck right past the shelves", "track", "right"),
        ("dolly left along the rail", "track", "left"),
        ("orbit right around the statue", "orbit", "right"),
        ("static shot of a lake", "static", "none"),
        ("locked-off camera, leaves moving", "static", "none"),
    ],
)
def test_camera_language_is_read(prompt: str, kind: str, direction: str) -> None:
    move = parse_move(prompt, seed=1)
    assert (move.kind, move.direction) == (kind, direction)
    assert move.named or kind == "static"


def test_first_camera_phrase_wins() -> None:
    assert parse_move("pan left, then zoom in", seed=0).kind == "pan"
    assert parse_move("zoom in, then pan left", seed=0).kind == "push"


@pytest.mark.parametrize(
    ("prompt", "speed"),
    [
        ("slowly push in", "slow"),
        ("a gentle pan right", "slow"),
        ("fast zoom in", "fast"),
        ("quick tilt down", "fast"),
        ("push in", "normal"),
    ],
)
def test_speed_words(prompt: str, speed: str) -> None:
    assert parse_move(prompt, seed=0).speed == speed


def test_pan_without_side_takes_it_from_the_seed() -> None:
    sides = {parse_move("a slow pan over the hills", seed=s).direction for s in range(20)}
    assert sides == {"left", "right"}
    assert parse_move("pan over", seed=7) == parse_move("pan over", seed=7)


def test_seed_picks_a_move_when_the_prompt_names_none() -> None:
    moves = [parse_move("a cat sleeping on a sofa", seed=s) for s in range(60)]
    assert all(not move.named for move in moves)
    assert {move.kind for move in moves} >= {"push", "pull", "pan", "track"}
    assert "static" not in {move.kind for move in moves}
    assert moves[5] == parse_move("a cat sleeping on a sofa", seed=5)


def test_camera_fixed_overrides_the_prompt() -> None:
    assert parse_move("fast zoom in", seed=3, camera_fixed=True) == STATIC


def test_words_inside_other_words_are_not_camera_language() -> None:
    assert not parse_move("a panorama of an archway", seed=1).named


def test_move_reads_as_text() -> None:
    assert str(Move("push", "in", "slow")) == "slow push in"
    assert str(STATIC) == "static"
