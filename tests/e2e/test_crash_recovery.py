"""SIGKILL the server with work queued and running: after a restart, everything finishes."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx

from i2v.video import probe
from photos import photo_bytes
from server import Server
from service_api import fake_catalog, submit_seeds


def test_kill_9_mid_render_loses_nothing(tmp_path: Path) -> None:
    catalog = fake_catalog(tmp_path / "catalog.toml", frame_delay=0.02, frames=[41])
    data = tmp_path / "data"
    image = base64.b64encode(photo_bytes()).decode()
    first = Server(data, catalog=catalog, lease_seconds=2).start()
    try:
        with first.client() as client:
            ids = submit_seeds(client, image, 4)
            deadline = time.monotonic() + 30
            while (
                client.get(f"/api/v3/predictions/{ids[0]}/result").json()["data"]["status"]
                != "processing"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.3)  # mid-render
    finally:
        first.kill()

    second = Server(data, catalog=catalog, lease_seconds=2).start()
    try:
        with second.client() as client:
            deadline = time.monotonic() + 90
            finished: dict[str, dict[str, object]] = {}
            while len(finished) < len(ids):
                assert time.monotonic() < deadline, finished
                for pid in ids:
                    body = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
                    if body["status"] in ("completed", "failed", "cancelled"):
                        finished[pid] = body
                time.sleep(0.2)
            for pid, body in finished.items():
                assert body["status"] == "completed", body
                outputs = body["outputs"]
                assert isinstance(outputs, list)
                assert len(outputs) == 1
                video = httpx.get(outputs[0])
                assert video.status_code == 200
                path = tmp_path / f"{pid}.mp4"
                path.write_bytes(video.content)
                assert probe(path).frames == 41
            # The one killed mid-render ran again as attempt 2.
            assert f"outputs/{ids[0]}/2.mp4" in str(finished[ids[0]]["outputs"])
    finally:
        second.stop()
