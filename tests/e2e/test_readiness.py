"""`/readyz` follows the database: 503 naming it while PostgreSQL is down, 200 once it
is back, while `/healthz` (the process itself) answers throughout."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from postgres import postgres_stopped
from server import Server


def ready(base_url: str) -> httpx.Response:
    return httpx.get(f"{base_url}/readyz", timeout=30)


def wait_status(base_url: str, status: int, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (r := ready(base_url)).status_code != status:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    return r


def test_readyz_follows_postgres(tmp_path: Path, postgres_server: str, postgres_url: str) -> None:
    env = {"I2V_DATABASE_URL": postgres_url}
    server = Server(tmp_path / "data", workers=0, extra_env=env).start()
    try:
        up = ready(server.base_url)
        assert up.status_code == 200, up.text
        assert up.json() == {"status": "ready", "problems": []}
        with postgres_stopped(postgres_server):
            down = wait_status(server.base_url, 503)
            problems = down.json()["problems"]
            assert len(problems) == 1
            assert problems[0].startswith("database: does not answer"), problems
            assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        back = wait_status(server.base_url, 200)
        assert back.json()["status"] == "ready"
    finally:
        server.stop()
