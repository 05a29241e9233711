"""The API in-process (tests/inprocess.py): `api` starts one with a fake-engine catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inprocess import InProcess
from service_api import fake_catalog

FAST = [9, 17]  # frame counts of the fake routes unless a test asks for others


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., InProcess]]:
    """Start an in-process API: `start_api(name, frame_delay=, frames=, routes=, **settings)`
    (`routes`: more catalog routes; `catalog=None`: the built-in catalog; settings as
    Settings fields, e.g. workers=0). All are closed, workers joined, after the test."""
    started: list[InProcess] = []

    def start(
        name: str = "data",
        *,
        frame_delay: float = 0.0,
        frames: list[int] | None = None,
        routes: dict[str, dict[str, object]] | None = None,
        **settings: Any,
    ) -> InProcess:
        if "catalog" not in settings:
            catalog = tmp_path / f"{name}-catalog.toml"
            routes = routes or {}
            settings["catalog"] = fake_catalog(catalog, frame_delay, frames or FAST, **routes)
        api = InProcess(tmp_path / name, **settings).start()
        started.append(api)
        return api

    yield start
    for api in reversed(started):
        api.close()


@pytest.fixture
def api(start_api: Callable[..., InProcess]) -> InProcess:
    """An in-process API with one worker and quick fake routes."""
    return start_api()
