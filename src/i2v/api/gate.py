"""Authenticate first, then read: the API key is checked from the headers before a route
reads a byte of the body.

FastAPI resolves a route's body before its dependencies, so with the key checked by a
dependency alone, an anonymous client could make the server read, parse and hold a large
body before its 401. This pure ASGI layer sits in front of every route under the API
prefixes (the signed media routes are outside them: their link is their capability) and
answers 401 in the dialect's envelope without calling `receive` at all. The owner it found
is handed to the routes in the request state (`OWNER_STATE`), so the key is looked up once.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from i2v.api.auth import KeyRing
from i2v.api.errors import error_response
from i2v.domain.errors import AuthError, DatabaseUnavailable

API_PREFIXES = ("/api/", "/v1/")  # every route under these needs a key
OWNER_STATE = "i2v_owner"


class Gate:
    def __init__(self, app: ASGIApp, *, keys: KeyRing) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        try:
            owner = self.keys.known_owner(header)
            if owner is None:  # not a configured or recent key: the database decides
                owner = await run_in_threadpool(self.keys.owner, header)
        except AuthError as exc:
            await error_response(Request(scope), 401, exc.message)(scope, receive, send)
            return
        except DatabaseUnavailable as exc:
            # The key cannot be checked: a retryable 503, not a refusal of the key.
            await error_response(Request(scope), 503, exc.message)(scope, receive, send)
            return
        scope.setdefault("state", {})[OWNER_STATE] = owner
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
