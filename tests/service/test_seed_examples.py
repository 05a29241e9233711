"""The seeds' own curl examples, with the host changed (and, offline, the image URL
pointed at an upload), against the built-in catalog on a fresh server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from i2v.video import probe
from photos import photo_bytes
from server import Server

# The RunComfy seed's example prompt, verbatim.
SEED_PROMPT = (
    "A slow, sweeping tracking shot moves through a sun-drenched vintage street, capturing "
    "the golden-hour glow. The lens flares dance as the sunlight filters through the gaps "
    "between historic buildings, casting long, dramatic shadows. A classic car glides "
    "smoothly across the frame, its polished surface reflecting the warm hues of the setting "
    "sun. Dust particles shimmer in the light as pedestrians move leisurely in the "
    "background, evoking a nostalgic, cinematic atmosphere reminiscent of an old film."
)


def test_runcomfy_seed_example_submits_and_completes(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server()
    with server.client() as client:
        upload = client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("usecase2-2-input.jpeg", photo_bytes(1280, 720), "image/jpeg")},
        ).json()["data"]["download_url"]
        r = client.post(
            "/v1/models/bytedance/dreamina-3-0/pro/image-to-video",
            json={"prompt": SEED_PROMPT, "image_urls": [upload]},
        )
        assert r.status_code == 200, r.text
        rid = r.json()["request_id"]
        deadline = time.monotonic() + 120
        while (result := client.get(f"/v1/requests/{rid}/result").json())["status"] not in (
            "succeeded",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert result["status"] == "succeeded", result
    path = tmp_path / "seed.mp4"
    path.write_bytes(httpx.get(result["output"]["video"]).content)
    info = probe(path)
    assert (info.width, info.height, info.frames, info.fps) == (1920, 1080, 121, 24)


def test_wavespeed_seed_example_names_both_missing_fields(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(workers=0)
    with server.client() as client:
        r = client.post(
            "/api/v3/bytedance/dreamina-v3.0/image-to-video-1080p",
            json={"seed": -1, "duration": 5},
        )
    assert r.status_code == 400
    assert r.json()["message"] == "prompt: is required; image: is required"
