"""`GET /metrics` (Prometheus text format, no key: scrapers are configured by operators,
and the figures name routes, never keys or predictions), and the middleware that counts
every HTTP request by route template, method and status, with its latency."""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from i2v.api.deps import ServicesDep
from i2v.metrics import Metrics
from i2v.metrics.registry import CONTENT_TYPE

UNMATCHED = "<unmatched>"  # the route label of requests no route took (404s): bounded

routes = APIRouter(tags=["service"])


@routes.get("/metrics", summary="Prometheus metrics of this process")
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE)


class RequestMetrics:
    """ASGI middleware: `i2v_http_requests_total` and `i2v_http_request_duration_seconds`.

    The route label is the matched route's template (`/api/v3/predictions/{prediction_id}
    /result`), never the raw path, so ids do not make a series each."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # A route's full template never changes: work it out once per route, not per request.
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = self._templates.get(id(route)) if route is not None else None
            if template is None:
                template = route_template(scope)
                if route is not None and template != UNMATCHED:
                    self._templates[id(route)] = template
            method = scope["method"]
            self.metrics.http_requests.labels(template, method, str(status)).inc()
            self.metrics.http_seconds.labels(template, method).observe(
                time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """The template of the route that took the request, with the prefixes of the routers
    it was included through; `UNMATCHED` when none did.

    FastAPI keeps an included route's own path (`/predictions/{prediction_id}/result`),
    without its routers' prefixes, in `scope["route"]`; the prefix is what precedes the
    part of the request path that the route's own pattern matches."""
    route = scope.get("route")
    pattern = getattr(route, "path_regex", None)
    template = getattr(route, "path_format", None)
    if pattern is None or not isinstance(template, str):
        return UNMATCHED
    path: str = scope.get("path", "")
    start = 0
    while start != -1:
        if pattern.match(path[start:]):
            return path[:start] + template
        start = path.find("/", start + 1)
    return template


def install(app: FastAPI, metrics: Metrics) -> None:
    """Serve /metrics and count requests; call last in `create_app`, so that the
    middleware is the outermost and sees every answer (413s of the body limit too)."""
    app.include_router(routes)
    app.add_middleware(RequestMetrics, metrics=metrics)
