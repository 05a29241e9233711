"""The decode pool the intake tests share: one child process, a generous budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from i2v.intake.decoder import DecodePool


@pytest.fixture
def pool() -> Iterator[DecodePool]:
    """A fresh pool per test: some tests kill its child."""
    decoder = DecodePool(workers=1, budget_s=30.0)
    try:
        yield decoder
    finally:
        decoder.close()
