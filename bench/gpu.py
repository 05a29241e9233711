"""GPU benchmark of the diffusers engines: a smoke run of every option on tiny models,
and load, s/step, decode, encode and peak memory on real weights.

    python bench/gpu.py --smoke [--device cpu] [--only wan-ti2v,ltx] [--options lora,fp8]
    python bench/gpu.py --model wan=/models/Wan2.2-TI2V-5B-Diffusers \\
                        --model ltx=/models/LTX-Video-0.9.8-13B-distilled [--steps 8]
    python bench/gpu.py --catalog my-catalog.toml   # every wan/ltx route in it

`--smoke` builds the real-shaped tiny pipelines (tests/e2e/diffusers/tiny.py) and
renders each through the real engine (a spawned child per case) with each option:
bf16 with the fp32 VAE, float16, compile, the step caches, every offload mode, a
LoRA, fp8 and the attention kernels. It prints one row per model and option (ok,
refused at load with CatalogError, skipped with the reason, or failed; seconds;
peak GPU MiB) and exits 1 if any accepted option failed. Several cases run at once
(`--jobs`); a case still running after `--case-timeout` has its child killed and fails.
Unattended and meant to finish in under 5 minutes on one GPU. `--device cpu` runs it here:
what a CPU cannot do (offload, compile, float16, flash/sage kernels, torchao fp8) is
skipped with the reason. On a CUDA machine without `--model` or `--catalog` (`make
bench`), the smoke is what runs.

With `--model`/`--catalog`, for each model, at 480p and 720p (5 s of video at the
model's native fps), it renders once with the route's options ("baseline") and once
per speed option turned on, each through the real engine. Times come from the
engine's progress events: s/step is the median step after the first (which includes
compile and warm-up), decode is the time from the last step to the decoded video,
encode is i2v.video's x264 encode of the frames. The table replaces the
`## GPU (bench/gpu.py)` section of docs/benchmarks.md. Without CUDA it says so, exits
0, and (only when the section is missing) writes a section saying the table is
pending a GPU run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import DOC, write_section

ROOT = Path(__file__).resolve().parents[1]
# the tiny real-shaped pipelines are the tests' builders, shared rather than copied
TINY = ROOT / "tests" / "e2e" / "diffusers"
SECTION = "## GPU (bench/gpu.py)"
COMMAND = "python bench/gpu.py --model wan=DIR [--model ltx=DIR] [--steps N]"
SIZES = {"480p": (854, 480), "720p": (1280, 720)}
SECONDS = 5  # video length per real-weights render, at the model's native fps
PROMPT = "the camera slowly pushes in on a city street at sunset"
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
    peak_gib: float = 0.0  # peak GPU memory (torch.cuda.max_memory_allocated in the child)
    error: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every option on tiny models")
    parser.add_argument("--device", default="", help="smoke: cuda (default when present) or cpu")
    parser.add_argument("--only", default="", help="smoke: tiny models, e.g. wan-ti2v,ltx")
    parser.add_argument("--options", default="", help="smoke: option names, e.g. lora,fp8")
    parser.add_argument("--jobs", type=int, default=0, help="smoke: cases at once (0: auto)")
    parser.add_argument("--case-timeout", type=float, default=180.0, help="smoke: seconds")
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
    cuda = torch is not None and torch.cuda.is_available()
    models = _models(args.model, args.catalog)
    if cuda and not models and not args.smoke:
        # `make bench` on a GPU machine without weights: check every option on tiny models
        print("bench/gpu.py: no --model or --catalog given; running --smoke instead")
        args.smoke = True
    if args.smoke:
        device = args.device or ("cuda" if cuda else "")
        if not device:
            print("bench/gpu.py --smoke: no CUDA device here; add --device cpu (exit 0).")
            return 0
        return smoke(
            device,
            only=_names(args.only),
            chosen=_names(args.options),
            jobs=args.jobs,
            case_timeout=args.case_timeout,
        )
    if not cuda:
        print("bench/gpu.py: no CUDA device here; nothing to measure (exit 0).")
        if not args.doc.exists() or SECTION not in args.doc.read_text(encoding="utf-8"):
            write_section(SECTION, _pending(), args.doc)
        return 0

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


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _measure(
    name: str,
    engine: str,
    options: dict[str, Any],
    size: str,
    variant: str,
    steps: int,
    frames: int = 0,
    warm: Any = None,
) -> Row:
    """One render of `frames` (0: SECONDS of video at the model's native fps); `warm`:
    an already started engine to use instead of a new one."""
    from i2v.engines import registry
    from i2v.video.encode import encode

    row = Row(name, size, variant)
    width, height = SIZES[size]
    settings = options | VARIANTS[variant] | {"steps": steps, "resolution": size}
    events: list[tuple[float, int, str]] = []
    engine_object = warm or registry.create(engine, settings)
    try:
        fps = native_fps(engine_object)
        request = bench_request(width, height, frames or SECONDS * fps + 1, fps, steps=steps)
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


def native_fps(engine: Any) -> int:
    """The fps a request to `engine` must ask for: a Wan model's training rate (read
    from its weights' configs; the engine refuses any other), 24 for LTX, which takes
    the rate as conditioning."""
    from i2v.engines.diffusers.variants import read_variant

    options = engine.options
    variant = read_variant(options.weights, options.cache_dir) if engine.family == "wan" else None
    return variant.fps if variant is not None else 24


def bench_request(
    width: int,
    height: int,
    frames: int,
    fps: int,
    *,
    steps: int | None = None,
    last_image: bool = False,
) -> Any:
    """A GenerationRequest with a seeded random photo (and last frame)."""
    import numpy as np

    from i2v.domain.job import JobSpec
    from i2v.domain.request import GenerationRequest

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    last = rng.integers(0, 256, (height, width, 3), dtype=np.uint8) if last_image else None
    spec = JobSpec(
        image_key="bench",
        prompt=PROMPT,
        seed=0,
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        last_image_key="bench-last" if last_image else None,
        num_inference_steps=steps,
    )
    return GenerationRequest(spec=spec, image=image, last_image=last)


# -- smoke: every option on the tiny models ---------------------------------------------

NO_OFFLOAD_ON_CPU = "offload moves weights between CPU and GPU memory; a CPU has no GPU"


@dataclass(frozen=True)
class SmokeOption:
    """One option (or option set) the smoke renders every tiny model with."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    cpu_skip: str = ""  # why a CPU cannot run it; "": it runs on CPU too
    lora: bool = False  # add a LoRA built for the model's transformer(s)


SMOKE_OPTIONS = (
    # bf16 transformer and text encoder; the engine loads Wan's VAE and CLIP in fp32
    SmokeOption("bf16", {"dtype": "bfloat16"}),
    SmokeOption("float16", {"dtype": "float16"}, "float16 kernels are CUDA's; CPU runs fp32/bf16"),
    SmokeOption(
        "compile", {"compile": True}, "regional torch.compile is checked where it pays: CUDA"
    ),
    SmokeOption("first_block_cache", {"first_block_cache": 0.1}),
    # interval 2 with 6 steps: full forwards on steps 1-3 (always) and 5, predicted between
    SmokeOption("taylorseer_cache", {"taylorseer_cache": 2, "steps": 6}),
    SmokeOption("offload=none", {"offload": "none"}),
    SmokeOption("offload=model", {"offload": "model"}, NO_OFFLOAD_ON_CPU),
    SmokeOption("offload=group", {"offload": "group"}, NO_OFFLOAD_ON_CPU),
    SmokeOption("offload=sequential", {"offload": "sequential"}, NO_OFFLOAD_ON_CPU),
    SmokeOption("lora", lora=True),
    SmokeOption("fp8=layerwise", {"fp8": "layerwise"}),
    SmokeOption(
        "fp8=torchao", {"fp8": "torchao"}, "torchao's float8 matmuls need a CUDA GPU (SM 8.9+)"
    ),
    SmokeOption(
        "attention=flash", {"attention_backend": "flash"}, "FlashAttention kernels are CUDA-only"
    ),
    SmokeOption(
        "attention=sage", {"attention_backend": "sage"}, "SageAttention kernels are CUDA-only"
    ),
)
FAMILIES = {"wan-ti2v": "wan", "wan-a14b": "wan", "wan-i2v": "wan", "wan-flf2v": "wan"}
SMOKE_SIZE = (64, 48)  # the request's output size; each model renders its tiny area
SMOKE_FRAMES = {"wan": 5, "ltx": 9}  # one 4k+1 / 8k+1 segment


@dataclass
class SmokeRow:
    model: str
    option: str
    result: str = "ok"  # ok | refused | skipped | failed
    seconds: float = 0.0
    peak_mib: float = 0.0
    detail: str = ""


@dataclass
class SmokeCase:
    """One model rendered with one option; `engine` is set while its child may run."""

    model: str
    option: SmokeOption
    folder: Path
    lora: str = ""
    engine: Any = None
    started: float = 0.0
    timed_out: bool = False


def smoke(
    device: str,
    *,
    only: tuple[str, ...] = (),
    chosen: tuple[str, ...] = (),
    jobs: int = 0,
    case_timeout: float = 180.0,
) -> int:
    """Render every tiny model with every option on `device`; print the table; 1 if any
    option the catalog accepted failed, else 0."""
    if str(TINY) not in sys.path:
        sys.path.insert(0, str(TINY))
    import tiny

    models = only or tuple(tiny.BUILDERS)
    options = [o for o in SMOKE_OPTIONS if not chosen or o.name in chosen]
    unknown = sorted(set(models) - set(tiny.BUILDERS)) + sorted(
        set(chosen) - {o.name for o in SMOKE_OPTIONS}
    )
    if unknown:
        print(
            f"bench/gpu.py --smoke: unknown {unknown}; models: {sorted(tiny.BUILDERS)}, "
            f"options: {[o.name for o in SMOKE_OPTIONS]}",
            file=sys.stderr,
        )
        return 2
    if device == "cpu":
        # many children at once on few cores: one thread each (spawned children inherit it)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = jobs or max(1, min(8, (os.cpu_count() or 2) // 2))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="i2v-smoke-") as scratch:
        root = Path(scratch)
        folders = {name: tiny.BUILDERS[name](root / name) for name in models}
        loras = {
            name: tiny.build_tiny_lora(folders[name], root / f"{name}-lora.safetensors")
            for name in models
            if any(o.lora for o in options)
        }
        cases = [
            SmokeCase(name, option, folders[name], loras.get(name, ""))
            for name in models
            for option in options
        ]
        rows = _run_cases(cases, device, jobs, case_timeout)
    print(smoke_table(rows, device, time.perf_counter() - started))
    return exit_status(rows)


def exit_status(rows: list[SmokeRow]) -> int:
    """1 if an option the catalog accepted failed to load or render, else 0 (refused and
    skipped options are reported, not failures)."""
    return 1 if any(row.result == "failed" for row in rows) else 0


def _run_cases(cases: list[SmokeCase], device: str, jobs: int, timeout: float) -> list[SmokeRow]:
    """Run the cases `jobs` at a time; kill the child of any case past `timeout`."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: list[Future[SmokeRow]] = [pool.submit(smoke_case, case, device) for case in cases]
        while not all(future.done() for future in futures):
            now = time.perf_counter()
            for case, future in zip(cases, futures, strict=True):
                if case.started and not future.done() and now - case.started > timeout:
                    # again on every poll: the child may not have been spawned yet
                    _kill(case)
            time.sleep(0.5)  # a watchdog's poll interval, not a wait for a result
        return [future.result() for future in futures]


_lock = threading.Lock()


def _kill(case: SmokeCase) -> None:
    """Kill the case's engine child, if it has one alive: its render then fails with
    EngineCrashed, which the case reports as timed out."""
    with _lock:
        pid = case.engine.pid if case.engine is not None else None
        case.timed_out = True
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.kill(pid, signal.SIGKILL)


def smoke_case(case: SmokeCase, device: str) -> SmokeRow:
    """Load and render one tiny model with one option through the real engine."""
    import numpy as np

    from i2v.domain.catalog import CatalogError
    from i2v.engines import registry

    row = SmokeRow(case.model, case.option.name)
    if device == "cpu" and case.option.cpu_skip:
        row.result, row.detail = "skipped", case.option.cpu_skip
        return row
    import tiny

    family = FAMILIES.get(case.model, "ltx")
    settings = tiny.tiny_options(case.model, case.folder, device=device) | dict(case.option.options)
    if case.option.lora:
        expert = "both" if case.model == "wan-a14b" else "high"  # both A14B experts
        settings["loras"] = [{"path": case.lora, "expert": expert}]
    case.started = time.perf_counter()
    try:
        with _lock:
            case.engine = registry.create(family, settings)
        fps = native_fps(case.engine)
        width, height = SMOKE_SIZE
        request = bench_request(
            width, height, SMOKE_FRAMES[family], fps, last_image=case.model == "wan-flf2v"
        )
        video = np.stack(list(case.engine.render(request, lambda done, total, stage: None)))
        done = case.engine.last_done
        row.peak_mib = done.peak_memory_bytes / 1024**2 if done else 0.0
        if video.std() == 0:  # NaNs decode to one flat colour
            row.result, row.detail = "failed", "every frame is one flat colour (NaN latents?)"
        else:
            # what the child loaded and how, less the scratch folder's name
            row.detail = re.sub(r" from \S+", "", case.engine.description)
    except CatalogError as exc:
        row.result, row.detail = "refused", str(exc)
    except Exception as exc:  # any other failure is the row's result
        row.result = "failed"
        row.detail = f"{type(exc).__name__}: {exc}"
        if case.timed_out:
            row.detail = f"timed out after {time.perf_counter() - case.started:.0f} s; " + (
                row.detail
            )
    finally:
        row.seconds = time.perf_counter() - case.started
        with _lock:
            engine, case.engine = case.engine, None
        if engine is not None:
            engine.close()
    return row


def smoke_table(rows: list[SmokeRow], device: str, seconds: float) -> str:
    counts = {r: sum(row.result == r for row in rows) for r in ("ok", "refused", "skipped")}
    failed = sum(row.result == "failed" for row in rows)
    lines = [
        f"bench/gpu.py --smoke on {device}: {len(rows)} cases in {seconds:.0f} s; "
        + ", ".join(f"{n} {r}" for r, n in counts.items())
        + f", {failed} failed",
        "",
        "| model | option | result | seconds | peak GPU MiB | detail |",
        "|---|---|---|---:|---:|---|",
    ]
    for row in rows:
        seconds_cell = f"{row.seconds:.1f}" if row.result != "skipped" else ""
        peak = f"{row.peak_mib:.0f}" if row.result == "ok" and device != "cpu" else ""
        detail = row.detail.replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {row.model} | {row.option} | {row.result} | {seconds_cell} | {peak} | "
            f"{detail[:300]} |"
        )
    return "\n".join(lines)


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
        f"{gpu}, {SECONDS} s of video at each model's native fps, {steps} steps per render, "
        f"measured by `{COMMAND}` on {time.strftime('%Y-%m-%d')}. s/step is the median "
        "step after the first; peak is torch.cuda.max_memory_allocated in the engine's child.",
        "",
        "| model | size | variant | load s | s/step | decode s | encode s | peak GPU GiB |",
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
        "memory per model at 480p and 720p (5 s of video at the model's native fps), with and "
        "without each speed option. `python bench/gpu.py --smoke` checks every option on "
        "tiny models first (a few minutes, no weights).\n"
    )


if __name__ == "__main__":
    sys.exit(main())
