"""Media routes: downloads and uploads behind the signed links of `i2v.dialects.links`,
and WaveSpeed's upload API that hands those links out."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from fastapi import APIRouter, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from i2v.api.deps import BaseUrlDep, OwnerDep, ServicesDep, read
from i2v.api.errors import error_response
from i2v.api.limits import BINARY_UPLOAD_PATH
from i2v.api.ranges import Unsatisfiable, byte_range
from i2v.api.schemas import UploadTicketBody
from i2v.api.services import Services
from i2v.dialects import links
from i2v.dialects.links import MEDIA_PREFIX, media_type
from i2v.dialects.wavespeed import envelope
from i2v.domain.errors import (
    Expired,
    InputError,
    NotFound,
    PayloadTooLarge,
    StorageUnavailable,
)
from i2v.storage.base import Storage
from i2v.storage.keys import UPLOAD_ID, prediction_of, upload_id, upload_key, upload_prefix
from i2v.storage.signing import UrlSigner

# Uploaded bytes are served back from our origin: never let a browser sniff them
# into HTML, and sandbox them if it tries.
SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cache-Control": "private, max-age=3600",
}

log = logging.getLogger(__name__)
router = APIRouter()


@router.get(
    MEDIA_PREFIX + "{key:path}",
    tags=["media"],
    summary="Download a media object through its signed URL (no API key)",
)
# HEAD answers the same, headers only; one OpenAPI operation documents both.
@router.head(MEDIA_PREFIX + "{key:path}", include_in_schema=False)
async def download(key: str, request: Request, services: ServicesDep) -> Response:
    try:
        if not services.signer.verify(key, request.url.query):
            raise NotFound("no such media object, or its link is invalid or expired")
        path = await run_in_threadpool(services.storage.local_path, key)
        if path is not None and path.is_file():
            return _local(request, path, key)
        return await _remote(services.storage, key, request)
    except NotFound:
        # Its link expires with the object, so either way: gone for good if retention
        # deleted it (410), else not found (404).
        await _raise_if_expired(services, key)
        raise


async def _raise_if_expired(services: Services, key: str) -> None:
    """`Expired` when `key` belongs to a prediction whose media retention deleted."""
    prediction_id = prediction_of(key)
    if prediction_id is None:
        return
    store = services.store
    try:
        p = await read(store, lambda: store.predictions.get(prediction_id))
    except NotFound:
        return
    if p.expired_at is not None:
        raise Expired(
            f"this media object expired: the outputs and inputs of prediction {p.id} were"
            f" deleted at {p.expired_at.isoformat(timespec='seconds')}, as the server keeps"
            " them only for a while after a prediction finishes"
        )


@router.put(
    MEDIA_PREFIX + "{key:path}",
    tags=["media"],
    summary="Upload bytes to a ticket's signed PUT URL (no API key): exactly its size, once",
)
async def put(key: str, request: Request, services: ServicesDep) -> dict[str, Any]:
    if not links.put_allowed(services.signer, key, request.url.query):
        raise NotFound("no such upload ticket, or its link is invalid or expired")
    uploads = services.store.uploads
    upload = await run_in_threadpool(uploads.start_write, key)  # one PUT: a second is 409
    try:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) != upload.size:
            raise _wrong_size(upload.size, int(declared))  # before reading a byte
        with tempfile.TemporaryDirectory(prefix="i2v-upload-") as tmp:
            path = Path(tmp) / "body"
            size = 0
            with path.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > upload.size:
                        raise _wrong_size(upload.size, None)
                    out.write(chunk)
            if size != upload.size:
                raise _wrong_size(upload.size, size)
            await run_in_threadpool(services.storage.put_file, key, path)
    except BaseException:
        # Nothing stored: the ticket takes a PUT again (even if this one was cancelled).
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(uploads.write_failed, key)
        raise
    return envelope({"id": upload_id(key), "size": size})


def _wrong_size(declared: int, got: int | None) -> InputError:
    return InputError(
        f"the upload ticket declared {declared} bytes; a PUT must send exactly that many, got"
        f" {'more' if got is None else got}",
        field="size",
    )


@router.post(
    BINARY_UPLOAD_PATH,
    tags=["WaveSpeed v3"],
    summary="Upload a file (multipart field `file`); returns its download_url",
)
async def upload_binary(
    file: UploadFile, services: ServicesDep, owner: OwnerDep, base_url: BaseUrlDep
) -> dict[str, Any]:
    key = upload_key(file.filename or "upload")
    # The form parser spooled the part to a temporary file; it goes on to storage in chunks,
    # never whole in memory.
    size = await run_in_threadpool(_spooled_size, file.file)
    _check_upload_size(services.settings.max_upload_bytes, size, "file")
    await _record(services, key, owner=owner, size=size, written=True, field="file")
    try:
        await run_in_threadpool(_store_spooled, services.storage, key, file.file)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(services.store.uploads.deleted, [key])
        raise
    return envelope({"type": links.kind(key), **_download(base_url, services.signer, key, size)})


async def _record(
    services: Services, key: str, *, owner: str, size: int, written: bool, field: str
) -> None:
    """Record the upload as `owner`'s, within its quota; it expires when unused for a day."""
    quota = services.settings.upload_quota_bytes or None
    record = partial(
        services.store.uploads.record,
        key,
        owner=owner,
        size=size,
        written=written,
        quota=quota,
        field=field,
    )
    await run_in_threadpool(record)


def _spooled_size(source: BinaryIO) -> int:
    source.seek(0, os.SEEK_END)
    return source.tell()


def _store_spooled(storage: Storage, key: str, source: BinaryIO) -> int:
    """Copy `source` to a file in 1 MiB chunks and put that file at `key`; its size."""
    with tempfile.TemporaryDirectory(prefix="i2v-upload-") as tmp:
        path = Path(tmp) / "body"
        source.seek(0)
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        size = path.stat().st_size
        storage.put_file(key, path)  # may move the file away
        return size


@router.post(
    "/api/v3/media/uploads",
    tags=["WaveSpeed v3"],
    summary="Create an upload ticket: PUT the bytes to upload.url, then use download_url",
)
async def upload_ticket(
    body: UploadTicketBody, services: ServicesDep, owner: OwnerDep, base_url: BaseUrlDep
) -> dict[str, Any]:
    _check_upload_size(services.settings.max_upload_bytes, body.size, "size")
    key = upload_key(body.filename)
    # The declared size counts against the quota now, and is the size the PUT must send.
    await _record(services, key, owner=owner, size=body.size, written=False, field="size")
    signer = services.signer
    headers = {"Content-Type": body.content_type} if body.content_type else {}
    upload = {"method": "PUT", "url": links.put_url(base_url, signer, key), "headers": headers}
    return envelope({"upload": upload, **_download(base_url, signer, key, body.size)})


@router.delete(
    "/api/v3/media/uploads/{id}",
    tags=["WaveSpeed v3"],
    summary="Delete one of this key's uploads by its id (its bytes and its quota share)",
)
async def delete_upload(id: str, services: ServicesDep, owner: OwnerDep) -> dict[str, Any]:
    uploads = services.store.uploads
    if not UPLOAD_ID.fullmatch(id):
        raise NotFound("no such upload of this API key (deleted, expired, or never made)")
    upload = await run_in_threadpool(partial(uploads.owned, upload_prefix(id), owner=owner))
    # The object first, then the row: a crash in between leaves the row, and the sweeper
    # deletes both later; the reverse could lose track of the object.
    await run_in_threadpool(services.storage.delete, upload.key)
    await run_in_threadpool(uploads.deleted, [upload.key])
    return envelope({"id": id, "deleted": True})


def _download(base_url: str, signer: UrlSigner, key: str, size: int) -> dict[str, Any]:
    """Where an upload can be read once its bytes are in, and its id (to delete it by)."""
    return {
        "id": upload_id(key),
        "download_url": links.url(base_url, signer, key),
        "filename": Path(key).name,
        "size": size,
    }


def _check_upload_size(limit: int, size: int, field: str) -> None:
    if size > limit:
        raise PayloadTooLarge(f"must be at most {limit} bytes, got {size}", field=field)


def _local(request: Request, path: Path, key: str) -> Response:
    """A local file; a range is checked by the same rules as a remote one, so a refusal is
    a 416 in the envelope, and a Range header we ignore is not Starlette's plain 400."""
    header = request.headers.get("range")
    try:
        span = byte_range(header, path.stat().st_size)
    except Unsatisfiable:
        return range_refused(request, path.stat().st_size, dict(SAFE_HEADERS))
    kind = FileResponse if header is None or span is not None else _WholeFile
    return kind(path, media_type=media_type(key), headers=SAFE_HEADERS)


class _WholeFile(FileResponse):
    """The whole file, whatever Range header came (one we do not follow)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def range_refused(request: Request, size: int, headers: dict[str, str]) -> Response:
    """416 in the dialect's envelope, with `Content-Range: bytes */size` (RFC 9110)."""
    response = error_response(
        request, 416, f"range: {request.headers.get('range')!r} is outside the {size} bytes"
    )
    response.headers.update({**headers, "Content-Range": f"bytes */{size}"})
    return response


async def _remote(storage: Storage, key: str, request: Request) -> Response:
    """An object from remote storage, streamed through, honouring a single byte range."""
    size = await run_in_threadpool(storage.size, key)
    headers = {**SAFE_HEADERS, "Accept-Ranges": "bytes"}
    try:
        span = byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return range_refused(request, size, headers)
    start, end = span or (0, size)
    headers["Content-Length"] = str(end - start)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    status = 206 if span is not None else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type(key))
    chunks = await run_in_threadpool(storage.read, key, start, end)
    return StreamingResponse(
        _until_failure(chunks, key), status, headers=headers, media_type=media_type(key)
    )


def _until_failure(chunks: Iterator[bytes], key: str) -> Iterator[bytes]:
    """`chunks`, ending where storage fails mid-stream. The status line is sent by then, so
    no error answer is possible: the body ends short of its Content-Length, which tells
    the client it is incomplete, and the server logs one line instead of a traceback."""
    try:
        yield from chunks
    except (StorageUnavailable, NotFound, OSError) as exc:
        log.warning("media %s: storage failed mid-stream, response cut short: %s", key, exc)
