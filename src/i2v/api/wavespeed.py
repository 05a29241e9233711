"""The WaveSpeed v3 dialect: `POST /api/v3/{model}` and the predictions API.

Shapes follow WaveSpeed's docs and its official SDK: a `{code, message, data}`
envelope, statuses created|processing|completed|failed (+cancelled), outputs as
absolute URLs (or base64 with enable_base64_output), and sync mode that answers
code 5004 when the server-side wait runs out while the job goes on.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api import deps, events, submission
from i2v.api.deps import read, with_body
from i2v.api.schemas import DeleteBody, HistoryBody, runcomfy_body, wavespeed_body
from i2v.api.services import Services
from i2v.api.views import Views
from i2v.api.webhooks import WAVESPEED
from i2v.domain.catalog import Route
from i2v.domain.errors import InputError
from i2v.domain.prediction import Prediction, attempt_output_key
from i2v.engines import registry

SYNC_TIMEOUT_CODE = 5004
PLATFORM_FLAGS = ("enable_sync_mode", "enable_base64_output", "enable_safety_checker")
SYNC_POLL_SECONDS = 0.5


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 200, "message": "success", "data": data}


def router(services: Services, owner_dependency: Any, base_url: Any) -> APIRouter:
    r = APIRouter(prefix="/api/v3", tags=["WaveSpeed v3"])
    store = services.store

    views = deps.views_getter(services, base_url)

    @r.get("/predictions/{prediction_id}/result", summary="A prediction's status and outputs")
    async def result(
        prediction_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        p = await read(store, lambda: store.get(prediction_id, owner=owner))
        return envelope(await render(views(request), p))

    @r.get(
        "/predictions/{prediction_id}/events",
        summary="Progress as server-sent events, ending with the outcome",
        description=events.DESCRIPTION,
        response_class=StreamingResponse,
    )
    async def prediction_events(
        prediction_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> StreamingResponse:
        v = views(request)

        async def progress(p: Prediction, place: int | None) -> dict[str, Any]:
            data = v.wavespeed(p)
            if place is not None:
                data["queue_position"] = place  # beyond WaveSpeed, as RunComfy shows it
            return data

        return await events.stream(store, prediction_id, owner, progress, lambda p: render(v, p))

    @r.get("/predictions/{prediction_id}", summary="A prediction, with its input")
    async def get(
        prediction_id: str, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        p = await read(store, lambda: store.get(prediction_id, owner=owner))
        data = await render(views(request), p, with_input=True)
        if p.webhook is not None:
            data["webhook"] = Views.webhook(p)
        return envelope(data)

    @r.post("/predictions", summary="History: your predictions, newest first")
    async def history(
        body: HistoryBody, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        v = views(request)

        def page() -> dict[str, Any]:
            # In a thread: base64 outputs mean reading videos.
            items, total = store.list(owner, page=body.page, page_size=body.page_size)
            return {
                "items": [v.wavespeed(p, with_input=True) for p in items],
                "page": body.page,
                "page_size": body.page_size,
                "total": total,
            }

        return envelope(await run_in_threadpool(page))

    @r.get("/webhook/secret", summary="The secret your webhooks are signed with")
    async def webhook_secret(owner: str = Depends(owner_dependency)) -> dict[str, Any]:
        return envelope({"secret": services.webhook_secrets.secret_for(owner)})

    @r.post("/predictions/delete", summary="Delete finished predictions and their media")
    async def delete(body: DeleteBody, owner: str = Depends(owner_dependency)) -> dict[str, Any]:
        def run() -> int:
            removed = store.delete(body.ids, owner=owner)
            for p in removed:
                # Every attempt's output: a worker killed after writing leaves one behind.
                outputs = [attempt_output_key(p.id, n) for n in range(1, p.attempt + 1)]
                for key in (*outputs, p.params.get("image_key"), p.params.get("last_image_key")):
                    if key:
                        services.storage.delete(key)
            return len(removed)

        return envelope({"deleted_count": await run_in_threadpool(run)})

    @r.get("/models", summary="The catalog: every model path with its input schema")
    async def models(request: Request, owner: str = Depends(owner_dependency)) -> dict[str, Any]:
        return envelope([_model_entry(route) for route in services.catalog])

    for route in services.catalog:
        r.add_api_route(
            "/" + route.path,
            with_body(
                _submit_endpoint(services, route, views, owner_dependency), wavespeed_body(route)
            ),
            methods=["POST"],
            summary=route.title or route.path,
            description=f"{route.description}\n\nEngine: `{route.engine}`.",
        )

    @r.post(
        "/{model_path:path}",
        summary="Unknown model paths answer 404 with close matches",
        include_in_schema=False,
    )
    async def unknown(model_path: str, owner: str = Depends(owner_dependency)) -> None:
        raise submission.unknown_model(services.catalog, model_path)

    return r


def _submit_endpoint(services: Services, route: Route, views: Any, owner_dependency: Any) -> Any:
    settings = services.settings

    async def submit(
        body: BaseModel, request: Request, owner: str = Depends(owner_dependency)
    ) -> dict[str, Any]:
        fields = body.model_dump()
        v = views(request)
        webhook, webhook_options = submission.webhook_options(
            request.query_params.get("webhook"), WAVESPEED, v.base_url
        )
        if webhook is not None and fields["enable_base64_output"]:
            raise InputError(
                "webhook callback does not support base64 output; drop one of the two",
                field="webhook",
                value=webhook,
            )
        frames = route.frames_for_duration(fields["duration"])
        assert frames is not None  # the body model only allows the route's durations
        sub = submission.Submission(
            prompt=fields["prompt"],
            image=fields["image"],
            image_field="image",
            seed=fields["seed"],
            frames=frames,
            echo=_echo(fields),
            aspect_ratio=fields.get("aspect_ratio"),
            resolution=fields.get("resolution"),
            camera_fixed=fields.get("camera_fixed", False),
            last_image=fields.get("last_image"),
            engine_inputs=submission.engine_inputs(fields),
            options={**{k: fields[k] for k in PLATFORM_FLAGS}, **webhook_options},
            webhook=webhook,
        )
        p = await submission.accept(services, owner, route, sub)
        if not fields["enable_sync_mode"]:
            return envelope(v.wavespeed(p))
        p = await _wait(services, p, settings.sync_timeout_seconds)
        data = await render(v, p)
        if p.is_terminal:
            return envelope(data)
        message = (
            f"Sync mode timed out after {settings.sync_timeout_seconds:g} s; the prediction "
            f"goes on: poll {data['urls']['get']}"
        )
        data.update(code=SYNC_TIMEOUT_CODE, error=message)
        return {"code": SYNC_TIMEOUT_CODE, "message": message, "data": data}

    return submit


async def _wait(services: Services, p: Prediction, timeout: float) -> Prediction:
    """Until `p` is terminal or `timeout` passes; woken by the in-process worker,
    polling when the worker runs in another process."""
    store = services.store
    deadline = time.monotonic() + timeout
    while not p.is_terminal:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        token = store.change_token(p.id)
        p = await run_in_threadpool(store.get, p.id)
        if not p.is_terminal:
            wait = min(remaining, SYNC_POLL_SECONDS)
            await anyio.to_thread.run_sync(partial(store.wait_for_change, p.id, wait, token=token))
    return p


async def render(v: Views, p: Prediction, *, with_input: bool = False) -> dict[str, Any]:
    """The WaveSpeed view; in a thread when it must read the video (base64 output)."""
    if v.reads_storage(p):
        return await run_in_threadpool(lambda: v.wavespeed(p, with_input=with_input))
    return v.wavespeed(p, with_input=with_input)


def _echo(fields: dict[str, Any]) -> dict[str, Any]:
    """The input as sent, minus platform flags; inline images shortened."""
    echo = {k: v for k, v in fields.items() if k not in PLATFORM_FLAGS}
    for key in ("image", "last_image"):
        value = echo.get(key)
        if isinstance(value, str) and len(value) > 512:
            echo[key] = f"<inline image, {len(value)} characters>"
    return echo


def _model_entry(route: Route) -> dict[str, Any]:
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
                    "api_path": f"/api/v3/{route.path}",
                    "request_schema": wavespeed_body(route).model_json_schema(),
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
