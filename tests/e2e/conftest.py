from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server import Server


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(name: str = "server", **kwargs: Any) -> Server:
        server = Server(tmp_path / name, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
