"""Fixtures shared by every test tier."""

from __future__ import annotations

import pytest

from photos import photo_bytes


@pytest.fixture
def photo() -> bytes:
    return photo_bytes()
