"""The decode pool: child processes, a time budget, a killed child replaced."""

from __future__ import annotations

import pytest

from i2v.domain.errors import ImageError
from i2v.intake.decoder import DecodePool
from i2v.intake.image import ImageFacts
from photos import photo_bytes


def test_inspect_returns_the_facts(pool: DecodePool) -> None:
    data = photo_bytes(800, 600)
    assert pool.inspect(data) == ImageFacts(800, 600, "JPEG", len(data))


def test_a_refusal_comes_back_as_the_same_error(pool: DecodePool) -> None:
    with pytest.raises(ImageError) as info:
        pool.inspect(photo_bytes(1500, 400), field="last_image")
    assert info.value.message == (
        "last_image: ratio of long side to short side must be within 3:1, got 3.75:1"
    )
    assert info.value.field == "last_image"
    assert info.value.value == (1500, 400)


def test_a_decode_past_its_budget_is_refused_and_its_child_replaced(pool: DecodePool) -> None:
    data = photo_bytes(800, 600)
    pool.inspect(data)  # the child is up
    (child,) = pool._children
    pool.budget_s = 0.0  # no decode answers in zero seconds
    with pytest.raises(ImageError) as info:
        pool.inspect(data)
    assert info.value.message == (
        "image: decoding must finish within 0 s, took longer; send a smaller or simpler image"
    )
    assert not child.process.is_alive()  # killed, not left running
    pool.budget_s = 30.0
    assert pool.inspect(data).width == 800
    assert pool._children[0] is not child


def test_a_child_that_died_refuses_one_image_and_is_replaced(pool: DecodePool) -> None:
    data = photo_bytes(800, 600)
    pool.inspect(data)
    pool._children[0].kill()
    with pytest.raises(ImageError, match="the decoder stopped on this image"):
        pool.inspect(data)
    assert pool.inspect(data).height == 600


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DecodePool(workers=0)
