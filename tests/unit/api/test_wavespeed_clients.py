"""Third-party WaveSpeed clients work unchanged: the wavespeed-mcp server's extra inputs
are ignored and named back, `webhook_url` in the body is a webhook, the balance reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from i2v.api.account import UNLIMITED_BALANCE
from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, RC_ROUTE, receiver, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()
# What wavespeed-mcp (0.1.27) sends with every image-to-video call, whatever the model.
MCP_EXTRAS: dict[str, Any] = {
    "negative_prompt": "",
    "loras": [],
    "size": "832*480",
    "num_inference_steps": 30,
    "guidance_scale": 5.0,
    "flow_shift": 3.0,
}
STEPS_ROUTE = "test/steps"  # a route that takes negative_prompt and num_inference_steps
HEADER = "X-I2V-Ignored-Inputs"


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a slow push in", "image": IMAGE, "seed": 3, **fields}


def test_mcp_inputs_are_ignored_and_named(start_api: Callable[..., InProcess]) -> None:
    api = start_api(allow_webhooks=["127.0.0.1"], webhook_poll_seconds=0.05)
    client = api.client()
    with receiver() as hook:
        r = client.post(f"/api/v3/{FAKE_ROUTE}", json=body(**MCP_EXTRAS, webhook_url=hook.url))
        assert r.status_code == 200, r.text
        assert r.headers[HEADER] == (
            "flow_shift, guidance_scale, loras, negative_prompt, num_inference_steps, size"
        )
        pid = r.json()["data"]["id"]
        assert wait_done(client, pid)["status"] == "completed"
        _headers, sent = hook.wait_for(1)[0]
    assert json.loads(sent)["id"] == pid
    # The input echoed back is what the route took: no dropped input, no webhook_url.
    echoed = client.get(f"/api/v3/predictions/{pid}").json()["data"]["input"]
    assert {"prompt", "image", "seed", "duration"} <= set(echoed)
    assert not set(echoed) & {*MCP_EXTRAS, "webhook_url"}


def test_a_body_with_only_declared_inputs_has_no_header(api: InProcess) -> None:
    r = api.client().post(f"/api/v3/{FAKE_ROUTE}", json=body(camera_fixed=True))
    assert r.status_code == 200, r.text
    assert HEADER not in r.headers


def test_declared_inputs_are_still_checked(start_api: Callable[..., InProcess]) -> None:
    api = start_api(
        workers=0,
        routes={
            STEPS_ROUTE: {
                "engine": "fake",
                "resolution": "480p",
                "frames": [9],
                "inputs": ["negative_prompt", "num_inference_steps"],
            }
        },
    )
    client = api.client()
    bad = client.post(f"/api/v3/{STEPS_ROUTE}", json=body(num_inference_steps=0, loras=[]))
    assert bad.status_code == 400
    assert (
        "num_inference_steps: input should be greater than or equal to 1" in (bad.json()["message"])
    )
    wrong_type = client.post(f"/api/v3/{STEPS_ROUTE}", json=body(negative_prompt=7))
    assert wrong_type.status_code == 400
    assert "negative_prompt:" in wrong_type.json()["message"]
    good = client.post(f"/api/v3/{STEPS_ROUTE}", json=body(num_inference_steps=4, size="1*1"))
    assert good.status_code == 200, good.text
    assert good.headers[HEADER] == "size"


def test_strict_inputs_refuses_them(start_api: Callable[..., InProcess]) -> None:
    client = start_api(workers=0, strict_inputs=True).client()
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json=body(loras=[], colour="red"))
    assert r.status_code == 400
    message = r.json()["message"]
    assert "loras: is not an input of this model" in message
    assert "colour: is not an input of this model" in message


def test_runcomfy_dialect_keeps_its_exact_schema(api: InProcess) -> None:
    # RunComfy publishes each model's input schema with its validation rules and
    # documents no lenient mode: an input it does not list stays a 400.
    body = {"prompt": "p", "image_urls": [IMAGE], "loras": []}
    r = api.client().post(f"/v1/models/{RC_ROUTE}", json=body)
    assert r.status_code == 400
    assert "loras: is not an input of this model" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "field", "needle"),
    [
        (None, "ftp://example.com/hook", "webhook_url: must be an absolute http(s) URL"),
        ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "webhook_url: differs"),
    ],
)
def test_webhook_url_is_checked(
    start_api: Callable[..., InProcess], query: str | None, field: str, needle: str
) -> None:
    client = start_api(workers=0).client()
    params = {"webhook": query} if query else {}
    r = client.post(f"/api/v3/{FAKE_ROUTE}", params=params, json=body(webhook_url=field))
    assert r.status_code == 400
    assert needle in r.json()["message"]


def test_the_same_webhook_twice_is_one(start_api: Callable[..., InProcess]) -> None:
    client = start_api(workers=0).client()
    hook = "http://127.0.0.1:9/hook"
    r = client.post(f"/api/v3/{FAKE_ROUTE}", params={"webhook": hook}, json=body(webhook_url=hook))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/api/v3/balance", "/api/v3/account/balance"])
def test_balance(api: InProcess, path: str) -> None:
    r = api.client().get(path)
    assert r.status_code == 200
    assert r.json() == {
        "code": 200,
        "message": "success",
        "data": {"balance": UNLIMITED_BALANCE, "currency": "USD"},
    }
    assert api.client(key="not-a-key").get(path).status_code == 401
