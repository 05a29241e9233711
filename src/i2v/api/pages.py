"""HTML pages: the API reference at /docs and /redoc, drawn by our own script from
/openapi.json (FastAPI's pages load Swagger UI and ReDoc from a CDN, with no integrity
check, on the origin where the playground keeps its key), and the policy every HTML
response carries.

(`swagger-ui-bundle`, the PyPI package that ships Swagger UI, bundles 4.15, which cannot
render the OpenAPI 3.1 document FastAPI writes; any OpenAPI viewer can load /openapi.json.)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.api.gate import API_PREFIXES

# Our pages run only scripts and styles served from this origin, and are never framed.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' http: https:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
DOCS_PAGE = Path(__file__).resolve().parent / "static" / "docs.html"  # packaged with static/

routes = APIRouter()


@routes.get("/docs", include_in_schema=False)
@routes.get("/redoc", include_in_schema=False)
async def docs() -> FileResponse:
    """The API reference page (its script draws /openapi.json)."""
    return FileResponse(DOCS_PAGE, headers=PAGE_HEADERS)


class PagePolicy:
    """Gives every text/html response that has none the page policy (`PAGE_HEADERS`):
    a page added later, or a framework's, cannot ship without a CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # API answers are JSON: the hot poll path skips the header check altogether.
        if scope["type"] != "http" or scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in PAGE_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, sending)
