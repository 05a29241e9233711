"""Accepting a prediction: one path for every dialect, from its route to its row.

Each catalog model gets one POST route per dialect (`add_routes`), whose body model is
built at start-up; the dialect turns the body into a `Submission` and answers with its
view. Then: validate -> fetch/decode the image(s) -> build the JobSpec -> store the
validated image(s) -> insert the row. The row is the last write, so a refused or failed
submit leaves nothing behind but an orphan input object, which we delete.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from i2v.api.deps import BaseUrlDep, OwnerDep, ServicesDep, V, make_views, with_body
from i2v.api.schemas import StrictBody
from i2v.api.services import Services
from i2v.dialects import links
from i2v.domain.catalog import Catalog, Route
from i2v.domain.errors import InputError, UnknownModel
from i2v.domain.geometry import output_size, snap_aspect
from i2v.domain.idempotency import Idempotency
from i2v.domain.job import JobSpec, Lora
from i2v.domain.owners import key_id
from i2v.domain.prediction import Flags, Prediction
from i2v.domain.request import SEED_MAX
from i2v.domain.status import Status
from i2v.engines import registry
from i2v.intake.image import RUNCOMFY_RULES, ImageFacts
from i2v.intake.source import parse_inline, require_http_url
from i2v.storage.keys import input_key, upload_id

log = logging.getLogger(__name__)

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# Names the inputs a lenient body dropped (`LenientBody`), comma-separated.
IGNORED_INPUTS_HEADER = "X-I2V-Ignored-Inputs"
# A client's key for retrying a submit safely (`i2v.domain.idempotency`).
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Submission:
    """A request in dialect-neutral form; the dialect already checked types and enums."""

    prompt: str
    image: str
    image_field: str  # name of the field the client used, for error messages
    seed: int
    frames: int
    # The client's input, echoed back in views; `accept` replaces inline images in it
    # (`echo_without_inline`) before it is stored.
    echo: dict[str, Any]
    aspect_ratio: str | None = None
    resolution: str | None = None
    camera_fixed: bool = False
    last_image: str | None = None
    negative_prompt: str = ""
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    flow_shift: float | None = None
    loras: tuple[Lora, ...] = ()
    flags: Flags = field(default_factory=Flags)
    webhook: str | None = None  # checked with `checked_webhook`

    @classmethod
    def of(
        cls,
        fields: dict[str, Any],
        *,
        image: str,
        image_field: str,
        frames: int,
        echo: dict[str, Any],
        flags: Flags,
        webhook: str | None,
    ) -> Submission:
        """A submission from a dialect's body fields: the dialect names its image, frames,
        echo and flags; the inputs both dialects declare alike are read here."""
        return cls(
            prompt=fields["prompt"],
            image=image,
            image_field=image_field,
            seed=fields["seed"],
            frames=frames,
            echo=echo,
            aspect_ratio=fields.get("aspect_ratio"),
            resolution=fields.get("resolution"),
            camera_fixed=fields.get("camera_fixed", False),
            last_image=fields.get("last_image"),
            negative_prompt=fields.get("negative_prompt") or "",
            num_inference_steps=fields.get("num_inference_steps"),
            guidance_scale=fields.get("guidance_scale"),
            flow_shift=fields.get("flow_shift"),
            loras=tuple(_lora(item) for item in fields.get("loras") or ()),
            flags=flags,
            webhook=webhook,
        )


def _lora(item: Any) -> Lora:
    """A LoRA from a dialect's body: a dumped dict or the pydantic model itself."""
    if isinstance(item, BaseModel):
        item = item.model_dump()
    return Lora(str(item["path"]), float(item.get("scale", 1.0)))


def check_loras(route: Route, loras: tuple[Lora, ...]) -> None:
    """Each requested LoRA must be one the operator allowed for this route
    (`lora_allowlist` in its options): a request never names a file on the server."""
    allowed = route.options.get("lora_allowlist", []) or []
    allowed_set = {str(item) for item in allowed} if isinstance(allowed, list) else set()
    for index, lora in enumerate(loras):
        if lora.path not in allowed_set:
            raise InputError(
                f"{lora.path!r} is not in this model's LoRA allowlist "
                f"({len(allowed_set)} allowed; ask the operator to add it to lora_allowlist)",
                field=f"loras[{index}].path",
                value=lora.path,
            )


@dataclass(frozen=True)
class Submit(Generic[V]):
    """One submit request to a catalog model, as a dialect's handler receives it."""

    route: Route
    services: Services
    owner: str
    views: V  # the dialect's, with links on the base URL this client reached us at
    webhook: str | None  # the `?webhook=` query value, checked
    idempotency: Idempotency | None = None  # from the Idempotency-Key header
    # Whether the client has gone (sync mode stops waiting then; the prediction goes on).
    disconnected: Callable[[], Awaitable[bool]] | None = None

    async def accept(self, sub: Submission) -> Prediction:
        return await accept(self.services, self.owner, self.route, sub, self.idempotency)


Handler = Callable[[BaseModel, Submit[V]], Awaitable[dict[str, Any]]]


def add_routes(
    router: APIRouter,
    catalog: Catalog,
    *,
    prefix: str,
    body: Callable[[Route], type[StrictBody]],
    views: type[V],
    handle: Handler[V],
) -> None:
    """A POST route at `prefix` + path for each catalog model, whose body is `body(route)`
    and which `handle` answers; then a catch-all that names close matches."""
    for route in catalog:
        router.add_api_route(
            prefix + route.path,
            _endpoint(route, body(route), views, handle),
            methods=["POST"],
            summary=route.title or route.path,
            description=f"{route.description}\n\nEngine: `{route.engine}`.",
        )
    router.add_api_route(
        prefix + "{model_path:path}", unknown, methods=["POST"], include_in_schema=False
    )


def _endpoint(
    route: Route, body_model: type[BaseModel], kind: type[V], handle: Handler[V]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    # One function per route: FastAPI reads each route's body model from its signature.
    async def submit(
        body: StrictBody,
        request: Request,
        response: Response,
        services: ServicesDep,
        owner: OwnerDep,
        base_url: BaseUrlDep,
    ) -> dict[str, Any]:
        views = make_views(kind, services, base_url)
        webhook = checked_webhook(request.query_params.get("webhook"))
        key = request.headers.get(IDEMPOTENCY_HEADER)
        idempotency = None
        if key is not None:
            # What was submitted: the model, the validated body and the webhook query.
            sent = {"model": route.path, "body": body.model_dump(mode="json"), "webhook": webhook}
            idempotency = Idempotency.of(key, sent)
        call = Submit(route, services, owner, views, webhook, idempotency, request.is_disconnected)
        answer = await handle(body, call)
        if body.ignored_inputs:
            response.headers[IGNORED_INPUTS_HEADER] = ", ".join(body.ignored_inputs)
        return answer

    return with_body(submit, body_model)


async def unknown(model_path: str, services: ServicesDep, owner: OwnerDep) -> None:
    """A POST to a model path no route matched: 404 with close matches."""
    raise unknown_model(services.catalog, model_path)


def checked_webhook(value: str | None, field: str = "webhook") -> str | None:
    """A webhook URL (the `?webhook=` query value, or a body's `field`), checked."""
    return None if value is None else require_http_url(value, field)


def unknown_model(catalog: Catalog, path: str) -> UnknownModel:
    """The error for a POST to a model path no route matched: close matches, or the
    route it names with a stray slash (catalog lookups ignore those; routing does not)."""
    route = catalog.get(path)  # raises UnknownModel with close matches
    return UnknownModel(path, [route.path])


async def accept(
    services: Services,
    owner: str,
    route: Route,
    sub: Submission,
    idempotency: Idempotency | None = None,
) -> Prediction:
    """The prediction `sub` makes, stored and queued; with `idempotency`, the one an
    earlier submit with the same key and body made, if there is one."""
    started = time.perf_counter()
    if idempotency is not None:
        # A retry is answered before any work: no fetch, no decode, no disk check.
        earlier = await run_in_threadpool(services.store.queue.submitted, owner, idempotency)
        if earlier is not None:
            return earlier
    if services.disk is not None:
        services.disk.check()  # one statvfs: cheaper than a hop to a thread
    if sub.last_image is not None and not registry.info(route.engine).supports_last_image:
        raise InputError(
            f"the '{route.engine}' engine behind this model cannot use a last frame",
            field="last_image",
        )
    check_loras(route, sub.loras)
    image, image_bytes, inline = await _read_image(services, sub.image, sub.image_field)
    last, last_bytes, last_inline = (
        await _read_image(services, sub.last_image, "last_image")
        if sub.last_image
        else (None, b"", False)
    )

    aspect = sub.aspect_ratio or snap_aspect(image.width, image.height)
    size = output_size(sub.resolution or route.resolution, aspect)
    seed = sub.seed if sub.seed >= 0 else secrets.randbelow(SEED_MAX + 1)
    prediction_id = uuid.uuid4().hex
    # The original bytes are kept (not a re-encode): they passed every rule, and
    # re-encoding a 4096 px photo to PNG costs over a second per submit.
    spec = JobSpec(
        image_key=input_key(prediction_id, EXTENSIONS[image.format]),
        prompt=sub.prompt,
        seed=seed,
        width=size.width,
        height=size.height,
        frames=sub.frames,
        fps=route.fps,
        aspect_ratio=aspect,
        camera_fixed=sub.camera_fixed,
        last_image_key=(
            input_key(prediction_id, EXTENSIONS[last.format], last=True) if last else None
        ),
        negative_prompt=sub.negative_prompt,
        num_inference_steps=sub.num_inference_steps,
        guidance_scale=sub.guidance_scale,
        flow_shift=sub.flow_shift,
        loras=sub.loras,
        engine_options=route.options,
    )
    prediction = Prediction(
        id=prediction_id,
        owner=owner,
        model=route.path,
        engine=route.engine,
        status=Status.QUEUED,
        spec=spec,
        input=echo_without_inline(
            sub.echo,
            [
                (value, what)
                for value, was_inline, what in (
                    (sub.image, inline, "the input image"),
                    (sub.last_image, last_inline, "the last frame"),
                )
                if was_inline and value is not None
            ],
        ),
        created_at=datetime.now(UTC),
        max_attempts=services.settings.max_attempts,
        flags=sub.flags,
        webhook=sub.webhook,
    )

    def write() -> Prediction:
        try:
            # Not fsynced (a flush costs more than the rest of a submit): like the
            # database's commits, inputs survive a crash of any process, not a power loss.
            services.storage.put_bytes(spec.image_key, image_bytes, sync=False)
            if spec.last_image_key is not None:
                services.storage.put_bytes(spec.last_image_key, last_bytes, sync=False)
            stored = services.store.queue.submit(prediction, idempotency=idempotency)
        except BaseException:
            for key in spec.input_keys:
                services.storage.delete(key)
            raise
        if stored.id != prediction.id:  # a retry that raced its original: keep that one
            for key in spec.input_keys:
                services.storage.delete(key)
        return stored

    accepted = await run_in_threadpool(write)
    log.info(
        "prediction submitted",
        extra={
            "event": "submitted",
            "prediction_id": accepted.id,
            "route": route.path,
            "key_id": key_id(owner),
            "duration_s": round(time.perf_counter() - started, 3),
        },
    )
    return accepted


def echo_without_inline(echo: dict[str, Any], inline: list[tuple[str, str]]) -> dict[str, Any]:
    """`echo` with every value that was an inline image replaced by a short placeholder,
    in lists too; `inline` pairs each such value with what it became ("the input image").
    Rows hold no input bytes: the image itself is the prediction's stored input, so a
    6 MB data URI neither bloats the row nor every GET and event stream that reads it.
    Both dialects store their echo through this, whatever their field names."""

    def short(value: Any) -> Any:
        if isinstance(value, list):
            return [short(v) for v in value]
        for sent, what in inline:
            # Identity first: the echo holds the very string the dialect handed over.
            if value is sent or (
                isinstance(value, str) and len(value) == len(sent) and value == sent
            ):
                return f"<inline image, {len(sent)} characters, stored as {what}>"
        return value

    return {name: short(value) for name, value in echo.items()} if inline else echo


async def _read_image(
    services: Services, value: str, field_name: str
) -> tuple[ImageFacts, bytes, bool]:
    """The image's facts and bytes, and whether it came inline (data: URI or base64)."""
    # A 6 MB base64 string takes milliseconds to decode: off the event loop, like the fetch.
    data = await run_in_threadpool(parse_inline, value, field_name)
    inline = data is not None
    if data is None:
        key = links.own_key(services.signer, value)
        if key is not None:
            data = await run_in_threadpool(services.storage.get_bytes, key)
            if upload_id(key) is not None:
                await run_in_threadpool(services.store.uploads.used, key)
        else:
            data = await services.fetcher.fetch(value, field=field_name)
    # Decoded in a child process under a time budget (a scan bomb cannot hold the server);
    # only the facts come back. The worker decodes the stored bytes again for the pixels:
    # see `i2v.intake.decoder` for why that is cheaper than shipping pixels.
    facts = await run_in_threadpool(
        services.decoder.inspect, data, field=field_name, rules=RUNCOMFY_RULES
    )
    return facts, data, inline
