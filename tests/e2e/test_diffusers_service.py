"""A generative engine behind the real service: a tiny Wan pipeline saved to a folder,
served through a catalog route and driven over the WaveSpeed and RunComfy dialects."""

from __future__ import annotations

import base64
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from i2v.video import probe
from photos import photo_bytes
from server import Server
from service_api import wait_done, write_catalog

sys.path.insert(0, str(Path(__file__).parent / "diffusers"))
import tiny

ROUTE = "wan-tiny/ti2v"
IMAGE = base64.b64encode(photo_bytes()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("diffusers-service")
    weights = tiny.build_tiny_wan_ti2v(root / "weights")
    catalog = write_catalog(
        root / "catalog.toml",
        {
            ROUTE: {
                "engine": "wan",
                "resolution": "480p",
                "frames": [121, 241],
                "inputs": ["num_inference_steps", "aspect_ratio"],
                "options": tiny.tiny_options("wan-ti2v", weights),
            }
        },
    )
    srv = Server(root / "data", catalog=catalog).start()
    yield srv
    srv.stop()


def submit(client: httpx.Client, **fields: Any) -> str:
    r = client.post(f"/api/v3/{ROUTE}", json={"prompt": "a cat", "image": IMAGE, **fields})
    assert r.status_code == 200, r.text
    pid: str = r.json()["data"]["id"]
    return pid


def result(client: httpx.Client, pid: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"/api/v3/predictions/{pid}/result").json()["data"]
    return data


def wait_running(client: httpx.Client, pid: str) -> list[float]:
    """Poll until the job reports denoising progress; returns what was seen."""
    seen: list[float] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data = result(client, pid)
        assert data["status"] in ("created", "processing"), data
        if data["status"] == "processing" and data["progress"] > 0:
            seen.append(data["progress"])
            return seen
        time.sleep(0.02)
    raise AssertionError(f"{pid} never showed progress")


def test_frames_size_fps_and_same_seed_same_video(server: Server, tmp_path: Path) -> None:
    with server.client() as client:
        first, second = submit(client, seed=3), submit(client, seed=3)
        videos = []
        for pid in (first, second):
            done = wait_done(client, pid, timeout=120)
            assert done["status"] == "completed", done
            videos.append(httpx.get(done["outputs"][0]).content)
    path = tmp_path / "a.mp4"
    path.write_bytes(videos[0])
    info = probe(path)
    assert (info.width, info.height, info.frames, info.fps) == (854, 480, 121, 24)
    assert videos[0] == videos[1]


def test_progress_is_reported_per_step(server: Server) -> None:
    with server.client() as client:
        pid = submit(client, num_inference_steps=100)
        seen = wait_running(client, pid)
        while (data := result(client, pid))["status"] == "processing":
            seen.append(data["progress"])
            time.sleep(0.02)
        assert data["status"] == "completed"
    distinct = sorted(set(seen))
    assert len([p for p in distinct if 0 < p < 1]) >= 2, distinct
    assert seen == sorted(seen)  # never goes backwards


def test_cancel_mid_run_then_the_engine_still_serves(server: Server) -> None:
    with server.client() as client:
        pid = submit(client, num_inference_steps=80)
        wait_running(client, pid)
        r = client.post(f"/v1/requests/{pid}/cancel")
        assert r.json()["outcome"] == "cancelled"
        assert wait_done(client, pid, timeout=20)["status"] == "cancelled"
        assert wait_done(client, submit(client), timeout=120)["status"] == "completed"


def test_killed_engine_process_fails_its_job_and_is_replaced(server: Server) -> None:
    assert server.proc is not None
    with server.client() as client:
        pid = submit(client, num_inference_steps=80)
        wait_running(client, pid)
        children = psutil.Process(server.proc.pid).children(recursive=True)
        # The engine's child is the one that loaded torch (the intake's image decoders
        # are spawned children too, and must survive).
        engines = [c for c in children if _loaded_torch(c)]
        assert engines, [c.cmdline() for c in children]
        for child in engines:
            child.send_signal(signal.SIGKILL)
        done = wait_done(client, pid, timeout=120)
        assert done["status"] == "failed"
        assert "engine process died" in done["error"]
        assert wait_done(client, submit(client), timeout=120)["status"] == "completed"


def _loaded_torch(process: psutil.Process) -> bool:
    try:
        return any("torch" in m.path for m in process.memory_maps())
    except psutil.Error:
        return False
