"""Uploads are owned and bounded: each belongs to its key and counts against its quota
(413 in the envelope, naming the quota), its owner can delete it, a ticket's PUT must send
exactly the declared size and only once, and a submit that uses it marks it used."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from i2v.api.auth import hash_key
from inprocess import InProcess
from photos import photo_bytes
from service_api import API_KEY, FAKE_ROUTE, OTHER_KEY


def _ticket(client: Any, size: int, name: str = "b.png") -> dict[str, Any]:
    r = client.post("/api/v3/media/uploads", json={"filename": name, "size": size})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts  # no Content-Length: the size is checked as the bytes stream in


def test_ticket_put_must_send_the_declared_size_once(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    anonymous = api.client(None)
    ticket = _ticket(api.client(), 3)
    url = ticket["upload"]["url"]
    for wrong in (
        anonymous.put(url, content=b"ab"),
        anonymous.put(url, content=_chunks(b"ab", b"cd")),
    ):
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["code"] == 400
        assert "size" in wrong.json()["message"]
        assert "declared 3 bytes" in wrong.json()["message"]
    short = anonymous.put(url, content=_chunks(b"a", b"b"))
    assert short.status_code == 400
    # The refused PUTs stored nothing, so the ticket still takes its one PUT.
    assert anonymous.put(url, content=b"abc").status_code == 200
    again = anonymous.put(url, content=b"xyz")
    assert again.status_code == 409, again.text
    assert again.json()["code"] == 409
    assert anonymous.get(ticket["download_url"]).content == b"abc"


def test_quota_per_key_in_the_envelope(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0, upload_quota_bytes=1000)
    client, other = api.client(), api.client(OTHER_KEY)
    first = _ticket(client, 600)
    r = client.post("/api/v3/media/uploads", json={"filename": "c.png", "size": 600})
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["code"] == 413
    assert "quota of 1000 bytes" in body["message"]
    assert "I2V_UPLOAD_QUOTA_BYTES" in body["message"]
    binary = client.post("/api/v3/media/upload/binary", files={"file": ("a.bin", b"x" * 600)})
    assert binary.status_code == 413, binary.text
    assert "quota" in binary.json()["message"]
    _ticket(other, 600)  # another key has its own quota
    # Deleting gives the room back.
    gone = client.delete(f"/api/v3/media/uploads/{first['id']}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["data"] == {"id": first["id"], "deleted": True}
    _ticket(client, 600)


def test_only_the_owner_deletes_and_the_bytes_go(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    anonymous, client, other = api.client(None), api.client(), api.client(OTHER_KEY)
    up = client.post(
        "/api/v3/media/upload/binary", files={"file": ("a.jpg", photo_bytes(), "image/jpeg")}
    ).json()["data"]
    assert anonymous.get(up["download_url"]).status_code == 200
    path = f"/api/v3/media/uploads/{up['id']}"
    refused = other.delete(path)
    assert refused.status_code == 404
    assert refused.json()["data"] is None
    assert anonymous.delete(path).status_code == 401
    assert client.delete("/api/v3/media/uploads/not-an-id").status_code == 404
    assert client.delete(path).status_code == 200
    assert anonymous.get(up["download_url"]).status_code == 404
    assert client.delete(path).status_code == 404


def test_a_deleted_ticket_takes_no_put(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client, anonymous = api.client(), api.client(None)
    ticket = _ticket(client, 3)
    assert client.delete(f"/api/v3/media/uploads/{ticket['id']}").status_code == 200
    assert anonymous.put(ticket["upload"]["url"], content=b"abc").status_code == 404


def test_a_submit_marks_its_upload_used(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    client = api.client()
    up = client.post(
        "/api/v3/media/upload/binary", files={"file": ("a.jpg", photo_bytes(), "image/jpeg")}
    ).json()["data"]
    key = f"uploads/{up['id']}/"
    assert api.store.uploads.owned(key, owner=hash_key(API_KEY)).used_at is None
    r = client.post(f"/api/v3/{FAKE_ROUTE}", json={"prompt": "p", "image": up["download_url"]})
    assert r.status_code == 200, r.text
    assert api.store.uploads.owned(key, owner=hash_key(API_KEY)).used_at is not None


def test_a_client_that_hangs_up_mid_put_is_one_log_line(
    start_api: Callable[..., InProcess], caplog: pytest.LogCaptureFixture
) -> None:
    """No 500 and no traceback for a client gone mid-body; the ticket still takes its PUT."""
    api = start_api(workers=0)
    ticket = _ticket(api.client(), 100)
    url = httpx.URL(ticket["upload"]["url"])
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 10, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO):
        api.portal.call(api.app, scope, receive, send)
    assert "the client disconnected mid-request" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert api.client(None).put(ticket["upload"]["url"], content=b"y" * 100).status_code == 200
