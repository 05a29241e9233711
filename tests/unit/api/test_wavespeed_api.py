"""The WaveSpeed v3 dialect beyond submit/result: history, delete, models, uploads,
base64 output, sync mode and its timeout, OpenAPI."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wavespeed

from i2v.video import probe
from inprocess import InProcess
from photos import photo_bytes
from service_api import API_KEY, FAKE_ROUTE, OTHER_KEY, fake_catalog, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """Durations 5 and 10 s as the seeds', at 2 fps: 11 or 21 frames render quickly."""
    root = tmp_path_factory.mktemp("wavespeed-api")
    catalog = fake_catalog(root / "catalog.toml", frames=[11, 21], fps=2)
    with InProcess(root / "data", catalog=catalog) as api:
        yield api


def run(client: httpx.Client, body: dict[str, Any], route: str = FAKE_ROUTE) -> dict[str, Any]:
    r = client.post(f"/api/v3/{route}", json={"prompt": "p", "image": IMAGE, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def test_prediction_shape_and_owner_isolation(api: InProcess) -> None:
    client, other = api.client(), api.client(OTHER_KEY)
    created = run(client, {"seed": 5})
    assert created["status"] == "created"
    assert created["outputs"] == []
    assert created["urls"]["get"] == f"{api.base_url}/api/v3/predictions/{created['id']}/result"
    assert created["created_at"].endswith("Z")
    done = wait_done(client, created["id"])
    assert done["status"] == "completed"
    assert done["has_nsfw_contents"] == [False]
    assert done["error"] == ""
    assert done["timings"]["inference"] > 0
    assert done["model"] == FAKE_ROUTE
    full = client.get(f"/api/v3/predictions/{created['id']}").json()["data"]
    assert full["input"]["seed"] == 5
    assert full["input"]["prompt"] == "p"
    for path in (
        f"/api/v3/predictions/{created['id']}",
        f"/api/v3/predictions/{created['id']}/result",
    ):
        r = other.get(path)
        assert r.status_code == 404
        assert r.json() == {"code": 404, "message": r.json()["message"], "data": None}
    assert other.post("/api/v3/predictions/delete", json={"ids": [created["id"]]}).json()[
        "data"
    ] == {"deleted_count": 0}


def test_seed_minus_one_is_recorded(api: InProcess) -> None:
    client = api.client()
    a = wait_done(client, run(client, {"seed": -1})["id"])
    b = wait_done(client, run(client, {"seed": -1})["id"])
    assert a["seed"] >= 0
    assert b["seed"] >= 0
    assert a["seed"] != b["seed"]


def test_aspect_ratio_and_duration(api: InProcess, tmp_path: Path) -> None:
    anonymous = api.client(None)
    client = api.client()
    done = wait_done(client, run(client, {"aspect_ratio": "9:16", "duration": 10})["id"])
    path = tmp_path / "v.mp4"
    path.write_bytes(anonymous.get(done["outputs"][0]).content)
    info = probe(path)
    assert (info.width, info.height, info.frames, info.fps) == (480, 854, 21, 2)


def test_history_and_delete(api: InProcess) -> None:
    anonymous = api.client(None)
    # Only configured keys work.
    assert api.client("third-key").get("/api/v3/models").status_code == 401
    client = api.client()
    ids = [wait_done(client, run(client, {"seed": i})["id"])["id"] for i in range(3)]
    page1 = client.post("/api/v3/predictions", json={"page": 1, "page_size": 2}).json()["data"]
    assert page1["page"] == 1
    assert page1["page_size"] == 2
    assert len(page1["items"]) == 2
    assert page1["items"][0]["id"] == ids[-1]  # newest first
    assert page1["total"] >= 3
    r = client.post("/api/v3/predictions", json={"page": 1, "page_size": 101})
    assert r.status_code == 400
    assert "page_size" in r.json()["message"]

    output = client.get(f"/api/v3/predictions/{ids[0]}/result").json()["data"]["outputs"][0]
    assert anonymous.get(output).status_code == 200
    r = client.post("/api/v3/predictions/delete", json={"ids": [ids[0], "nope"]})
    assert r.json()["data"] == {"deleted_count": 1}
    assert client.get(f"/api/v3/predictions/{ids[0]}/result").status_code == 404
    assert anonymous.get(output).status_code == 404  # its media went with it


def test_models_lists_catalog_with_schemas(api: InProcess) -> None:
    client = api.client()
    models = client.get("/api/v3/models").json()["data"]
    by_id = {m["model_id"]: m for m in models}
    entry = by_id[FAKE_ROUTE]
    schema = entry["api_schema"]["api_schemas"][0]
    assert schema["api_path"] == f"/api/v3/{FAKE_ROUTE}"
    assert set(schema["request_schema"]["required"]) == {"prompt", "image"}
    assert "aspect_ratio" in schema["request_schema"]["properties"]
    assert entry["durations"] == [5, 10]


def test_uploads_binary_and_ticket(api: InProcess) -> None:
    anonymous = api.client(None)
    data = photo_bytes(700, 400, seed=3)
    client = api.client()
    r = client.post(
        "/api/v3/media/upload/binary", files={"file": ("my photo.jpg", data, "image/jpeg")}
    )
    assert r.status_code == 200, r.text
    up = r.json()["data"]
    assert up["type"] == "image"
    assert up["size"] == len(data)
    assert up["filename"] == "my_photo.jpg"
    fetched = anonymous.get(up["download_url"])
    assert fetched.content == data
    assert fetched.headers["x-content-type-options"] == "nosniff"
    done = wait_done(client, run(client, {"image": up["download_url"]})["id"])
    assert done["status"] == "completed"

    ticket = client.post("/api/v3/media/uploads", json={"filename": "b.png", "size": 3}).json()[
        "data"
    ]
    put_url = ticket["upload"]["url"]
    # The download URL's signature does not allow writing.
    assert anonymous.put(ticket["download_url"], content=b"abc").status_code == 404
    assert anonymous.put(put_url, content=b"abc").status_code == 200
    assert anonymous.get(ticket["download_url"]).content == b"abc"
    # Without a key, the ticket endpoint is closed.
    assert anonymous.post("/api/v3/media/uploads", json={}).status_code == 401


def test_sync_mode_with_base64_output(api: InProcess, tmp_path: Path) -> None:
    client = api.client()
    data = run(client, {"enable_sync_mode": True, "enable_base64_output": True})
    assert data["status"] == "completed"
    video = base64.b64decode(data["outputs"][0])
    assert video[4:8] == b"ftyp"
    path = tmp_path / "b64.mp4"
    path.write_bytes(video)
    assert probe(path).frames == 11


def test_openapi_and_docs(api: InProcess) -> None:
    anonymous = api.client(None)
    spec = anonymous.get("/openapi.json").json()
    assert f"/api/v3/{FAKE_ROUTE}" in spec["paths"]
    assert f"/v1/models/{FAKE_ROUTE}" in spec["paths"]
    for path in (
        "/api/v3/predictions/{prediction_id}/result",
        "/v1/requests/{request_id}/status",
        "/api/v3/media/uploads",
        "/api/v3/media/upload/binary",
    ):
        assert path in spec["paths"], path
    body_ref = spec["paths"][f"/api/v3/{FAKE_ROUTE}"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.split("/")[-1]]
    assert set(body["required"]) == {"prompt", "image"}
    # Inputs a route does not take are ignored (and named in X-I2V-Ignored-Inputs).
    assert body.get("additionalProperties", True) is True
    docs = anonymous.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text  # our own page: no CDN script
    assert "Content-Security-Policy" in docs.headers


def test_openapi_security_matches_what_the_server_enforces(api: InProcess) -> None:
    anonymous = api.client(None)
    spec = anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    secured, public = [], []
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x" * 32, path)
        for method, operation in operations.items():
            r = anonymous.request(method, concrete, json={})
            if operation.get("security") == [{"bearer": []}]:
                secured.append(path)
                assert r.status_code == 401, (method, path, r.status_code)
            else:
                public.append(path)
                assert r.status_code != 401, (method, path)
    assert f"/api/v3/{FAKE_ROUTE}" in secured
    assert "/v1/requests/{request_id}/cancel" in secured
    assert "/healthz" in public


def test_sync_timeout_answers_5004_and_job_goes_on(start_api: Callable[..., InProcess]) -> None:
    api = start_api(frame_delay=0.07, sync_timeout_seconds=0.3)  # a job takes 0.6 s
    client = api.client()
    r = client.post(
        f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE, "enable_sync_mode": True}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 5004
    assert body["data"]["code"] == 5004
    assert body["data"]["status"] in ("created", "processing")
    assert "Sync mode timed out" in body["data"]["error"]
    assert wait_done(client, body["data"]["id"])["status"] == "completed"

    with api.serve() as base_url:  # the SDK needs a socket
        sdk = wavespeed.Client(api_key=API_KEY, base_url=base_url)
        result = sdk.run_no_throw(
            FAKE_ROUTE, {"prompt": "p", "image": IMAGE}, enable_sync_mode=True
        )
    assert result["status"] == "processing"
    assert result["task_id"] != "unknown"
