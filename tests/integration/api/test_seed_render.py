"""The RunComfy seed's own curl example, with the host changed (and, offline, the image
URL pointed at an upload), against the built-in catalog in-process: the motion engine
renders it at 1080p, which takes seconds, so it is not in the unit tier."""

from __future__ import annotations

from pathlib import Path

from i2v.video import probe
from inprocess import InProcess
from photos import photo_bytes
from service_api import wait_result

# The RunComfy seed's example prompt, verbatim.
SEED_PROMPT = (
    "A slow, sweeping tracking shot moves through a sun-drenched vintage street, capturing "
    "the golden-hour glow. The lens flares dance as the sunlight filters through the gaps "
    "between historic buildings, casting long, dramatic shadows. A classic car glides "
    "smoothly across the frame, its polished surface reflecting the warm hues of the setting "
    "sun. Dust particles shimmer in the light as pedestrians move leisurely in the "
    "background, evoking a nostalgic, cinematic atmosphere reminiscent of an old film."
)


def test_runcomfy_seed_example_submits_and_completes(tmp_path: Path) -> None:
    with InProcess(tmp_path / "data", catalog=None) as api:  # the built-in motion engine
        client = api.client()
        upload = client.post(
            "/api/v3/media/upload/binary",
            files={"file": ("usecase2-2-input.jpeg", photo_bytes(1280, 720), "image/jpeg")},
        ).json()["data"]["download_url"]
        r = client.post(
            "/v1/models/bytedance/dreamina-3-0/pro/image-to-video",
            json={"prompt": SEED_PROMPT, "image_urls": [upload]},
        )
        assert r.status_code == 200, r.text
        result = wait_result(client, r.json()["request_id"], timeout=120)
        assert result["status"] == "succeeded", result
        path = tmp_path / "seed.mp4"
        path.write_bytes(api.client(None).get(result["output"]["video"]).content)
        info = probe(path)
        assert (info.width, info.height, info.frames, info.fps) == (1920, 1080, 121, 24)
