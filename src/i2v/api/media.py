"""Media: capability URLs for inputs, uploads and outputs, and the routes behind them.

Media URLs work with no API key (clients download them with plain HTTP, and the
WaveSpeed SDK PUTs uploads with only the ticket's headers) but only with a valid
signature: knowing a prediction id is never enough. GET and PUT capabilities are
signed differently, so a download URL cannot be used to overwrite the object.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import APIRouter, Depends, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from i2v.api.ranges import Unsatisfiable, byte_range
from i2v.api.schemas import UploadTicketBody
from i2v.api.services import Services
from i2v.domain.errors import NotFound, PayloadTooLarge
from i2v.storage.base import Storage
from i2v.storage.signing import UrlSigner

MEDIA_PREFIX = "/media/"
SERVED_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
}
# Uploaded bytes are served back from our origin: never let a browser sniff them
# into HTML, and sandbox them if it tries.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cache-Control": "private, max-age=3600",
}
_PUT = "PUT "


async def _remote(storage: Storage, key: str, request: Request) -> Response:
    """An object from remote storage, streamed through, honouring a single byte range."""
    size = await run_in_threadpool(storage.size, key)
    headers = {**SAFE_HEADERS, "Accept-Ranges": "bytes"}
    try:
        span = byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    status = 206 if span is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type(key))
    chunks = await run_in_threadpool(storage.read, key, start, end)
    return StreamingResponse(chunks, status, headers=headers, media_type=media_type(key))


def url(base_url: str, signer: UrlSigner, key: str) -> str:
    return f"{base_url}{MEDIA_PREFIX}{quote(key)}?{signer.sign(key)}"


def put_url(base_url: str, signer: UrlSigner, key: str) -> str:
    return f"{base_url}{MEDIA_PREFIX}{quote(key)}?{signer.sign(_PUT + key)}"


def own_key(signer: UrlSigner, value: str) -> str | None:
    """The storage key behind one of our own signed media URLs, whatever host it names."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None  # not a URL at all; the fetcher names the problem
    if parts.scheme not in ("http", "https") or not parts.path.startswith(MEDIA_PREFIX):
        return None
    key = unquote(parts.path[len(MEDIA_PREFIX) :])
    return key if signer.verify(key, parts.query) else None


def upload_key(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename).name).strip("._") or "upload"
    return f"uploads/{uuid.uuid4().hex}/{stem[-100:]}"


def media_type(key: str) -> str:
    return SERVED_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


def kind(key: str) -> str:
    return media_type(key).split("/")[0] if key else "file"


def router(services: Services, owner_dependency: Any, base_url: Any) -> APIRouter:
    r = APIRouter()
    storage, signer, settings = services.storage, services.signer, services.settings

    @r.api_route(
        MEDIA_PREFIX + "{key:path}",
        methods=["GET", "HEAD"],
        tags=["media"],
        summary="Download a media object through its signed URL (no API key)",
    )
    async def download(key: str, request: Request) -> Response:
        if not signer.verify(key, request.url.query):
            raise NotFound("no such media object, or its link is invalid or expired")
        path = await run_in_threadpool(storage.local_path, key)
        if path is not None and path.is_file():
            return FileResponse(path, media_type=media_type(key), headers=SAFE_HEADERS)
        return await _remote(storage, key, request)

    @r.put(
        MEDIA_PREFIX + "{key:path}",
        tags=["media"],
        summary="Upload bytes to a ticket's signed PUT URL (no API key)",
    )
    async def put(key: str, request: Request) -> dict[str, Any]:
        query = dict(request.query_params)
        if not signer.check(_PUT + key, exp=query.get("exp"), sig=query.get("sig")):
            raise NotFound("no such upload ticket, or its link is invalid or expired")
        with tempfile.TemporaryDirectory(prefix="i2v-upload-") as tmp:
            path = Path(tmp) / "body"
            size = 0
            with path.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise PayloadTooLarge(
                            f"must be at most {settings.max_upload_bytes} bytes, got more",
                            field="body",
                        )
                    out.write(chunk)
            await run_in_threadpool(storage.put_file, key, path)
        return {"code": 200, "message": "success", "data": {"size": size}}

    @r.post(
        "/api/v3/media/upload/binary",
        tags=["WaveSpeed v3"],
        summary="Upload a file (multipart field `file`); returns its download_url",
    )
    async def upload_binary(
        file: UploadFile, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        key = upload_key(file.filename or "upload")
        size = file.size if file.size is not None else 0
        if size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"must be at most {settings.max_upload_bytes} bytes, got {size}", field="file"
            )
        data = await file.read()
        await run_in_threadpool(storage.put_bytes, key, data)
        return {
            "code": 200,
            "message": "success",
            "data": {
                "type": kind(key),
                "download_url": url(base_url(request), signer, key),
                "filename": Path(key).name,
                "size": len(data),
            },
        }

    @r.post(
        "/api/v3/media/uploads",
        tags=["WaveSpeed v3"],
        summary="Create an upload ticket: PUT the bytes to upload.url, then use download_url",
    )
    async def upload_ticket(
        body: UploadTicketBody, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        if body.size > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"must be at most {settings.max_upload_bytes} bytes, got {body.size}", field="size"
            )
        key = upload_key(body.filename)
        base = base_url(request)
        headers = {"Content-Type": body.content_type} if body.content_type else {}
        return {
            "code": 200,
            "message": "success",
            "data": {
                "upload": {"method": "PUT", "url": put_url(base, signer, key), "headers": headers},
                "download_url": url(base, signer, key),
                "filename": Path(key).name,
                "size": body.size,
            },
        }

    return r
