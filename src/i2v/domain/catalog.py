"""The model catalog: route paths in URLs mapped to an engine, its defaults and limits.

A catalog is TOML. Each `[routes."<path>"]` table names an engine and may set:

    title, description        shown by GET /api/v3/models
    resolution = "1080p"      default output resolution (480p | 720p | 1080p)
    resolutions = [...]       resolutions a request may ask for (needs input "resolution")
    frames = [121, 241]       allowed frame counts (WaveSpeed duration 5|10 maps to these)
    inputs = [...]            optional inputs the route accepts beyond prompt/image/seed/length:
                              aspect_ratio, camera_fixed, last_image, resolution,
                              negative_prompt, num_inference_steps, guidance_scale,
                              flow_shift (Wan only)
    [routes."<path>".options] engine settings (weights folder, steps, offload...)
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from i2v.domain.errors import I2VError, UnknownModel
from i2v.domain.geometry import RESOLUTIONS
from i2v.domain.request import FPS, FRAME_CHOICES

OPTIONAL_INPUTS = frozenset(
    {
        "aspect_ratio",
        "camera_fixed",
        "last_image",
        "resolution",
        "negative_prompt",
        "num_inference_steps",
        "guidance_scale",
        "flow_shift",
        "loras",
    }
)
PROMPT_MAX_LENGTH = 800
MAX_FPS = 120  # RunComfy's schema; WaveSpeed's Dreamina pages say the same


class CatalogError(I2VError):
    """A catalog file is malformed. Raised at start-up, never per request."""


@dataclass(frozen=True)
class Route:
    path: str
    engine: str
    title: str = ""
    description: str = ""
    resolution: str = "1080p"
    resolutions: tuple[str, ...] = ("1080p",)
    frames: tuple[int, ...] = FRAME_CHOICES
    fps: int = FPS
    inputs: frozenset[str] = frozenset()
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def durations(self) -> tuple[int, ...]:
        """WaveSpeed `duration` seconds matching the allowed frame counts."""
        return tuple(round((n - 1) / self.fps) for n in self.frames)

    def frames_for_duration(self, seconds: int) -> int | None:
        for n, d in zip(self.frames, self.durations, strict=True):
            if d == seconds:
                return n
        return None


@dataclass(frozen=True)
class Catalog:
    routes: dict[str, Route]

    def get(self, path: str) -> Route:
        path = path.strip("/")
        route = self.routes.get(path)
        if route is None:
            close = difflib.get_close_matches(path, list(self.routes), n=3, cutoff=0.5)
            raise UnknownModel(path, close)
        return route

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.routes.values())


def wrong_rate(model: str, native: int, fps: int) -> str:
    """Why `model`, trained at `native` fps, cannot play a route at `fps`, and the fix."""
    return (
        f"{model} was trained at {native} fps and plays only at that rate (at {fps} its "
        f"motion runs {fps / native:.3g}x its speed), got fps = {fps}; set the route's "
        f"fps = {native} and frames = [{5 * native + 1}, {10 * native + 1}] (5 s and 10 s)"
    )


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    tables = data.get("routes")
    if not isinstance(tables, dict) or not tables:
        raise CatalogError(f'{source}: needs at least one [routes."<path>"] table')
    return Catalog(
        {path.strip("/"): _route(path.strip("/"), t, source) for path, t in tables.items()}
    )


# Catalogs shipped in the package, by the name `--catalog` takes for them: the seeds'
# routes on the CPU motion engine, and one route per open-weight model and preset.
BUILT_IN = {"default": "catalog.toml", "gpu": "catalog-gpu.toml"}


def default_catalog() -> Catalog:
    return built_in_catalog("default")


def built_in_catalog(name: str) -> Catalog:
    text = resources.files("i2v").joinpath(BUILT_IN[name]).read_text(encoding="utf-8")
    return parse_catalog(text, "built-in catalog" if name == "default" else f"{name} catalog")


def read_catalog(path: Path | None) -> Catalog:
    """The catalog in `path`; a built-in one by its name (`gpu`) when no such file
    exists; the default one when there is no path."""
    if path is None:
        return default_catalog()
    if str(path) in BUILT_IN and not path.exists():
        return built_in_catalog(str(path))
    return parse_catalog(path.read_text(encoding="utf-8"), str(path))


def _route(path: str, table: Any, source: str) -> Route:
    where = f"{source}: route {path!r}"
    if not isinstance(table, dict):
        raise CatalogError(f"{where}: must be a table")
    unknown = set(table) - {
        "engine",
        "title",
        "description",
        "resolution",
        "resolutions",
        "frames",
        "fps",
        "inputs",
        "options",
    }
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    engine = table.get("engine")
    if not isinstance(engine, str) or not engine:
        raise CatalogError(f"{where}: 'engine' is required")
    resolution = table.get("resolution", "1080p")
    resolutions = tuple(table.get("resolutions", [resolution]))
    for r in (resolution, *resolutions):
        if r not in RESOLUTIONS:
            raise CatalogError(f"{where}: resolution {r!r} is not one of {list(RESOLUTIONS)}")
    if resolution not in resolutions:
        raise CatalogError(f"{where}: default resolution {resolution!r} not in 'resolutions'")
    frames = tuple(table.get("frames", FRAME_CHOICES))
    fps = table.get("fps", FPS)
    if not frames or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in frames):
        raise CatalogError(f"{where}: 'frames' must be positive integers, got {list(frames)}")
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
        raise CatalogError(f"{where}: 'fps' must be an integer from 1 to {MAX_FPS}, got {fps!r}")
    inputs = frozenset(table.get("inputs", []))
    if inputs - OPTIONAL_INPUTS:
        raise CatalogError(
            f"{where}: unknown inputs {sorted(inputs - OPTIONAL_INPUTS)}; "
            f"known: {sorted(OPTIONAL_INPUTS)}"
        )
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise CatalogError(f"{where}: 'options' must be a table")
    return Route(
        path=path,
        engine=engine,
        title=str(table.get("title", path)),
        description=str(table.get("description", "")),
        resolution=resolution,
        resolutions=resolutions,
        frames=frames,
        fps=int(fps),
        inputs=inputs,
        options=options,
    )
