"""Request body caps per route, enforced while the body streams in (Content-Length is not
trusted, and a body is never read whole before its cap is known).

- a submit: what its image fields can need inline (`IMAGE_MAX_CHARS` each: 6.4 MB for the
  4.7 MB image cap; two with `last_image`) plus 64 kB for the other fields, and never more
  than `max_body_bytes`;
- an upload (a ticket's signed PUT, the multipart binary upload): `max_upload_bytes`;
- anything else (tickets, history, delete, cancel...): 64 kB;
- a POST that is no submit route but names a catalog model's owner (`bytedance/...`: a
  mistyped or stray-slashed model path, whose 404 names the close matches without reading
  the body): the largest submit cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.api.errors import error_response
from i2v.dialects.links import MEDIA_PREFIX
from i2v.domain.catalog import Catalog
from i2v.intake.source import IMAGE_MAX_CHARS

SMALL_BODY = 64 * 1024
# A body must keep arriving: at most this long between two chunks (a client trickling a
# byte at a time holds a connection and a task; 408 frees them).
BODY_IDLE_TIMEOUT_S = 30.0
# Multipart boundaries and part headers around an uploaded file.
FORM_OVERHEAD = 64 * 1024
BINARY_UPLOAD_PATH = "/api/v3/media/upload/binary"


@dataclass(frozen=True)
class BodyCaps:
    """The byte cap of a request's body, by method and path."""

    submits: Mapping[str, int]  # submit path -> its cap
    owners: tuple[str, ...]  # prefix + "owner/" of every catalog model
    upload: int

    @classmethod
    def build(
        cls, catalog: Catalog, submit_prefixes: Iterable[str], *, max_body: int, max_upload: int
    ) -> BodyCaps:
        """Caps for each catalog route's submit path under each dialect's prefix."""
        submits: dict[str, int] = {}
        owners: set[str] = set()
        for route in catalog:
            images = 2 if "last_image" in route.inputs else 1
            cap = min(max_body, images * IMAGE_MAX_CHARS + SMALL_BODY)
            for prefix in submit_prefixes:
                submits[prefix + route.path] = cap
                owners.add(prefix + route.path.split("/", 1)[0] + "/")
        return cls(submits, tuple(sorted(owners)), max_upload)

    def for_request(self, method: str, path: str) -> int:
        if method == "PUT" and path.startswith(MEDIA_PREFIX):
            return self.upload
        if method != "POST":
            return SMALL_BODY
        if path == BINARY_UPLOAD_PATH:
            return self.upload + FORM_OVERHEAD
        if path in self.submits:
            return self.submits[path]
        if path.startswith(self.owners):
            return max(self.submits.values())
        return SMALL_BODY


class BodyLimit:
    """Answers 413 (in the dialect's envelope) for a body over its route's cap: at once when
    Content-Length says so, else as soon as the streamed bytes pass it; 408 when the body
    stops arriving for `BODY_IDLE_TIMEOUT_S`."""

    def __init__(self, app: ASGIApp, *, caps: BodyCaps) -> None:
        self.app = app
        self.caps = caps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.caps.for_request(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            message = f"body: must be at most {limit} bytes, got {int(declared)}"
            response = error_response(Request(scope), 413, message)
            await response(scope, receive, send)
            return
        seen = 0
        complete = False

        async def counted() -> Message:
            nonlocal seen, complete
            if complete:  # after the body, receive() waits for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout(BODY_IDLE_TIMEOUT_S):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408, f"body: no bytes arrived for {BODY_IDLE_TIMEOUT_S:g} s"
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # An HTTPException passes through FastAPI's body parsing untouched
                    # and reaches our handler, which answers in the dialect's envelope.
                    raise HTTPException(413, f"body: must be at most {limit} bytes, got more")
            return message

        await self.app(scope, counted, send)
