"""has_nsfw_contents end to end: the worker checks outputs unless the request opts out.
(Every other service test runs the real NudeNet checker on ordinary photos: all False.)"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from photos import photo_bytes
from server import FAKE_ROUTE, Server, fake_catalog, wait_done

IMAGE = base64.b64encode(photo_bytes()).decode()


def finished(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE, **body})
    assert r.status_code == 200, r.text
    data = wait_done(client, r.json()["data"]["id"])
    assert data["status"] == "completed", data
    return data


def test_flags_reach_the_client_and_a_request_can_skip_the_check(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(
        catalog=fake_catalog(tmp_path / "catalog.toml"),
        extra_env={"I2V_SAFETY_CHECKER": "flag-all"},
    )
    with server.client() as client:
        flagged = finished(client, {})
        assert flagged["has_nsfw_contents"] == [True]
        assert httpx.get(flagged["outputs"][0]).status_code == 200  # flagged, still delivered
        skipped = finished(client, {"enable_safety_checker": False})
        assert skipped["has_nsfw_contents"] == [False]


def test_a_deployment_can_turn_the_check_off(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    server = start_server(
        catalog=fake_catalog(tmp_path / "catalog.toml"), extra_env={"I2V_SAFETY_CHECKER": "off"}
    )
    with server.client() as client:
        assert finished(client, {})["has_nsfw_contents"] == [False]
