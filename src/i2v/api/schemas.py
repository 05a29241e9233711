"""Request bodies per catalog route, built at start-up so /openapi.json is exact.

Each route gets its own model: its allowed durations/frames and the optional inputs
it declares. The inputs a route takes are always validated strictly. An input it does
not take is a 400 naming it on the RunComfy dialect, whose published schemas are exact,
and with `strict_inputs`; on the WaveSpeed dialect it is otherwise ignored, as the hosted
API does (its clients, e.g. the MCP server, send every input any model might take), and
named back in a response header (`LenientBody.ignored_inputs`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)

from i2v.domain.catalog import PROMPT_MAX_LENGTH, Route
from i2v.domain.geometry import ASPECT_RATIOS
from i2v.domain.request import SEED_MAX
from i2v.intake.source import IMAGE_MAX_CHARS, MAX_URL_LENGTH

_STRICT = ConfigDict(strict=True, extra="forbid")
MAX_PAGE = 1_000_000
# Every string a body carries has a cap, checked by pydantic before anything walks it:
# image inputs at what an inline image under the size cap needs, URLs at MAX_URL_LENGTH.
ImageInput = Annotated[str, Field(min_length=1, max_length=IMAGE_MAX_CHARS)]
MAX_ID_LENGTH = 64  # prediction ids are 32 hex characters
MAX_CONTENT_TYPE_LENGTH = 255


class StrictBody(BaseModel):
    """A submit body: an input the route does not take is a validation error."""

    model_config = _STRICT

    @property
    def ignored_inputs(self) -> tuple[str, ...]:
        """Inputs sent that the route does not take and that were dropped: none here."""
        return ()


class LenientBody(StrictBody):
    """A submit body that drops the inputs its route does not take, remembering their names."""

    model_config = ConfigDict(strict=True, extra="ignore")
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _note_ignored(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        body = handler(data)
        if isinstance(data, dict) and isinstance(body, LenientBody):
            body._ignored = tuple(sorted(str(k) for k in data if k not in cls.model_fields))
        return body

    @property
    def ignored_inputs(self) -> tuple[str, ...]:
        return self._ignored


def _no_nul(text: str) -> str:
    # PostgreSQL's JSONB cannot hold U+0000, and no prompt needs it.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


def _literal(values: tuple[Any, ...]) -> Any:
    return Literal[values]


MAX_LORAS = 4  # LoRAs one request may name (hosted LoRA routes take a handful)


class LoraInput(BaseModel):
    """One LoRA a request applies: a path or cached repo id from the route's allowlist."""

    model_config = _STRICT
    path: str = Field(..., min_length=1, max_length=512)
    scale: float = Field(1.0, ge=-4.0, le=4.0)


def _optional_inputs(route: Route) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "aspect_ratio" in route.inputs:
        fields["aspect_ratio"] = (
            _literal(tuple(ASPECT_RATIOS)) | None,
            Field(None, description="Output aspect ratio; default: the input's, snapped."),
        )
    if "camera_fixed" in route.inputs:
        fields["camera_fixed"] = (bool, Field(False, description="Lock the camera (no motion)."))
    if "last_image" in route.inputs:
        fields["last_image"] = (
            ImageInput | None,
            Field(None, description="Last frame: URL, data: URI or base64 (engine permitting)."),
        )
    if "resolution" in route.inputs:
        fields["resolution"] = (
            _literal(route.resolutions),
            Field(route.resolution, description="Output resolution (short side)."),
        )
    if "negative_prompt" in route.inputs:
        fields["negative_prompt"] = (Text, Field("", max_length=PROMPT_MAX_LENGTH))
    if "num_inference_steps" in route.inputs:
        fields["num_inference_steps"] = (int | None, Field(None, ge=1, le=100))
    if "guidance_scale" in route.inputs:
        fields["guidance_scale"] = (float | None, Field(None, ge=0.0, le=20.0))
    if "flow_shift" in route.inputs:
        fields["flow_shift"] = (float | None, Field(None, ge=0.0, le=30.0))
    if "loras" in route.inputs:
        fields["loras"] = (
            list[LoraInput],
            Field(
                default_factory=list,
                max_length=MAX_LORAS,
                description="LoRAs: [{path, scale}], paths from the model's allowlist.",
            ),
        )
    return fields


def _seed_field() -> Any:
    return (
        int,
        Field(
            -1, ge=-1, le=SEED_MAX, description="-1 picks a random seed; the seed used is returned."
        ),
    )


def wavespeed_body(route: Route, *, strict: bool = False) -> type[StrictBody]:
    """The route's WaveSpeed body; `strict`: undeclared inputs are refused, not ignored."""
    durations = route.durations
    return create_model(
        "WaveSpeed_" + _ident(route.path),
        __base__=StrictBody if strict else LenientBody,
        __doc__=f"WaveSpeed v3 input for {route.path}. {route.description}",
        prompt=(
            Text,
            Field(
                ...,
                min_length=1,
                max_length=PROMPT_MAX_LENGTH,
                description="The positive prompt for the generation.",
            ),
        ),
        image=(
            ImageInput,
            Field(
                ...,
                min_length=1,
                description="The image: an http(s) URL, an upload's download_url, "
                "a data: URI or base64. JPEG, PNG or WebP.",
            ),
        ),
        seed=_seed_field(),
        duration=(
            _literal(durations),
            Field(durations[0], description="Seconds of video at 24 fps."),
        ),
        enable_sync_mode=(bool, Field(False, description="Wait for the result in this request.")),
        enable_base64_output=(
            bool,
            Field(False, description="Return the video as base64, not a URL."),
        ),
        enable_safety_checker=(
            bool,
            Field(
                True,
                description="Check the video for explicit content; the result is in "
                "has_nsfw_contents (the video is returned either way).",
            ),
        ),
        webhook_url=(
            str | None,
            Field(
                None,
                max_length=MAX_URL_LENGTH,
                description="Where to POST the outcome; the same as the `webhook` query "
                "parameter (give one of the two).",
            ),
        ),
        **_optional_inputs(route),
    )


def runcomfy_body(route: Route) -> type[StrictBody]:
    return create_model(
        "RunComfy_" + _ident(route.path),
        __base__=StrictBody,
        __doc__=f"RunComfy input for {route.path}. {route.description}",
        prompt=(Text, Field(..., min_length=1, max_length=PROMPT_MAX_LENGTH)),
        image_urls=(
            list[ImageInput],
            Field(
                ..., min_length=1, max_length=1, description="One image: URL, data: URI or base64."
            ),
        ),
        seed=_seed_field(),
        frames=(_literal(route.frames), Field(route.frames[0], description="Frames at 24 fps.")),
        **_optional_inputs(route),
    )


class HistoryBody(BaseModel):
    model_config = _STRICT
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(20, ge=1, le=100)


class DeleteBody(BaseModel):
    model_config = _STRICT
    ids: list[Annotated[str, Field(max_length=MAX_ID_LENGTH)]] = Field(
        ..., min_length=1, max_length=100
    )


class UploadTicketBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    filename: str = Field(..., min_length=1, max_length=255)
    size: int = Field(..., ge=0)
    content_type: str | None = Field(None, max_length=MAX_CONTENT_TYPE_LENGTH)


def _ident(path: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in path)
