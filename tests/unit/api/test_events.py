"""Server-sent progress events, streamed, in both dialects."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, OTHER_KEY, RC_ROUTE

IMAGE = base64.b64encode(photo_bytes()).decode()

Event = tuple[str, int, dict[str, Any]]  # name, id, data


def read_events(
    client: httpx.Client, path: str, stop: Callable[[Event], bool] | None = None
) -> list[Event]:
    """Every event of the stream at `path` until the server ends it (or `stop` says so)."""
    events: list[Event] = []
    with client.stream("GET", path, timeout=60) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            if fields:
                event = (fields["event"], int(fields["id"]), json.loads(fields["data"]))
                events.append(event)
                fields = {}
                if stop is not None and stop(event):
                    break
    return events


def test_wavespeed_events_show_progress_then_the_result(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(frames=[41], frame_delay=0.025)  # ~1 s a job
    client = api.client()
    pid = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE}).json()["data"][
        "id"
    ]
    events = read_events(client, f"/api/v3/predictions/{pid}/events")
    *progress, (last_name, _, result) = events

    assert [n for n, _, _ in progress] == ["progress"] * len(progress)
    assert len(progress) >= 3, events  # 41 frames at 25 ms: several changes seen
    assert [i for _, i, _ in events] == list(range(1, len(events) + 1))
    assert {d["status"] for _, _, d in progress} <= {"created", "processing"}
    shown = [d["progress"] for _, _, d in progress]
    assert shown == sorted(shown)
    assert last_name == "completed"
    assert result == client.get(f"/api/v3/predictions/{pid}/result").json()["data"] | {
        "outputs": result["outputs"]  # signed anew per rendering
    }
    assert api.client(None).get(result["outputs"][0]).content[4:8] == b"ftyp"

    # A finished prediction: its outcome at once, and the stream ends.
    again = read_events(client, f"/api/v3/predictions/{pid}/events")
    assert [(n, i) for n, i, _ in again] == [("completed", 1)]

    r = api.client(OTHER_KEY).get(f"/api/v3/predictions/{pid}/events")
    assert r.status_code == 404
    assert r.json()["code"] == 404


def test_runcomfy_events_count_down_the_queue_and_end_with_the_result(
    start_api: Callable[..., InProcess],
) -> None:
    # 0.65 s a job: the third request still waits behind the second when its stream opens.
    api = start_api(frames=[13], frame_delay=0.05)
    body = {"prompt": "p", "image_urls": [IMAGE]}
    client = api.client()
    ids = [client.post(f"/v1/models/{RC_ROUTE}", json=body).json()["request_id"] for _ in range(3)]
    events = read_events(client, f"/v1/requests/{ids[2]}/events")
    *progress, (last_name, _, result) = events

    places = [d["queue_position"] for _, _, d in progress if d["status"] == "in_queue"]
    assert places, events
    assert places == sorted(places, reverse=True)
    assert places[0] >= 1
    assert "in_progress" in [d["status"] for _, _, d in progress]
    assert last_name == "succeeded"
    assert result["request_id"] == ids[2]
    assert result["output"]["video"].startswith(f"{api.base_url}/media/")


def test_a_cancel_ends_the_stream_with_cancelled(start_api: Callable[..., InProcess]) -> None:
    api = start_api(frames=[9, 241], frame_delay=0.05)
    client = api.client()
    rid = client.post(
        f"/v1/models/{RC_ROUTE}", json={"prompt": "p", "image_urls": [IMAGE], "frames": 241}
    ).json()["request_id"]

    def cancel_once_running(event: Event) -> bool:
        if event[2]["status"] == "in_progress":
            assert client.post(f"/v1/requests/{rid}/cancel").status_code == 202
            return True
        return False

    read_events(client, f"/v1/requests/{rid}/events", stop=cancel_once_running)
    events = read_events(client, f"/v1/requests/{rid}/events")
    assert events[-1][0] == "cancelled"
    assert events[-1][2]["status"] == "cancelled"
