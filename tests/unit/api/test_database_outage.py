"""A database that does not answer is a retryable 503 in the dialect's envelope, never a 500:
for a prediction's read, a submit and the key check alike."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from i2v.domain.errors import DatabaseUnavailable
from inprocess import InProcess
from photos import photo_bytes
from service_api import API_KEY, FAKE_ROUTE

IMAGE = base64.b64encode(photo_bytes()).decode()
DOWN = "the database did not answer: connection refused"


def _down(*args: Any, **kwargs: Any) -> Any:
    raise DatabaseUnavailable(DOWN)


@pytest.fixture
def api(start_api: Callable[..., InProcess]) -> InProcess:
    return start_api(workers=0)


def test_a_read_during_an_outage_is_a_503_in_each_envelope(
    api: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = api.client(API_KEY)
    monkeypatch.setattr(api.store.predictions, "get", _down)
    monkeypatch.setattr(api.store.predictions, "get_placed", _down)
    r = client.get("/api/v3/predictions/abc/result")
    assert r.status_code == 503
    assert r.json()["code"] == 503
    assert DOWN in r.json()["message"]
    r = client.get("/v1/requests/abc/status")
    assert r.status_code == 503
    assert DOWN in r.text


def test_a_submit_during_an_outage_is_a_503(
    api: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.store.queue, "submit", _down)
    r = api.client(API_KEY).post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": IMAGE})
    assert r.status_code == 503
    assert DOWN in r.json()["message"]


def test_a_key_that_cannot_be_checked_is_a_503_not_a_401(
    api: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.store.keys, "find", _down)
    r = api.client("a-key-the-server-has-not-seen").get("/api/v3/predictions/abc/result")
    assert r.status_code == 503
    assert DOWN in r.json()["message"]
