"""Parsing `Range` headers for media streamed from remote storage."""

from __future__ import annotations

import pytest

from i2v.api.ranges import Unsatisfiable, byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-0", (0, 1)),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=900-5000", (900, 1000)),  # past the end: up to the end
        ("bytes=-100", (900, 1000)),  # the last 100 bytes
        ("bytes=-5000", (0, 1000)),
        ("bytes=0-1,5-6", None),  # several ranges: send it all
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=9-3"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)
    with pytest.raises(Unsatisfiable):
        byte_range(header, 0)
    assert byte_range(None, 0) is None  # an empty object can still be sent whole
