"""`i2v generate`: one image + prompt -> one MP4, locally, no server."""

from __future__ import annotations

import random
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from i2v.cli.app import app
from i2v.domain.errors import I2VError, InputError
from i2v.domain.geometry import RESOLUTIONS, output_size, snap_aspect
from i2v.domain.request import FPS, FRAME_CHOICES, SEED_MAX, GenerationRequest
from i2v.engines import registry
from i2v.engines.base import ProgressCallback, no_progress
from i2v.intake.image import decode_image
from i2v.video import encode, probe


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    width: int
    height: int
    frames: int
    fps: float
    size_bytes: int
    seed: int
    seconds: float


def generate_video(
    image: Path,
    prompt: str,
    out: Path,
    *,
    resolution: str = "720p",
    frames: int = FRAME_CHOICES[0],
    seed: int,
    engine: str = "motion",
    engine_options: dict[str, Any] | None = None,
    request_options: dict[str, Any] | None = None,
    camera_fixed: bool = False,
    on_progress: ProgressCallback = no_progress,
) -> GenerateResult:
    """What `i2v generate` does, minus the terminal: decode, size, render, encode, probe.

    `engine_options` go to the engine's constructor (weights folder, device...), and
    `request_options` ride on the request (steps, guidance...): the two places engine
    families read their knobs from.
    """
    started = time.perf_counter()
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {image}: {exc.strerror}", field="image") from exc
    # A local file is the user's own: only the format allowlist and the bomb cap apply,
    # not the hosted APIs' size rules.
    picture = decode_image(data, field="image", rules=None)
    size = output_size(resolution, snap_aspect(picture.width, picture.height))
    request = GenerationRequest(
        image=picture.pixels,
        prompt=prompt,
        seed=seed,
        frames=frames,
        width=size.width,
        height=size.height,
        fps=FPS,
        camera_fixed=camera_fixed,
        options=dict(request_options or {}),
    )
    renderer = registry.create(engine, engine_options)
    try:
        encode(
            renderer.render(request, on_progress),
            out,
            width=size.width,
            height=size.height,
            fps=request.fps,
            expected_frames=frames,
            pixel_format=renderer.pixel_format,
        )
    finally:
        renderer.close()
    info = probe(out)
    return GenerateResult(
        path=out,
        width=info.width,
        height=info.height,
        frames=info.frames,
        fps=info.fps,
        size_bytes=out.stat().st_size,
        seed=seed,
        seconds=time.perf_counter() - started,
    )


def _check_resolution(value: str) -> str:
    if value not in RESOLUTIONS:
        raise typer.BadParameter(f"must be one of {', '.join(RESOLUTIONS)}, got {value!r}")
    return value


def _check_frames(value: int) -> int:
    if value not in FRAME_CHOICES:
        choices = " or ".join(str(n) for n in FRAME_CHOICES)
        raise typer.BadParameter(f"must be {choices} (5 s or 10 s at {FPS} fps), got {value}")
    return value


def _check_engine(value: str) -> str:
    if value not in registry.ENGINES:
        raise typer.BadParameter(f"must be one of {', '.join(registry.ENGINES)}, got {value!r}")
    return value


def _check_seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(f"must be between 0 and {SEED_MAX}, got {value}")
    return value


def _check_options(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        key, sep, _ = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"must be KEY=VALUE, got {value!r}")
    return values


def _engine_options(
    pairs: list[str], weights: str | None, steps: int | None, guidance: float | None
) -> dict[str, Any]:
    """--option KEY=VALUE pairs (values read as TOML: 2, 0.1, true, else a string),
    then the named flags, which win."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            options[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            options[key.strip()] = raw
    named = {"weights": weights, "steps": steps, "guidance_scale": guidance}
    options.update({key: value for key, value in named.items() if value is not None})
    return options


@app.command()
def generate(
    image: Annotated[
        Path, typer.Argument(help="Input photo (JPEG, PNG or WebP).", exists=True, dir_okay=False)
    ],
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="What happens; camera language moves the camera.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MP4 file.", dir_okay=False)],
    resolution: Annotated[
        str, typer.Option(help="480p, 720p or 1080p (the short side).", callback=_check_resolution)
    ] = "720p",
    frames: Annotated[
        int, typer.Option(help="121 (5 s) or 241 (10 s) at 24 fps.", callback=_check_frames)
    ] = FRAME_CHOICES[0],
    seed: Annotated[
        int | None, typer.Option(help="Random seed; omitted: a random one.", callback=_check_seed)
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Engine name (see the registry).", callback=_check_engine)
    ] = "motion",
    camera_fixed: Annotated[
        bool, typer.Option("--camera-fixed", help="Lock the camera off (no camera motion).")
    ] = False,
    weights: Annotated[
        str | None,
        typer.Option(help="wan/ltx: weights folder (save_pretrained) or HF repo id in your cache."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="wan/ltx: denoising steps.", min=1)] = None,
    guidance: Annotated[
        float | None, typer.Option(help="wan/ltx: guidance scale (1.0: no CFG).", min=0.0)
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help="Engine option KEY=VALUE (repeatable), e.g. offload=model; see "
            "docs/generative-models.md.",
            callback=_check_options,
        ),
    ] = None,
) -> None:
    """Generate a video from IMAGE and a prompt, with a progress bar."""
    console = Console(stderr=True)
    chosen_seed = seed if seed is not None else random.SystemRandom().randint(0, SEED_MAX)
    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("starting", total=frames)
            result = generate_video(
                image,
                prompt,
                out,
                resolution=resolution,
                frames=frames,
                seed=chosen_seed,
                engine=engine,
                engine_options=_engine_options(option or [], weights, steps, guidance),
                camera_fixed=camera_fixed,
                on_progress=_progress_to(progress, task),
            )
    except I2VError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    typer.echo(str(result.path))
    typer.echo(
        f"{result.width}x{result.height}, {result.size_bytes / 1e6:.2f} MB, "
        f"{result.frames} frames at {result.fps:g} fps, seed {result.seed}, "
        f"{result.seconds:.1f} s"
    )


def _progress_to(progress: Progress, task: Any) -> Callable[[int, int, str], None]:
    def update(done: int, total: int, stage: str) -> None:
        description = "encoding" if done >= total else stage
        progress.update(task, completed=done, total=total, description=description)

    return update
