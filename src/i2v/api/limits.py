"""Request body caps, enforced while the body streams in (Content-Length is not trusted)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.api.errors import error_response

UPLOAD_PATHS = ("/api/v3/media/", "/media/")


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.max_upload if path.startswith(UPLOAD_PATHS) else self.max_body
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            message = f"body: must be at most {limit} bytes, got {int(declared)}"
            response = error_response(Request(scope), 413, message)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes through FastAPI's body parsing untouched
                    # and reaches our handler, which answers in the dialect's envelope.
                    raise HTTPException(413, f"body: must be at most {limit} bytes, got more")
            return message

        await self.app(scope, counted, send)
