"""Every validation rule in the seeds, plus malformed bodies: a clear 4xx, never a 5xx,
and nothing half-created."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from inprocess import InProcess
from photos import photo_bytes
from service_api import API_KEY, OTHER_KEY

WS = "/api/v3/bytedance/dreamina-v3.0/image-to-video-1080p"
RC = "/v1/models/bytedance/dreamina-3-0/pro/image-to-video"
GOOD = base64.b64encode(photo_bytes()).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(width: int, height: int, noise: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (
        rng.integers(0, 256, (height, width, 3)) if noise else np.full((height, width, 3), 90)
    ).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (1, 2, 3)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """The built-in catalog, no workers: nothing here is rendered."""
    with InProcess(tmp_path_factory.mktemp("bad-input"), workers=0) as api:
        yield api


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    """A local site: /photo.jpg exists, /missing does not, /redirect points at metadata."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/photo.jpg":
                body = photo_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def ws_body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a slow push in", "image": GOOD, **fields}


def rc_body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a slow push in", "image_urls": [GOOD], **fields}


WAVESPEED_CASES = [
    ({"seed": -1, "duration": 5}, ["prompt: is required", "image: is required"]),
    (ws_body(prompt=""), ["prompt: string should have at least 1 character"]),
    (ws_body(prompt="x" * 801), ["prompt: string should have at most 800 characters"]),
    (ws_body(seed=-2), ["seed: input should be greater than or equal to -1, got -2"]),
    (ws_body(seed=2147483648), ["seed: input should be less than or equal to 2147483647"]),
    (ws_body(seed="7"), ["seed: input should be a valid integer, got '7'"]),
    (ws_body(duration=7), ["duration: input should be 5 or 10, got 7"]),
    (ws_body(enable_sync_mode="yes"), ["enable_sync_mode: input should be a valid boolean"]),
    (ws_body(image="ftp://example.com/a.jpg"), ["image: must be an absolute http(s) URL"]),
    (ws_body(image="data:image/png;base64,!!!notbase64"), ["image:"]),
    (
        ws_body(image=b64(png(300, 400))),
        ["image: shortest side must be more than 320 pixels, got 300"],
    ),
    (
        ws_body(image=b64(png(1600, 400))),
        ["image: ratio of long side to short side must be within 3:1"],
    ),
    (ws_body(image=b64(png(4100, 1400))), ["image:", "4096"]),
    (
        # Just over 4.7 MB (4,760,872 bytes): larger images do not fit the submit body cap.
        ws_body(image=b64(png(1300, 1220, noise=True))),
        ["image: file size must be less than 4.7 MB"],
    ),
    (ws_body(image=b64(gif())), ["image: format GIF is not accepted"]),
    (ws_body(image=b64(b"hello, I am not an image at all" * 10)), ["image:"]),
    (ws_body(image="http://169.254.169.254/latest/meta-data/"), ["image:", "169.254.169.254"]),
    (ws_body(image="http://localhost.invalid./x.jpg"), ["image:"]),
    (ws_body(image="http://[::1"), ["image:"]),
    (ws_body(prompt="a\x00b"), ["prompt: value error, must not contain NUL characters"]),
]


@pytest.mark.parametrize(("body", "needles"), WAVESPEED_CASES)
def test_wavespeed_refusals(api: InProcess, body: dict[str, Any], needles: list[str]) -> None:
    client = api.client()
    r = client.post(WS, json=body)
    assert r.status_code == 400, r.text
    envelope = r.json()
    assert envelope["code"] == 400
    assert envelope["data"] is None
    for needle in needles:
        assert needle.lower() in envelope["message"].lower(), envelope["message"]


RUNCOMFY_CASES = [
    ({"image_urls": [GOOD]}, ["prompt: is required"]),
    (rc_body(image_urls=[]), ["image_urls: list should have at least 1 item"]),
    (rc_body(image_urls=[GOOD, GOOD]), ["image_urls: list should have at most 1 item"]),
    (rc_body(image_urls=GOOD), ["image_urls: input should be a valid list"]),
    (rc_body(frames=120), ["frames: input should be 121 or 241, got 120"]),
    (rc_body(prompt="x" * 801), ["prompt: string should have at most 800 characters"]),
    (
        rc_body(image_urls=[b64(png(300, 400))]),
        ["image_urls[0]: shortest side must be more than 320"],
    ),
    (rc_body(duration=5), ["duration: is not an input of this model"]),
]


@pytest.mark.parametrize(("body", "needles"), RUNCOMFY_CASES)
def test_runcomfy_refusals(api: InProcess, body: dict[str, Any], needles: list[str]) -> None:
    client = api.client()
    r = client.post(RC, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400001
    for needle in needles:
        assert needle.lower() in error["message"].lower(), error["message"]


def test_urls_fetched_through_the_guard(api: InProcess, web: str) -> None:
    client = api.client()
    ok = client.post(WS, json=ws_body(image=f"{web}/photo.jpg"))
    assert ok.status_code == 200, ok.text
    missing = client.post(WS, json=ws_body(image=f"{web}/missing"))
    assert missing.status_code == 400
    assert "404" in missing.json()["message"]
    redirect = client.post(WS, json=ws_body(image=f"{web}/redirect"))
    assert redirect.status_code == 400
    assert "169.254.169.254" in redirect.json()["message"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"{not json", "malformed JSON"), (b"[1, 2]", "must be a JSON object"), (b"", "")],
)
def test_malformed_bodies(api: InProcess, content: bytes, needle: str) -> None:
    client = api.client()
    r = client.post(WS, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert needle in r.json()["message"]


def test_oversize_body_is_413(api: InProcess) -> None:
    client = api.client()
    r = client.post(
        WS, content=b"x" * (33 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert "body: must be at most" in r.json()["message"]


def test_unknown_model_lists_close_matches(api: InProcess) -> None:
    client = api.client()
    r = client.post("/api/v3/bytedance/dreamina-v3.0/image-to-video-1088p", json=ws_body())
    assert r.status_code == 404
    assert "bytedance/dreamina-v3.0/image-to-video-1080p" in r.json()["message"]
    r = client.post("/v1/models/bytedance/dreamina-3-0/pro/image-to-vid", json=rc_body())
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404001
    assert "bytedance/dreamina-3-0/pro/image-to-video" in r.json()["error"]["message"]


def test_keys_are_required(api: InProcess) -> None:
    anonymous = api.client(None)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = anonymous.post(WS, json=ws_body(), headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == 401
        r = anonymous.get("/v1/requests/abc/status", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == 401001


@pytest.mark.parametrize(
    ("webhook", "rule"),
    [
        ("ftp://example.com/hook", "must be an absolute http(s) URL, got 'ftp://example.com/hook'"),
        ("/relative/hook", "must be an absolute http(s) URL"),
        ("https:///no-host", "it has no host"),
        ("https://example.com/" + "a" * 2100, "must be at most 2048 characters, got 2120"),
    ],
)
def test_a_bad_webhook_url_is_refused_naming_it(api: InProcess, webhook: str, rule: str) -> None:
    client = api.client()
    r = client.post(WS, params={"webhook": webhook}, json=ws_body())
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("webhook: ")
    assert rule in r.json()["message"]
    r = client.post(RC, params={"webhook": webhook}, json=rc_body())
    assert r.status_code == 400, r.text
    assert rule in r.json()["error"]["message"]


def test_webhook_with_base64_output_is_refused_as_wavespeed_does(api: InProcess) -> None:
    client = api.client()
    r = client.post(
        WS,
        params={"webhook": "https://example.com/hook"},
        json=ws_body(enable_base64_output=True),
    )
    assert r.status_code == 400
    assert "webhook callback does not support base64 output" in r.json()["message"]


def test_refusals_create_nothing(api: InProcess) -> None:
    """After every refusal above, the only predictions and input files are the accepted ones."""

    def total(key: str) -> int:
        page = api.client(key).post("/api/v3/predictions", json={"page": 1, "page_size": 100})
        count: int = page.json()["data"]["total"]
        return count

    c = api.client(OTHER_KEY)
    before = total(OTHER_KEY)
    c.post(WS, json=ws_body(image=b64(png(300, 400))))
    c.post(WS, json={"seed": 1})
    assert total(OTHER_KEY) == before == 0
    inputs = api.media_dir / "inputs"
    files = list(inputs.iterdir()) if inputs.exists() else []
    assert len(files) == total(API_KEY)  # one input per accepted prediction, no orphans


def test_history_page_out_of_range(api: InProcess) -> None:
    client = api.client()
    r = client.post("/api/v3/predictions", json={"page": 10**17, "page_size": 10})
    assert r.status_code == 400
    assert "page: input should be less than or equal to 1000000" in r.json()["message"]


def test_a_stray_slash_names_the_model_it_meant(api: InProcess) -> None:
    client = api.client()
    r = client.post(WS + "/", json=ws_body())
    assert r.status_code == 404
    assert "did you mean: bytedance/dreamina-v3.0/image-to-video-1080p" in r.json()["message"]
    r = client.post(RC + "/", json=rc_body())
    assert r.status_code == 404
    assert "bytedance/dreamina-3-0/pro/image-to-video" in r.json()["error"]["message"]
