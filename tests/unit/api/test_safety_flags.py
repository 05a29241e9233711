"""has_nsfw_contents through the API: the worker checks outputs unless the request opts out."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx

from inprocess import InProcess
from photos import photo_bytes
from service_api import FAKE_ROUTE, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE, **body})
    assert r.status_code == 200, r.text
    data = wait_done(client, r.json()["data"]["id"])
    assert data["status"] == "completed", data
    return data


def test_flags_reach_the_client_and_a_request_can_skip_the_check(
    start_api: Callable[..., InProcess],
) -> None:
    api = start_api(safety_checker="flag-all")
    client = api.client()
    flagged = finished(client, {})
    assert flagged["has_nsfw_contents"] == [True]
    assert api.client(None).get(flagged["outputs"][0]).status_code == 200  # still delivered
    skipped = finished(client, {"enable_safety_checker": False})
    assert skipped["has_nsfw_contents"] == [False]


def test_a_deployment_can_turn_the_check_off(start_api: Callable[..., InProcess]) -> None:
    api = start_api(safety_checker="off")
    assert finished(api.client(), {})["has_nsfw_contents"] == [False]


def test_the_default_checker_passes_an_ordinary_photo(start_api: Callable[..., InProcess]) -> None:
    """`auto`, as `i2v serve` starts: the real NudeNet checker where the extra is installed."""
    api = start_api(safety_checker="auto")
    assert finished(api.client(), {})["has_nsfw_contents"] == [False]
