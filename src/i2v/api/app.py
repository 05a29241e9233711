"""create_app: the ASGI application, from services built by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import i2v
from i2v.api import admin, errors, health, media, metrics, pages, runcomfy, wavespeed
from i2v.api.auth import KeyRing
from i2v.api.gate import API_PREFIXES, Gate
from i2v.api.limits import BodyCaps, BodyLimit
from i2v.api.pages import PagePolicy
from i2v.api.services import Services

DESCRIPTION = """Self-hosted image-to-video. Speaks the **WaveSpeed v3** (`/api/v3/...`) and
**RunComfy** (`/v1/...`) APIs: point existing clients at this server's base URL.
Every API route needs `Authorization: Bearer <key>`; media URLs are signed and need none."""


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="i2v",
        version=i2v.__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: ours are `pages`
        redoc_url=None,
    )
    # What the routes' dependencies (`i2v.api.deps`) hand them.
    app.state.services = services
    app.state.keys = KeyRing(services.settings.api_keys, services.store)
    app.include_router(media.router)
    app.include_router(
        wavespeed.router(services.catalog, strict_inputs=services.settings.strict_inputs)
    )
    app.include_router(runcomfy.router(services.catalog))
    app.include_router(health.routes)
    app.include_router(admin.routes)
    app.include_router(_service)
    app.include_router(pages.routes)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _declare_bearer_auth(app)
    caps = BodyCaps.build(
        services.catalog,
        (wavespeed.SUBMIT_PREFIX, runcomfy.SUBMIT_PREFIX),
        max_body=services.settings.max_body_bytes,
        max_upload=services.settings.max_upload_bytes,
    )
    app.add_middleware(BodyLimit, caps=caps)
    app.add_middleware(Gate, keys=app.state.keys)  # outside BodyLimit: the key comes first
    app.add_middleware(PagePolicy)
    app.add_exception_handler(404, _not_found)
    metrics.install(app, services.metrics)  # last: its middleware must be the outermost
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Webhooks go out from API processes, beside the requests (`Services.webhooks`).
    services: Services = app.state.services
    services.decoder.start()
    job = services.webhooks
    task = asyncio.create_task(job.run()) if job is not None else None
    try:
        yield
    finally:
        services.decoder.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_service = APIRouter()


@_service.get("/", include_in_schema=False)
async def playground() -> FileResponse:
    """The playground page: a client of the public API like any other, in the browser."""
    return FileResponse(PAGE, headers=pages.PAGE_HEADERS)


async def _not_found(request: Request, exc: Exception) -> Response:
    return errors.error_response(request, 404, f"no route {request.method} {request.url.path}")


# The page lives beside the static folder, not in it: served only at /, with its headers.
PAGE = Path(__file__).resolve().parent / "playground.html"
STATIC = Path(__file__).resolve().parent / "static"


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
