"""Byte ranges of media: parsing `Range` headers (for media streamed from remote
storage), and ranges of a video in local storage over HTTP. (Over S3:
tests/e2e/test_s3_service.py.)"""

from __future__ import annotations

import base64

import pytest

from i2v.api.ranges import Unsatisfiable, byte_range
from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, wait_done


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-0", (0, 1)),
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=900-5000", (900, 1000)),  # past the end: up to the end
        ("bytes=-100", (900, 1000)),  # the last 100 bytes
        ("bytes=-5000", (0, 1000)),
        ("bytes=0-1,5-6", None),  # several ranges: send it all
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=9-3"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)
    with pytest.raises(Unsatisfiable):
        byte_range(header, 0)
    assert byte_range(None, 0) is None  # an empty object can still be sent whole


def test_a_local_video_is_served_in_ranges(api: InProcess) -> None:
    client, anonymous = api.client(), api.client(None)
    image = base64.b64encode(photo_bytes()).decode()
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": image})
    assert r.status_code == 200, r.text
    video_url = wait_done(client, r.json()["data"]["id"])["outputs"][0]

    whole = anonymous.get(video_url)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    part = anonymous.get(video_url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
    assert part.content == whole.content[100:1100]
    head = anonymous.head(video_url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(whole.content))
    assert head.content == b""
    beyond = anonymous.get(video_url, headers={"Range": f"bytes={len(whole.content)}-"})
    assert beyond.status_code == 416
