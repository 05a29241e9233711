"""Accepting a prediction: one path for every dialect.

Validate -> fetch/decode the image(s) -> store the validated image -> insert the
row. The row is the last write, so a refused or failed submit leaves nothing
behind but an orphan input object, which we delete.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from i2v.api import media
from i2v.api.services import Services
from i2v.domain.catalog import Catalog, Route
from i2v.domain.errors import InputError, UnknownModel
from i2v.domain.geometry import output_size, snap_aspect
from i2v.domain.prediction import Prediction
from i2v.domain.request import SEED_MAX
from i2v.domain.status import Status
from i2v.engines import registry
from i2v.intake.image import RUNCOMFY_RULES, IntakeImage, decode_image
from i2v.intake.source import parse_inline, require_http_url

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
ENGINE_INPUTS = ("negative_prompt", "num_inference_steps", "guidance_scale")


@dataclass(frozen=True)
class Submission:
    """A request in dialect-neutral form; the dialect already checked types and enums."""

    prompt: str
    image: str
    image_field: str  # name of the field the client used, for error messages
    seed: int
    frames: int
    echo: dict[str, Any]  # the client's input, echoed back in views
    aspect_ratio: str | None = None
    resolution: str | None = None
    camera_fixed: bool = False
    last_image: str | None = None
    engine_inputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # platform flags (base64 output...)
    webhook: str | None = None  # checked with `webhook_url`


def engine_inputs(fields: dict[str, Any]) -> dict[str, Any]:
    """The engine knobs a request set (the body models only allow declared ones)."""
    return {k: fields[k] for k in ENGINE_INPUTS if fields.get(k) is not None}


def webhook_options(
    value: str | None, fmt: str, base_url: str
) -> tuple[str | None, dict[str, Any]]:
    """The `?webhook=` query value, checked, and the options its payload is rendered with:
    the dialect and the base URL this client reached us at (outputs are links on it)."""
    if value is None:
        return None, {}
    url = require_http_url(value, "webhook")
    return url, {"webhook_format": fmt, "base_url": base_url}


def unknown_model(catalog: Catalog, path: str) -> UnknownModel:
    """The error for a POST to a model path no route matched: close matches, or the
    route it names with a stray slash (catalog lookups ignore those; routing does not)."""
    route = catalog.get(path)  # raises UnknownModel with close matches
    return UnknownModel(path, [route.path])


async def accept(services: Services, owner: str, route: Route, sub: Submission) -> Prediction:
    if sub.last_image is not None and not registry.info(route.engine).supports_last_image:
        raise InputError(
            f"the '{route.engine}' engine behind this model cannot use a last frame",
            field="last_image",
        )
    image, image_bytes = await _read_image(services, sub.image, sub.image_field)
    last, last_bytes = (
        await _read_image(services, sub.last_image, "last_image") if sub.last_image else (None, b"")
    )

    aspect = sub.aspect_ratio or snap_aspect(image.width, image.height)
    size = output_size(sub.resolution or route.resolution, aspect)
    seed = sub.seed if sub.seed >= 0 else secrets.randbelow(SEED_MAX + 1)
    prediction_id = uuid.uuid4().hex
    # The original bytes are kept (not a re-encode): they passed every rule, and
    # re-encoding a 4096 px photo to PNG costs over a second per submit.
    # Flat keys: one file per input, no folder to create per submit.
    keys = {"image_key": f"inputs/{prediction_id}{EXTENSIONS[image.format]}"}
    if last is not None:
        keys["last_image_key"] = f"inputs/{prediction_id}-last{EXTENSIONS[last.format]}"

    params: dict[str, Any] = {
        "prompt": sub.prompt,
        "seed": seed,
        "frames": sub.frames,
        "fps": route.fps,
        "width": size.width,
        "height": size.height,
        "aspect_ratio": aspect,
        "camera_fixed": sub.camera_fixed,
        "route_options": route.options,
        "engine_options": sub.engine_inputs,
        **keys,
    }
    prediction = Prediction(
        id=prediction_id,
        owner=owner,
        model=route.path,
        engine=route.engine,
        status=Status.QUEUED,
        params=params,
        input=sub.echo,
        created_at=datetime.now(UTC),
        max_attempts=services.settings.max_attempts,
        options=sub.options,
        webhook=sub.webhook,
    )

    def write() -> Prediction:
        try:
            # Not fsynced (a flush costs more than the rest of a submit): like the
            # database's commits, inputs survive a crash of any process, not a power loss.
            services.storage.put_bytes(keys["image_key"], image_bytes, sync=False)
            if last is not None:
                services.storage.put_bytes(keys["last_image_key"], last_bytes, sync=False)
            return services.store.submit(prediction)
        except BaseException:
            for key in keys.values():
                services.storage.delete(key)
            raise

    return await run_in_threadpool(write)


async def _read_image(services: Services, value: str, field_name: str) -> tuple[IntakeImage, bytes]:
    data = parse_inline(value, field_name)
    if data is None:
        key = media.own_key(services.signer, value)
        if key is not None:
            data = await run_in_threadpool(services.storage.get_bytes, key)
        else:
            data = await services.fetcher.fetch(value, field=field_name)
    payload = data
    image = await run_in_threadpool(
        lambda: decode_image(payload, field=field_name, rules=RUNCOMFY_RULES)
    )
    return image, payload
