"""create_app: the ASGI application, from services built by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import i2v
from i2v.api import errors, media, runcomfy, wavespeed
from i2v.api.auth import KeyRing
from i2v.api.deps import base_url_getter, owner_dependency
from i2v.api.limits import BodyLimit
from i2v.api.services import Services

DESCRIPTION = """Self-hosted image-to-video. Speaks the **WaveSpeed v3** (`/api/v3/...`) and
**RunComfy** (`/v1/...`) APIs: point existing clients at this server's base URL.
Every API route needs `Authorization: Bearer <key>`; media URLs are signed and need none."""


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Webhooks go out from API processes: they render the payload as the API does.
        sender = services.webhooks
        task = asyncio.create_task(sender.run()) if sender is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="i2v", version=i2v.__version__, description=DESCRIPTION, lifespan=lifespan)
    keys = KeyRing(services.settings.api_keys, services.store)
    owner, base_url = owner_dependency(keys), base_url_getter(services.settings)
    app.include_router(media.router(services, owner, base_url))
    app.include_router(wavespeed.router(services, owner, base_url))
    app.include_router(runcomfy.router(services, owner, base_url))
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_body=services.settings.max_body_bytes,
        max_upload=services.settings.max_upload_bytes,
    )

    @app.get("/healthz", tags=["service"], summary="Liveness and queue depth")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "queued": await run_in_threadpool(services.store.queue_length)}

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        """The playground page: a client of the public API like any other, in the browser."""
        return FileResponse(PAGE, headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _declare_bearer_auth(app)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return errors.error_response(request, 404, f"no route {request.method} {request.url.path}")

    return app


# The page lives beside the static folder, not in it: served only at /, with its headers.
PAGE = Path(__file__).resolve().parent / "playground.html"
STATIC = Path(__file__).resolve().parent / "static"
# The page runs only its own script and talks only to this server; videos may come from
# the public URL's host.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' http: https:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
API_PREFIXES = ("/api/", "/v1/")  # every route under these takes the owner dependency


def _declare_bearer_auth(app: FastAPI) -> None:
    """Say in the OpenAPI document which operations need `Authorization: Bearer`, so that
    /docs offers an Authorize button and generated clients send the key.

    The key is checked by a plain dependency rather than FastAPI's `HTTPBearer`, whose extra
    dependency level is paid on every poll; the document is amended here instead."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "an i2v API key"}
        }
        for path, operations in spec["paths"].items():
            if path.startswith(API_PREFIXES):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
