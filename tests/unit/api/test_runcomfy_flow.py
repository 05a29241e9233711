"""RunComfy dialect: submit -> status -> result, cancel, queue positions."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx

from inprocess import InProcess
from photos import photo_bytes
from service_api import OTHER_KEY, wait_result
from service_api import RC_ROUTE as ROUTE


def data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def submit(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {"prompt": "a slow push in", "image_urls": [data_uri(photo_bytes())], **overrides}
    r = client.post(f"/v1/models/{ROUTE}", json=body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_submit_status_result(start_api: Callable[..., InProcess]) -> None:
    api = start_api()
    anonymous = api.client(None)
    client = api.client()
    created = submit(client, seed=7, frames=17)
    rid = created["request_id"]
    assert created["status_url"] == f"{api.base_url}/v1/requests/{rid}/status"
    assert created["result_url"].endswith(f"/v1/requests/{rid}/result")
    assert created["cancel_url"].endswith(f"/v1/requests/{rid}/cancel")

    status = client.get(f"/v1/requests/{rid}/status").json()
    assert status["request_id"] == rid
    assert status["status"] in ("in_queue", "in_progress", "completed")

    result = wait_result(client, rid)
    assert result["status"] == "succeeded", result
    assert result["seed"] == 7
    assert result["created_at"].endswith("Z")
    assert result["finished_at"].endswith("Z")
    video = anonymous.get(result["output"]["video"])  # capability URL: no key needed
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert client.get(f"/v1/requests/{rid}/status").json()["status"] == "completed"

    # Another key sees nothing of it.
    other = api.client(OTHER_KEY)
    for path in ("status", "result"):
        r = other.get(f"/v1/requests/{rid}/{path}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == 404001
    assert other.post(f"/v1/requests/{rid}/cancel").status_code == 404

    # Knowing the id is not enough to fetch the video: the signature is.
    bare = result["output"]["video"].split("?")[0]
    assert anonymous.get(bare).status_code == 404


def test_queue_position_counts_down_and_cancel(start_api: Callable[..., InProcess]) -> None:
    # One worker, slow frames: later submits wait in line.
    api = start_api(frame_delay=0.05)  # 0.45 s a job: four submits are done well before
    client = api.client()
    ids = [submit(client)["request_id"] for _ in range(4)]
    positions = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/v1/requests/{ids[3]}/status").json()
        if status["status"] != "in_queue":
            break
        if not positions or positions[-1] != status["queue_position"]:
            positions.append(status["queue_position"])
        time.sleep(0.05)
    assert positions[0] >= 2, positions
    assert positions == sorted(positions, reverse=True), positions
    assert positions[-1] == 0, positions

    # Cancel a queued one: it never runs.
    queued = submit(client)["request_id"]
    extra = submit(client)["request_id"]
    r = client.post(f"/v1/requests/{extra}/cancel")
    assert r.status_code == 202
    assert r.json() == {"request_id": extra, "status": "completed", "outcome": "cancelled"}
    assert client.get(f"/v1/requests/{extra}/status").json()["status"] == "cancelled"
    assert wait_result(client, extra)["status"] == "cancelled"
    assert "output" not in wait_result(client, extra)
    assert wait_result(client, queued)["status"] == "succeeded"

    # A finished one cannot be cancelled.
    r = client.post(f"/v1/requests/{queued}/cancel")
    assert r.status_code == 202
    assert r.json()["outcome"] == "not_cancellable"


def test_cancel_running_stops_it(start_api: Callable[..., InProcess]) -> None:
    api = start_api(frames=[9, 241], frame_delay=0.05)
    client = api.client()
    rid = submit(client, frames=241)["request_id"]
    deadline = time.monotonic() + 30
    while client.get(f"/v1/requests/{rid}/status").json()["status"] != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = client.post(f"/v1/requests/{rid}/cancel")
    assert r.json()["outcome"] == "cancelled"
    result = wait_result(client, rid, timeout=10)
    assert result["status"] == "cancelled"
