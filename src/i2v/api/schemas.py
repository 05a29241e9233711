"""Request bodies per catalog route, built at start-up so /openapi.json is exact.

Each route gets its own model: its allowed durations/frames, the optional inputs
it declares, nothing else (`extra="forbid"`: an undeclared input is a 400 naming
it, never silently ignored).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from i2v.domain.catalog import PROMPT_MAX_LENGTH, Route
from i2v.domain.geometry import ASPECT_RATIOS
from i2v.domain.request import SEED_MAX

_STRICT = ConfigDict(strict=True, extra="forbid")
MAX_PAGE = 1_000_000


def _no_nul(text: str) -> str:
    # PostgreSQL's JSONB cannot hold U+0000, and no prompt needs it.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


def _literal(values: tuple[Any, ...]) -> Any:
    return Literal[values]


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
            str | None,
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
    return fields


def _seed_field() -> Any:
    return (
        int,
        Field(
            -1, ge=-1, le=SEED_MAX, description="-1 picks a random seed; the seed used is returned."
        ),
    )


def wavespeed_body(route: Route) -> type[BaseModel]:
    durations = route.durations
    return create_model(
        "WaveSpeed_" + _ident(route.path),
        __config__=_STRICT,
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
            str,
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
        **_optional_inputs(route),
    )


def runcomfy_body(route: Route) -> type[BaseModel]:
    return create_model(
        "RunComfy_" + _ident(route.path),
        __config__=_STRICT,
        __doc__=f"RunComfy input for {route.path}. {route.description}",
        prompt=(Text, Field(..., min_length=1, max_length=PROMPT_MAX_LENGTH)),
        image_urls=(
            list[str],
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
    ids: list[str] = Field(..., min_length=1, max_length=100)


class UploadTicketBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    filename: str = Field(..., min_length=1, max_length=255)
    size: int = Field(..., ge=0)
    content_type: str | None = None


def _ident(path: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in path)
