"""The same service on PostgreSQL: `I2V_DATABASE_URL` is the only change. Two servers
share the database (scale-out), one is SIGKILLed mid-render, and every accepted
prediction still completes exactly once."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx

from photos import photo_bytes
from server import Server
from service_api import fake_catalog, submit_seeds


def test_two_servers_share_postgres_and_survive_a_kill(tmp_path: Path, postgres_url: str) -> None:
    catalog = fake_catalog(tmp_path / "catalog.toml", frame_delay=0.01, frames=[41])
    env = {
        "I2V_DATABASE_URL": postgres_url,
        "I2V_MEDIA_DIR": str(tmp_path / "media"),
        "I2V_URL_SECRET": "shared-secret-for-both-servers",
    }
    first = Server(tmp_path / "a", catalog=catalog, lease_seconds=2, extra_env=env).start()
    second = Server(tmp_path / "b", catalog=catalog, lease_seconds=2, extra_env=env).start()
    image = base64.b64encode(photo_bytes()).decode()
    try:
        with first.client() as client:
            ids = submit_seeds(client, image, 6)
            deadline = time.monotonic() + 30
            while not any(
                client.get(f"/api/v3/predictions/{pid}/result").json()["data"]["status"]
                == "processing"
                for pid in ids
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        first.kill()

        with second.client() as client:
            deadline = time.monotonic() + 120
            done: dict[str, dict[str, object]] = {}
            while len(done) < len(ids):
                assert time.monotonic() < deadline, done
                for pid in ids:
                    data = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
                    if data["status"] in ("completed", "failed", "cancelled"):
                        done[pid] = data
                time.sleep(0.2)
            for data in done.values():
                assert data["status"] == "completed", data
                outputs = data["outputs"]
                assert isinstance(outputs, list)
                assert httpx.get(outputs[0]).content[4:8] == b"ftyp"
    finally:
        first.stop()
        second.stop()
