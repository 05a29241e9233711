"""API keys: created by `i2v serve` on a fresh install, managed by `i2v keys`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from server import Server


def i2v(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "i2v", *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def test_fresh_install_gets_a_key_and_keys_cli_manages_them(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    data = tmp_path / "data"
    server = start_server("data", api_keys="")
    key = (data / "api-key.txt").read_text().strip()
    assert key in server.log.read_text()  # printed on start
    models = f"{server.base_url}/api/v3/models"
    assert httpx.get(models, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(models).status_code == 401

    made = i2v("keys", "create", "--name", "ci", "--data-dir", str(data)).strip()
    assert made.startswith("i2v_")
    headers = {"Authorization": f"Bearer {made}"}
    assert httpx.get(models, headers=headers).status_code == 200
    listing = i2v("keys", "list", "--data-dir", str(data))
    assert "ci" in listing
    assert made not in listing  # only prefixes are ever shown
    i2v("keys", "revoke", "ci", "--data-dir", str(data))
    # The server remembers a key for a few seconds; the revoke takes effect within that.
    deadline = time.monotonic() + 30
    while httpx.get(models, headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.5)
