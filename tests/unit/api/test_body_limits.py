"""Per-route body caps, the body idle deadline, and the key checked before the body."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message

from i2v.api import limits
from i2v.api.auth import KeyRing
from i2v.api.gate import OWNER_STATE, Gate
from i2v.api.limits import BINARY_UPLOAD_PATH, SMALL_BODY, BodyCaps, BodyLimit
from i2v.intake.source import IMAGE_MAX_CHARS


class FakeRoute:
    def __init__(self, path: str, inputs: tuple[str, ...] = ()) -> None:
        self.path = path
        self.inputs = inputs


def caps(max_body: int = 32 * 2**20) -> BodyCaps:
    catalog: Any = [FakeRoute("acme/video"), FakeRoute("acme/two-frames", ("last_image",))]
    return BodyCaps.build(
        catalog, ("/api/v3/", "/v1/models/"), max_body=max_body, max_upload=64 * 2**20
    )


def test_each_route_has_its_cap() -> None:
    c = caps()
    one, two = IMAGE_MAX_CHARS + SMALL_BODY, 2 * IMAGE_MAX_CHARS + SMALL_BODY
    assert c.for_request("POST", "/api/v3/acme/video") == one
    assert c.for_request("POST", "/v1/models/acme/video") == one
    assert c.for_request("POST", "/api/v3/acme/two-frames") == two
    assert c.for_request("POST", "/api/v3/media/uploads") == SMALL_BODY  # a ticket
    assert c.for_request("POST", "/api/v3/predictions") == SMALL_BODY
    assert c.for_request("POST", BINARY_UPLOAD_PATH) == 64 * 2**20 + limits.FORM_OVERHEAD
    assert c.for_request("PUT", "/media/uploads/x.png") == 64 * 2**20
    assert c.for_request("GET", "/api/v3/acme/video") == SMALL_BODY
    # A mistyped model of a known owner still gets a submit's cap: its 404 names the model.
    assert c.for_request("POST", "/api/v3/acme/vide") == two
    assert c.for_request("POST", "/api/v3/acme/video/") == two


def test_the_setting_is_an_upper_bound() -> None:
    assert caps(max_body=1000).for_request("POST", "/api/v3/acme/video") == 1000


async def run_app(app: Any, scope: dict[str, Any], messages: list[Message]) -> list[Message]:
    sent: list[Message] = []
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a client that stopped sending
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
    }


def test_a_body_that_stops_arriving_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "BODY_IDLE_TIMEOUT_S", 0.05)
    caught: list[BaseException] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        try:
            while (await receive()).get("more_body"):
                pass
        except Exception as exc:  # the HTTPException the app's handler would answer
            caught.append(exc)

    first = {"type": "http.request", "body": b"{", "more_body": True}
    asyncio.run(
        run_app(BodyLimit(reader, caps=caps()), http_scope("POST", "/api/v3/x", []), [first])
    )
    (exc,) = caught
    assert getattr(exc, "status_code", None) == 408
    assert "no bytes arrived for 0.05 s" in str(getattr(exc, "detail", ""))


def test_after_the_body_receive_has_no_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sync mode and event streams wait on receive() for the disconnect: no 408 there.
    monkeypatch.setattr(limits, "BODY_IDLE_TIMEOUT_S", 0.01)
    got: list[Message] = []

    async def waiter(scope: Any, receive: Any, send: Any) -> None:
        got.append(await receive())
        got.append(await receive())

    body = {"type": "http.request", "body": b"{}", "more_body": False}
    gone = {"type": "http.disconnect"}

    async def slow_disconnect() -> None:
        messages = [body]

        async def receive() -> Message:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(0.1)  # ten times the deadline
            return gone

        async def send(message: Message) -> None:
            pass

        await BodyLimit(waiter, caps=caps())(http_scope("POST", "/api/v3/x", []), receive, send)

    asyncio.run(slow_disconnect())
    assert [m["type"] for m in got] == ["http.request", "http.disconnect"]


class Keys:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def known_owner(self, header: str | None) -> str | None:
        self.asked.append(header)
        return KeyRing._digest(header) if header == "Bearer good" else None

    def owner(self, header: str | None) -> str:
        from i2v.domain.errors import AuthError

        KeyRing._digest(header)  # missing or malformed: its own message
        raise AuthError("invalid API key")


def test_the_gate_answers_401_without_reading_the_body() -> None:
    read: list[bool] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        read.append(True)

    async def never(*_: Any) -> Message:
        raise AssertionError("the gate read the body")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    gate = Gate(route, keys=Keys())  # type: ignore[arg-type]
    for headers in ([], [(b"authorization", b"Bearer bad")]):
        sent.clear()
        asyncio.run(gate(http_scope("POST", "/v1/models/a/b", headers), never, send))
        assert sent[0]["status"] == 401
        assert b'"code":401001' in sent[1]["body"]
    assert read == []


def test_the_gate_passes_the_owner_on() -> None:
    seen: list[Any] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("state", {}).get(OWNER_STATE))

    async def never(*_: Any) -> Message:
        raise AssertionError("unused")

    async def send(message: Message) -> None:
        pass

    gate = Gate(route, keys=Keys())  # type: ignore[arg-type]
    scope = http_scope("POST", "/api/v3/a", [(b"authorization", b"Bearer good")])
    asyncio.run(gate(scope, never, send))
    assert seen == [KeyRing._digest("Bearer good")]
    # Outside the API prefixes (media links, pages, health) the gate does not ask.
    asyncio.run(gate(http_scope("GET", "/media/x", []), never, send))
    assert seen[1:] == [None]
