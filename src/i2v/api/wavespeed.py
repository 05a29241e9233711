"""The WaveSpeed v3 dialect: `POST /api/v3/{model}` and the predictions API.

Shapes follow WaveSpeed's docs and its official SDK: a `{code, message, data}`
envelope around the views of `i2v.dialects.wavespeed`, and sync mode that answers
code 5004 when the server-side wait runs out while the job goes on.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api import account, events, submission
from i2v.api.deps import OwnerDep, ServicesDep, owned, rendered, views_dependency
from i2v.api.schemas import DeleteBody, HistoryBody, runcomfy_body, wavespeed_body
from i2v.api.services import Services
from i2v.api.submission import Submit
from i2v.dialects.wavespeed import WaveSpeedViews, envelope
from i2v.domain.catalog import Catalog, Route
from i2v.domain.errors import InputError
from i2v.domain.prediction import WAVESPEED, Flags, Prediction
from i2v.engines import registry
from i2v.storage.cleanup import delete_objects

PREFIX = "/api/v3"
SUBMIT_PREFIX = PREFIX + "/"  # + a catalog route's path
SYNC_TIMEOUT_CODE = 5004
PLATFORM_FLAGS = (
    "enable_sync_mode",
    "enable_base64_output",
    "enable_safety_checker",
    "webhook_url",
)
SYNC_POLL_SECONDS = 0.5

ViewsDep = Annotated[WaveSpeedViews, Depends(views_dependency(WaveSpeedViews))]
routes = APIRouter()  # those that do not depend on the catalog, under PREFIX


def router(catalog: Catalog, *, strict_inputs: bool = False) -> APIRouter:
    """The dialect's routes, with one submit route per catalog model; `strict_inputs`:
    inputs a model does not take are refused rather than ignored."""
    r = APIRouter(prefix=PREFIX, tags=["WaveSpeed v3"])
    r.include_router(routes)
    r.include_router(account.routes)
    body = partial(wavespeed_body, strict=strict_inputs)
    r.add_api_route(
        "/models",
        _models([_model_entry(route, body) for route in catalog]),
        methods=["GET"],
        summary="The catalog: every model path with its input schema",
    )
    submission.add_routes(
        r,
        catalog,
        prefix=SUBMIT_PREFIX.removeprefix(PREFIX),
        body=body,
        views=WaveSpeedViews,
        handle=submit,
    )
    return r


@routes.get("/predictions/{prediction_id}/result", summary="A prediction's status and outputs")
async def result(
    prediction_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> dict[str, Any]:
    p = await owned(services, prediction_id, owner)
    return envelope(await rendered(views, p, views.result))


@events.route(
    routes,
    "/predictions/{prediction_id}/events",
    "Progress as server-sent events, ending with the outcome",
)
async def prediction_events(
    prediction_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> StreamingResponse:
    return await events.stream(services.store, prediction_id, owner, views)


@routes.get("/predictions/{prediction_id}", summary="A prediction, with its input")
async def get(
    prediction_id: str, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> dict[str, Any]:
    p = await owned(services, prediction_id, owner)
    data = await rendered(views, p, partial(views.prediction, with_input=True))
    if p.webhook is not None:
        data["webhook"] = WaveSpeedViews.webhook_state(p)
    return envelope(data)


@routes.post("/predictions", summary="History: your predictions, newest first")
async def history(
    body: HistoryBody, services: ServicesDep, owner: OwnerDep, views: ViewsDep
) -> dict[str, Any]:
    def page() -> dict[str, Any]:
        # In a thread: base64 outputs mean reading videos.
        items, total = services.store.predictions.list(
            owner, page=body.page, page_size=body.page_size
        )
        return {
            "items": [views.prediction(p, with_input=True) for p in items],
            "page": body.page,
            "page_size": body.page_size,
            "total": total,
        }

    return envelope(await run_in_threadpool(page))


@routes.get("/webhook/secret", summary="The secret your webhooks are signed with")
async def webhook_secret(services: ServicesDep, owner: OwnerDep) -> dict[str, Any]:
    return envelope({"secret": services.webhook_secrets.secret_for(owner)})


@routes.post("/predictions/delete", summary="Delete finished predictions and their media")
async def delete(body: DeleteBody, services: ServicesDep, owner: OwnerDep) -> dict[str, Any]:
    def run() -> int:
        removed = services.store.queue.delete(body.ids, owner=owner)
        for p in removed:
            delete_objects(services.storage, p)
        return len(removed)

    return envelope({"deleted_count": await run_in_threadpool(run)})


async def submit(body: BaseModel, call: Submit[WaveSpeedViews]) -> dict[str, Any]:
    """POST /api/v3/{model}: the prediction, or with sync mode its outcome."""
    fields = body.model_dump()
    webhook = _webhook(call.webhook, fields["webhook_url"])
    if webhook is not None and fields["enable_base64_output"]:
        raise InputError(
            "webhook callback does not support base64 output; drop one of the two",
            field="webhook",
            value=webhook,
        )
    frames = call.route.frames_for_duration(fields["duration"])
    assert frames is not None  # the body model only allows the route's durations
    flags = Flags(
        enable_base64_output=fields["enable_base64_output"],
        enable_sync_mode=fields["enable_sync_mode"],
        enable_safety_checker=fields["enable_safety_checker"],
        dialect=WAVESPEED,
        base_url=call.views.base_url,
    )
    sub = submission.Submission.of(
        fields,
        image=fields["image"],
        image_field="image",
        frames=frames,
        echo=_echo(fields),
        flags=flags,
        webhook=webhook,
    )
    p = await call.accept(sub)
    views = call.views
    if not flags.enable_sync_mode:
        return envelope(views.prediction(p))
    timeout = call.services.settings.sync_timeout_seconds
    p = await _wait(call.services, p, timeout, call.disconnected)
    data = await rendered(views, p, views.result)
    if p.is_terminal:
        return envelope(data)
    message = (
        f"Sync mode timed out after {timeout:g} s; the prediction goes on: poll "
        f"{data['urls']['get']}"
    )
    data.update(code=SYNC_TIMEOUT_CODE, error=message)
    return {"code": SYNC_TIMEOUT_CODE, "message": message, "data": data}


async def _wait(
    services: Services,
    p: Prediction,
    timeout: float,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
) -> Prediction:
    """Until `p` is terminal, `timeout` passes or the client has gone (`disconnected`;
    checked every SYNC_POLL_SECONDS at most); woken by the in-process worker, polling when
    the worker runs in another process. The prediction goes on either way."""
    store = services.store
    deadline = time.monotonic() + timeout
    while not p.is_terminal:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (disconnected is not None and await disconnected()):
            break
        token = store.changes.change_token(p.id)
        p = await run_in_threadpool(store.predictions.get, p.id)
        if not p.is_terminal:
            wait = min(remaining, SYNC_POLL_SECONDS)
            wait_for_change = partial(store.changes.wait_for_change, p.id, wait, token=token)
            await anyio.to_thread.run_sync(wait_for_change)
    return p


def _webhook(query: str | None, body: str | None) -> str | None:
    """The webhook URL, from `?webhook=` (checked already) or the body's `webhook_url`
    (WaveSpeed documents both); two different URLs are refused rather than one dropped."""
    from_body = submission.checked_webhook(body, field="webhook_url")
    if query is not None and from_body is not None and query != from_body:
        raise InputError(
            "webhook_url: differs from the webhook query parameter; give one of the two",
            field="webhook_url",
            value=from_body,
        )
    return query if query is not None else from_body


def _echo(fields: dict[str, Any]) -> dict[str, Any]:
    """The input as sent, minus platform flags (`accept` shortens inline images)."""
    return {k: v for k, v in fields.items() if k not in PLATFORM_FLAGS}


def _models(entries: list[dict[str, Any]]) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """GET /models: the catalog's entries, described once at start-up (the catalog does
    not change while the server runs, and each entry builds two JSON schemas)."""

    async def models(owner: OwnerDep) -> dict[str, Any]:
        return envelope(entries)

    return models


def _model_entry(route: Route, body: Callable[[Route], type[BaseModel]]) -> dict[str, Any]:
    info = registry.info(route.engine)
    return {
        "model_id": route.path,
        "name": route.title or route.path,
        "description": route.description,
        "type": "image-to-video",
        "engine": route.engine,
        "gpu": info.gpu,
        "resolution": route.resolution,
        "resolutions": list(route.resolutions),
        "frames": list(route.frames),
        "durations": list(route.durations),
        "fps": route.fps,
        "api_schema": {
            "api_schemas": [
                {
                    "type": "model_run",
                    "method": "POST",
                    "api_path": f"{PREFIX}/{route.path}",
                    "request_schema": body(route).model_json_schema(),
                },
                {
                    "type": "runcomfy_model_run",
                    "method": "POST",
                    "api_path": f"/v1/models/{route.path}",
                    "request_schema": runcomfy_body(route).model_json_schema(),
                },
            ]
        },
    }
