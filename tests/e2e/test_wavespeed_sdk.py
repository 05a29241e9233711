"""The official WaveSpeed Python SDK, unchanged but for its base URL, against `i2v serve`.
(Its refusals and sync timeout, against the app in-process: tests/unit/api.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import wavespeed

from i2v.video import probe
from photos import photo_bytes
from server import Server
from service_api import API_KEY

MODEL = "bytedance/dreamina-v3.0/image-to-video-1080p"


def test_sdk_upload_run_async_and_sync(tmp_path: Path, start_server: Callable[..., Server]) -> None:
    server = start_server()  # the built-in catalog and the real motion engine
    client = wavespeed.Client(api_key=API_KEY, base_url=server.base_url, max_connection_retries=0)
    image = tmp_path / "photo.jpg"
    image.write_bytes(photo_bytes(960, 540))

    url = client.upload(str(image))
    assert url.startswith(server.base_url + "/media/uploads/")
    assert httpx.get(url).content == image.read_bytes()

    for sync in (False, True):
        out = client.run(
            MODEL,
            {"prompt": "slow push in on the scene", "image": url, "seed": 42},
            enable_sync_mode=sync,
            poll_interval=0.2,
            timeout=300,
        )
        video = httpx.get(out["outputs"][0])
        assert video.status_code == 200
        path = tmp_path / f"out-{sync}.mp4"
        path.write_bytes(video.content)
        info = probe(path)
        assert (info.width, info.height, info.frames, info.codec) == (1920, 1080, 121, "h264")
        assert info.fps == 24
