"""`i2v generate`: one image + prompt -> one MP4, locally, no server."""

from __future__ import annotations

import random
from collections.abc import Callable
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

from i2v.cli.pairs import VALUE_HELP, parse_pairs
from i2v.domain.errors import I2VError
from i2v.domain.geometry import RESOLUTIONS
from i2v.domain.job import Lora
from i2v.domain.request import FPS, FRAME_CHOICES, SEED_MAX
from i2v.engines import registry


def _check_resolution(value: str) -> str:
    if value not in RESOLUTIONS:
        raise typer.BadParameter(f"must be one of {', '.join(RESOLUTIONS)}, got {value!r}")
    return value


def _frames_at(fps: int, frames: int | None) -> int:
    """5 s (the default) or 10 s at `fps`, plus the input frame."""
    choices = (5 * fps + 1, 10 * fps + 1)
    if frames is None:
        return choices[0]
    if frames not in choices:
        raise typer.BadParameter(
            f"must be {choices[0]} or {choices[1]} (5 s or 10 s at {fps} fps), got {frames}",
            param_hint="--frames",
        )
    return frames


def _check_engine(value: str) -> str:
    if value not in registry.ENGINES:
        raise typer.BadParameter(f"must be one of {', '.join(registry.ENGINES)}, got {value!r}")
    return value


def _check_seed(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= SEED_MAX:
        raise typer.BadParameter(f"must be between 0 and {SEED_MAX}, got {value}")
    return value


def _check_options(values: list[str] | None) -> list[str] | None:
    try:
        parse_pairs(values or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return values


LORA_ENGINES = ("wan", "ltx")


def _parse_lora(value: str) -> Lora:
    """FILE or FILE:SCALE (scale 1.0 when omitted); the file must exist."""
    path, sep, raw = value.rpartition(":")
    scale = 1.0
    if sep:
        try:
            scale = float(raw)
        except ValueError:
            path = value  # a colon inside the path, no scale
    else:
        path = value
    if not Path(path).expanduser().is_file():
        raise typer.BadParameter(f"must be FILE[:SCALE] naming a LoRA file, got {value!r}")
    return Lora(str(Path(path).expanduser().resolve()), scale)


def _check_loras(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        _parse_lora(value)
    return values


def _with_loras(options: dict[str, Any], loras: tuple[Lora, ...]) -> dict[str, Any]:
    """The local user's own LoRA files need no operator allowlist: they join it."""
    if loras:
        allowlist = list(options.get("lora_allowlist", []))
        options["lora_allowlist"] = allowlist + [lora.path for lora in loras]
    return options


def _engine_options(pairs: list[str], weights: str | None) -> dict[str, Any]:
    """--option KEY=VALUE pairs (see `i2v.cli.pairs`), as a catalog route's options table;
    --weights wins over --option weights=."""
    options = parse_pairs(pairs)
    if weights is not None:
        options["weights"] = weights
    return options


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
        int | None,
        typer.Option(
            help=f"{FRAME_CHOICES[0]} (5 s, the default) or {FRAME_CHOICES[1]} (10 s) at "
            f"{FPS} fps; a model trained at another rate plays at that rate (Wan's 14B "
            "models: 16 fps, so 81 or 161).",
        ),
    ] = None,
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
    flow_shift: Annotated[
        float | None,
        typer.Option(
            help="wan: the sampler's flow shift; omitted: the model's official one.", min=0.0
        ),
    ] = None,
    negative_prompt: Annotated[
        str, typer.Option(help="wan/ltx: what to avoid; empty: the model's own default.")
    ] = "",
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            help=f"Engine option KEY=VALUE (repeatable), e.g. offload=model; {VALUE_HELP}. "
            "See docs/generative-models.md.",
            callback=_check_options,
        ),
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(
            "--lora",
            help="wan/ltx: a LoRA file, FILE[:SCALE] (scale 1.0 when omitted); repeatable.",
            callback=_check_loras,
        ),
    ] = None,
) -> None:
    """Generate a video from IMAGE and a prompt, with a progress bar."""
    # Imported here: `i2v --help` and the other commands need none of the render stack.
    from i2v.pipeline import generate_video, local_request

    console = Console(stderr=True)
    loras = tuple(_parse_lora(value) for value in lora or [])
    if loras and engine not in LORA_ENGINES:
        raise typer.BadParameter(
            f"only the {' and '.join(LORA_ENGINES)} engines take LoRAs, got --engine {engine}",
            param_hint="--lora",
        )
    options = _with_loras(_engine_options(option or [], weights), loras)
    try:
        # a model trained at one rate plays only at it (Wan 14B: 16 fps); others at 24
        native = registry.model_facts(engine, options)
    except I2VError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    fps = native.fps if native is not None else FPS
    frames = _frames_at(fps, frames)
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
            request = local_request(
                image,
                prompt,
                resolution=resolution,
                frames=frames,
                fps=fps,
                seed=chosen_seed,
                camera_fixed=camera_fixed,
                negative_prompt=negative_prompt,
                num_inference_steps=steps,
                guidance_scale=guidance,
                flow_shift=flow_shift,
                loras=loras,
                engine_options=options,
            )
            result = generate_video(request, engine, out, on_progress=_progress_to(progress, task))
    except I2VError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None
    video = result.video
    typer.echo(str(result.path))
    typer.echo(
        f"{video.width}x{video.height}, {result.size_bytes / 1e6:.2f} MB, "
        f"{video.frames} frames at {video.fps:g} fps, seed {chosen_seed}, "
        f"{result.seconds:.1f} s"
    )


def _progress_to(progress: Progress, task: Any) -> Callable[[int, int, str], None]:
    def update(done: int, total: int, stage: str) -> None:
        description = "encoding" if done >= total else stage
        progress.update(task, completed=done, total=total, description=description)

    return update
