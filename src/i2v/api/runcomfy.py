"""The RunComfy Model API dialect: `/v1/models/{model}` and `/v1/requests/{id}/...`,
answering with the views of `i2v.dialects.runcomfy`.

Unlike RunComfy, a running request can be cancelled too: it stops at its next step.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api import events, submission
from i2v.api.deps import OwnerDep, ServicesDep, owned, read, views_dependency
from i2v.api.schemas import runcomfy_body
from i2v.api.submission import Submit
from i2v.dialects.runcomfy import RunComfyViews
from i2v.domain.catalog import Catalog
from i2v.domain.prediction import RUNCOMFY, Flags
from i2v.store.records import CancelKind

PREFIX = "/v1"
SUBMIT_PREFIX = PREFIX + "/models/"  # + a catalog route's path

ViewsDep = Annotated[RunComfyViews, Depends(views_dependency(RunComfyViews))]
routes = APIRouter()  # those that do not depend on the catalog, under PREFIX


def router(catalog: Catalog) -> APIRouter:
    """The dialect's routes, with one submit route per catalog model."""
    r = APIRouter(prefix=PREFIX, tags=["RunComfy"])
    r.include_router(routes)
    submission.add_routes(
        r,
        catalog,
        prefix=SUBMIT_PREFIX.removeprefix(PREFIX),
        body=runcomfy_body,
        views=RunComfyViews,
        handle=submit,
    )
    return r


@routes.get(
    "/requests/{request_id}/status", summary="Where a request is: queue position or progress"
)
async def status(
    request_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> dict[str, Any]:
    store = services.store
    p, position = await read(store, lambda: store.predictions.get_placed(request_id, owner=owner))
    return views.progress(p, position)


@events.route(
    routes,
    "/requests/{request_id}/events",
    "Status changes as server-sent events, ending with the result",
)
async def request_events(
    request_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> StreamingResponse:
    return await events.stream(services.store, request_id, owner, views)


@routes.get("/requests/{request_id}/result", summary="A request's output, or its current state")
async def result(
    request_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> dict[str, Any]:
    return views.result(await owned(services, request_id, owner))


@routes.post(
    "/requests/{request_id}/cancel",
    status_code=202,
    summary="Cancel a request: queued ones at once, running ones at their next step",
)
async def cancel(request_id: str, services: ServicesDep, owner: OwnerDep) -> JSONResponse:
    store = services.store
    outcome = await run_in_threadpool(lambda: store.queue.cancel(request_id, owner=owner))
    cancelled = outcome.kind in (CancelKind.CANCELLED, CancelKind.CANCEL_REQUESTED)
    return JSONResponse(
        {
            "request_id": request_id,
            "status": "completed",
            "outcome": "cancelled" if cancelled else "not_cancellable",
        },
        status_code=202,
    )


async def submit(body: BaseModel, call: Submit[RunComfyViews]) -> dict[str, Any]:
    """POST /v1/models/{model}: the request id and where to follow it."""
    fields = body.model_dump()
    sub = submission.Submission.of(
        fields,
        image=fields["image_urls"][0],
        image_field="image_urls[0]",
        frames=fields["frames"],
        echo=dict(fields),
        flags=Flags(dialect=RUNCOMFY, base_url=call.views.base_url),
        webhook=call.webhook,
    )
    p = await call.accept(sub)
    return {"request_id": p.id, **call.views.links(p)}
