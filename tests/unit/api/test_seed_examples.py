"""The WaveSpeed seed's own curl example against the built-in catalog on a fresh server.
(The RunComfy seed's, which renders 1080p: tests/integration/api/test_seed_render.py.)"""

from __future__ import annotations

from collections.abc import Callable

from inprocess import InProcess


def test_wavespeed_seed_example_names_both_missing_fields(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(catalog=None, workers=0)
    client = api.client()
    r = client.post(
        "/api/v3/bytedance/dreamina-v3.0/image-to-video-1080p",
        json={"seed": -1, "duration": 5},
    )
    assert r.status_code == 400
    assert r.json()["message"] == "prompt: is required; image: is required"
