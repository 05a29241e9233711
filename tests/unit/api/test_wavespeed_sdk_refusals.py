"""The official WaveSpeed Python SDK, unchanged but for its base URL, on the app's
refusals. (Its whole round trip against `i2v serve`: tests/e2e/test_wavespeed_sdk.py.)"""

from __future__ import annotations

from collections.abc import Callable

import wavespeed

from inprocess import InProcess
from service_api import API_KEY

MODEL = "bytedance/dreamina-v3.0/image-to-video-1080p"


def test_sdk_reports_failures(start_api: Callable[..., InProcess]) -> None:
    api = start_api(catalog=None, workers=0)  # the built-in catalog; nothing is rendered
    with api.serve() as base_url:
        client = wavespeed.Client(api_key=API_KEY, base_url=base_url, max_connection_retries=0)
        # The seed's own example body: no prompt, no image.
        result = client.run_no_throw(MODEL, {"seed": -1, "duration": 5})
    assert result["status"] == "failed"
    assert "prompt: is required" in result["error"]
    assert "image: is required" in result["error"]
