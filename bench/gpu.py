"""GPU benchmark of the diffusers engines: load, s/step, decode, encode, peak memory.

    python bench/gpu.py --model wan=/models/Wan2.2-TI2V-5B-Diffusers \\
                        --model ltx=/models/LTX-Video-0.9.8-distilled [--steps 8]
    python bench/gpu.py --catalog my-catalog.toml   # every wan/ltx route in it

For each model, at 480p and 720p (121 frames), it renders once with the
route's options ("baseline") and once per speed option turned on (model or
group offload, VAE tiling off/on, regional compile, first-block cache, flash
attention), each through the real engine: a spawned child process that loads
the pipeline. Times come from the engine's progress events: s/step is the
median step after the first (which includes compile and warm-up), decode is
the time from the last step to the decoded video, encode is i2v.video's x264
encode of the frames. The table replaces the `## GPU (bench/gpu.py)` section
of docs/benchmarks.md. Without CUDA it says so, exits 0, and (only when the
section is missing) writes a section saying the table is pending a GPU run.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import DOC, write_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## GPU (bench/gpu.py)"
COMMAND = "python bench/gpu.py --model wan=DIR [--model ltx=DIR] [--steps N]"
SIZES = {"480p": (854, 480), "720p": (1280, 720)}
FRAMES = 121
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "offload=model": {"offload": "model"},
    "offload=group": {"offload": "group"},
    "vae_tiling=off": {"vae_tiling": False},
    "vae_tiling=on": {"vae_tiling": True},
    "compile": {"compile": True},
    "first_block_cache=0.1": {"first_block_cache": 0.1},
    "attention=flash": {"attention_backend": "flash"},
}


@dataclass
class Row:
    model: str
    size: str
    variant: str
    load_s: float = 0.0
    step_s: float = 0.0
    decode_s: float = 0.0
    encode_s: float = 0.0
    peak_gib: float = 0.0
    error: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="ENGINE=WEIGHTS (repeat)")
    parser.add_argument("--catalog", type=Path, help="take wan/ltx routes from this catalog")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps per render")
    parser.add_argument("--sizes", default="480p,720p")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)

    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA device here; nothing to measure (exit 0).")
        if not args.doc.exists() or SECTION not in args.doc.read_text(encoding="utf-8"):
            write_section(SECTION, _pending(), args.doc)
        return 0

    models = _models(args.model, args.catalog)
    if not models:
        print(
            "bench/gpu.py: no models given; use --model wan=DIR or --catalog FILE", file=sys.stderr
        )
        return 2
    gpu = torch.cuda.get_device_name(0)
    rows: list[Row] = []
    for name, engine, options in models:
        for size in args.sizes.split(","):
            for variant in args.variants.split(","):
                row = _measure(name, engine, options, size, variant, args.steps)
                print(_line(row), flush=True)
                rows.append(row)
    write_section(SECTION, _table(rows, gpu, args.steps), args.doc)
    print(f"wrote {args.doc.relative_to(ROOT) if args.doc.is_relative_to(ROOT) else args.doc}")
    return 0


def _measure(
    name: str,
    engine: str,
    options: dict[str, Any],
    size: str,
    variant: str,
    steps: int,
    frames: int = FRAMES,
    warm: Any = None,
) -> Row:
    """One render; `warm`: an already started engine to use instead of a new one."""
    import numpy as np

    from i2v.domain.job import JobSpec
    from i2v.domain.request import GenerationRequest
    from i2v.engines import registry
    from i2v.video.encode import encode

    row = Row(name, size, variant)
    width, height = SIZES[size]
    settings = options | VARIANTS[variant] | {"steps": steps, "resolution": size}
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    spec = JobSpec(
        image_key="bench",
        prompt="the camera slowly pushes in on a city street at sunset",
        seed=0,
        width=width,
        height=height,
        frames=frames,
        fps=24,
        num_inference_steps=steps,
        engine_options=settings,
    )
    request = GenerationRequest(spec=spec, image=image)
    events: list[tuple[float, int, str]] = []
    engine_object = warm or registry.create(engine, settings)
    try:
        started = time.perf_counter()
        engine_object.start()  # type: ignore[attr-defined]
        row.load_s = time.perf_counter() - started
        video = list(
            engine_object.render(
                request,
                lambda done, total, stage: events.append((time.perf_counter(), done, stage)),
            )
        )
        done = engine_object.last_done  # type: ignore[attr-defined]
        row.peak_gib = done.peak_memory_bytes / 1024**3 if done else 0.0
        step_times = [t for t, _, stage in events if stage == "denoising"]
        gaps = [b - a for a, b in itertools.pairwise(step_times)]
        row.step_s = statistics.median(gaps[1:] or gaps or [0.0])
        decoded = [t for t, _, stage in events if stage == "decoded"]
        row.decode_s = decoded[-1] - step_times[-1] if decoded and step_times else 0.0
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            encode(video, Path(folder) / "out.mp4", width=width, height=height)
            row.encode_s = time.perf_counter() - started
    except Exception as exc:  # a variant that fails (no flash kernels, OOM) is a table row
        row.error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        if warm is None:
            engine_object.close()
    return row


def _models(specs: list[str], catalog: Path | None) -> list[tuple[str, str, dict[str, Any]]]:
    models: list[tuple[str, str, dict[str, Any]]] = []
    for spec in specs:
        engine, _, weights = spec.partition("=")
        models.append((f"{engine}:{Path(weights).name}", engine, {"weights": weights}))
    if catalog is not None:
        from i2v.domain.catalog import parse_catalog

        for route in parse_catalog(catalog.read_text(encoding="utf-8"), str(catalog)):
            if route.engine in ("wan", "ltx"):
                models.append((route.path, route.engine, dict(route.options)))
    return models


def _line(row: Row) -> str:
    if row.error:
        return f"{row.model} {row.size} {row.variant}: FAILED {row.error}"
    return (
        f"{row.model} {row.size} {row.variant}: load {row.load_s:.1f} s, "
        f"{row.step_s:.2f} s/step, decode {row.decode_s:.1f} s, encode {row.encode_s:.1f} s, "
        f"peak {row.peak_gib:.1f} GiB"
    )


def _table(rows: list[Row], gpu: str, steps: int) -> str:
    lines = [
        SECTION,
        "",
        f"{gpu}, {FRAMES} frames, {steps} steps per render, measured by `{COMMAND}` "
        f"on {time.strftime('%Y-%m-%d')}. s/step is the median step after the first.",
        "",
        "| model | size | variant | load s | s/step | decode s | encode s | peak GiB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {r.size} | {r.variant} | failed: {r.error} | | | | |")
        else:
            lines.append(
                f"| {r.model} | {r.size} | {r.variant} | {r.load_s:.1f} | {r.step_s:.2f} | "
                f"{r.decode_s:.1f} | {r.encode_s:.1f} | {r.peak_gib:.1f} |"
            )
    return "\n".join(lines) + "\n"


def _pending() -> str:
    return (
        f"{SECTION}\n\n"
        "Pending a GPU run: no CUDA device was available where this was written. On a GPU "
        "machine with weights downloaded (see docs/generative-models.md), run\n\n"
        f"    {COMMAND}\n\n"
        "to fill this section with load time, seconds per step, decode, encode and peak GPU "
        "memory per model at 480p and 720p (121 frames), with and without each speed option.\n"
    )


if __name__ == "__main__":
    sys.exit(main())
