"""The RunComfy Model API dialect: `/v1/models/{model}` and `/v1/requests/{id}/...`.

Result statuses are succeeded|failed|in_queue|in_progress|cancelled; status
endpoint statuses are in_queue (with queue_position)|in_progress|completed|cancelled.
Unlike RunComfy, a running request can be cancelled too: it stops at its next step.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api import deps, events, submission
from i2v.api.deps import with_body
from i2v.api.schemas import runcomfy_body
from i2v.api.services import Services
from i2v.api.webhooks import RUNCOMFY
from i2v.domain.catalog import Route
from i2v.domain.prediction import Prediction
from i2v.store.records import CancelKind


def router(services: Services, owner_dependency: Any, base_url: Any) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["RunComfy"])
    store = services.store

    views = deps.views_getter(services, base_url)

    @r.get(
        "/requests/{request_id}/status", summary="Where a request is: queue position or progress"
    )
    async def status(
        request_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        def read_status() -> dict[str, Any]:
            p, position = store.get_placed(request_id, owner=owner)
            return views(request).runcomfy_status(p, position)

        return await deps.read(store, read_status)

    @r.get(
        "/requests/{request_id}/events",
        summary="Status changes as server-sent events, ending with the result",
        description=events.DESCRIPTION,
        response_class=StreamingResponse,
    )
    async def request_events(
        request_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> StreamingResponse:
        v = views(request)

        async def progress(p: Prediction, place: int | None) -> dict[str, Any]:
            return v.runcomfy_status(p, place)

        async def outcome(p: Prediction) -> dict[str, Any]:
            return v.runcomfy_result(p)

        return await events.stream(store, request_id, owner, progress, outcome)

    @r.get("/requests/{request_id}/result", summary="A request's output, or its current state")
    async def result(
        request_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        p = await deps.read(store, lambda: store.get(request_id, owner=owner))
        return views(request).runcomfy_result(p)

    @r.post(
        "/requests/{request_id}/cancel",
        status_code=202,
        summary="Cancel a request: queued ones at once, running ones at their next step",
    )
    async def cancel(request_id: str, owner: str = Depends(owner_dependency)) -> JSONResponse:
        outcome = await run_in_threadpool(lambda: store.cancel(request_id, owner=owner))
        cancelled = outcome.kind in (CancelKind.CANCELLED, CancelKind.CANCEL_REQUESTED)
        return JSONResponse(
            {
                "request_id": request_id,
                "status": "completed",
                "outcome": "cancelled" if cancelled else "not_cancellable",
            },
            status_code=202,
        )

    for route in services.catalog:
        r.add_api_route(
            "/models/" + route.path,
            with_body(
                _submit_endpoint(services, route, views, owner_dependency), runcomfy_body(route)
            ),
            methods=["POST"],
            summary=route.title or route.path,
            description=f"{route.description}\n\nEngine: `{route.engine}`.",
        )

    @r.post("/models/{model_path:path}", include_in_schema=False)
    async def unknown(model_path: str, owner: str = Depends(owner_dependency)) -> None:
        raise submission.unknown_model(services.catalog, model_path)

    return r


def _submit_endpoint(services: Services, route: Route, views: Any, owner_dependency: Any) -> Any:
    async def submit(
        body: BaseModel, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        fields = body.model_dump()
        v = views(request)
        webhook, webhook_options = submission.webhook_options(
            request.query_params.get("webhook"), RUNCOMFY, v.base_url
        )
        sub = submission.Submission(
            prompt=fields["prompt"],
            image=fields["image_urls"][0],
            image_field="image_urls[0]",
            seed=fields["seed"],
            frames=fields["frames"],
            echo=dict(fields),
            aspect_ratio=fields.get("aspect_ratio"),
            resolution=fields.get("resolution"),
            camera_fixed=fields.get("camera_fixed", False),
            last_image=fields.get("last_image"),
            engine_inputs=submission.engine_inputs(fields),
            options=webhook_options,
            webhook=webhook,
        )
        p = await submission.accept(services, owner, route, sub)
        return {"request_id": p.id, **v.runcomfy_links(p)}

    return submit
