"""Benchmark of the motion engine against the encoder floor and ffmpeg's zoompan.

    python bench/engine.py [--rounds N] [--no-write]

(a) encode only: 121 pre-rendered 1080p I420 frames through `i2v.video.encode` (the floor:
    x264 and the muxer, nothing else); (a') the same frames as RGB, which the encoder
    converts to I420 itself (the floor of an RGB engine).
(b) `i2v generate` end to end at 1080p/121 frames: `i2v.pipeline.generate_video`, the
    function the CLI command calls (decode, render, encode, probe), in this process. The
    real CLI is also run once as a subprocess, for its wall time with interpreter start-up.
(c) ffmpeg's zoompan doing the same push-in (same zoom curve, same x264 settings), plain
    and in the common "upscale first" anti-jitter form.

Then the peak RSS of the real CLI at 1080p/241 frames (a child process, from wait4), and a
jitter figure for (b) and (c) on a linear (un-eased) push-in; see JITTER below.
Results go to stdout and to docs/benchmarks.md, section "## Engine (bench/engine.py)".
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import imageio_ffmpeg
import numpy as np

from i2v.cli.samples import sample_photo
from i2v.domain.request import PixelFormat
from i2v.engines.base import no_progress
from i2v.engines.motion import MotionEngine
from i2v.engines.motion.path import PUSH_ZOOM
from i2v.pipeline import generate_video, local_request
from i2v.video import DEFAULT_SETTINGS, encode
from report import DOC, machine, write_section

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Engine (bench/engine.py)"
WIDTH, HEIGHT, FRAMES, SEED = 1920, 1080, 121, 1
PROMPT = "push in"
END_ZOOM = 1 + PUSH_ZOOM  # the engine's normal push-in over 121 frames

JITTER = """\
Jitter: each video is decoded to grey; nine 256x256 patches sit at fixed screen positions
(x at 20/50/80 % of the width, y at 25/50/75 % of the height). For every pair of consecutive
frames, `cv2.phaseCorrelate` (Hanning window) measures each patch's shift (dx, dy). A push-in
whose zoom grows by a constant factor per frame moves every fixed screen point by a constant
increment per frame, so an ideal renderer gives a constant (dx, dy) per patch. The figure is
the standard deviation of the increments over the 120 frame pairs, sqrt(std(dx)^2 +
std(dy)^2), averaged over the nine patches, in output pixels: 0 is perfectly smooth;
whole-pixel stepping shows up as tenths of a pixel or more. It is measured on a linear (not
eased) push-in to 1.25x, exponential in time, for (b) and for both zoompan forms."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median shown)")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    args = parser.parse_args()

    photo = sample_photo()
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="i2v-bench-") as tmp:
        work = Path(tmp)
        frames = prerender(photo, "yuv420p")
        rgb_frames = prerender(photo, "rgb24")
        timings: dict[str, list[tuple[float, float]]] = {}

        def timed(name: str, run: Callable[[], float | None]) -> None:
            start, cpu = time.perf_counter(), _cpu()
            child_cpu = run()
            wall = time.perf_counter() - start
            used = child_cpu if child_cpu is not None else _cpu() - cpu
            timings.setdefault(name, []).append((wall, used))
            print(f"  {name}: {wall:.2f} s wall, {used:.2f} s CPU", flush=True)

        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}", flush=True)
            timed("a", lambda: _encode_only(frames, work / "a.mp4", "yuv420p"))
            timed("a_rgb", lambda: _encode_only(rgb_frames, work / "a_rgb.mp4", "rgb24"))
            timed("b", lambda: _generate(photo, work / "b.mp4", {}))
            timed("c1", lambda: _zoompan(ffmpeg, photo, work / "c1.mp4", upscale=False))
            timed("c2", lambda: _zoompan(ffmpeg, photo, work / "c2.mp4", upscale=True))
            # The CLI as a user runs it: a fresh process, interpreter start-up and imports in.
            timed("cli", lambda: _cli(photo, work / "cli.mp4", FRAMES)[1])
        frames.clear()  # free ~1.1 GB before the child runs
        rgb_frames.clear()

        rss = _cli(photo, work / "cli241.mp4", 241)

        # Jitter on an un-eased push-in; the timed runs above use the default easing.
        _generate(photo, work / "b_linear.mp4", {"easing": "linear"})
        jitter = {
            "b": jitter_of(work / "b_linear.mp4"),
            "c1": jitter_of(work / "c1.mp4"),
            "c2": jitter_of(work / "c2.mp4"),
        }

    report = render_report(timings, rss, jitter, ffmpeg, load, args.rounds)
    print()
    print(report)
    if not args.no_write:
        write_section(HEADING, report)
        print(f"\nwritten to {DOC.relative_to(ROOT)}")


def prerender(photo: Path, pixel_format: PixelFormat) -> list[np.ndarray]:
    request = local_request(photo, PROMPT, resolution="1080p", frames=FRAMES, seed=SEED)
    assert (request.width, request.height) == (WIDTH, HEIGHT)
    return list(MotionEngine({"pixel_format": pixel_format}).render(request, no_progress))


def _encode_only(frames: list[np.ndarray], out: Path, pixel_format: PixelFormat) -> None:
    encode(
        iter(frames),
        out,
        width=WIDTH,
        height=HEIGHT,
        expected_frames=FRAMES,
        pixel_format=pixel_format,
    )


def _generate(photo: Path, out: Path, options: dict[str, object]) -> None:
    request = local_request(
        photo, PROMPT, resolution="1080p", frames=FRAMES, seed=SEED, engine_options=options
    )
    generate_video(request, "motion", out)


def zoompan_filter(upscale: bool) -> str:
    # The engine's push-in: zoom END_ZOOM ** (n / 120), about the centre. zoompan's own
    # variables: `on` is the output frame number, iw/ih the (scaled) input size.
    zoom = f"pow({END_ZOOM},on/{FRAMES - 1})"
    pan = (
        f"zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
        f":d={FRAMES}:s={WIDTH}x{HEIGHT}:fps=24"
    )
    return f"scale=8000:-1,{pan}" if upscale else pan


def zoompan_command(ffmpeg: str, photo: Path, out: Path, upscale: bool) -> list[str]:
    s = DEFAULT_SETTINGS
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(photo),
        "-vf", zoompan_filter(upscale), "-frames:v", str(FRAMES),
        "-c:v", "libx264", "-preset", s.preset, "-crf", str(s.crf), "-threads", str(s.threads),
        "-x264-params", s.x264_params, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
        str(out),
    ]  # fmt: skip


def _zoompan(ffmpeg: str, photo: Path, out: Path, *, upscale: bool) -> float:
    _, cpu = _run_child(zoompan_command(ffmpeg, photo, out, upscale))
    return cpu


def _cli_command(photo: Path, out: Path, frames: int) -> list[str]:
    return [
        sys.executable, "-m", "i2v", "generate", str(photo), "--prompt", PROMPT,
        "--out", str(out), "--resolution", "1080p", "--frames", str(frames),
        "--seed", str(SEED),
    ]  # fmt: skip


def _cli(photo: Path, out: Path, frames: int) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of the real CLI in a child process."""
    start = time.perf_counter()
    rss, cpu = _run_child(_cli_command(photo, out, frames))
    return time.perf_counter() - start, cpu, rss


# A small launcher runs each child: wait4's peak RSS counts what a child maps before it
# execs, and a child forked straight from this process (hundreds of MB of frames and x264
# buffers) would report this process's size rather than its own.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)
"""


def _run_child(command: list[str]) -> tuple[int, float]:
    """Run a child to completion; its own peak RSS (bytes) and CPU seconds, from wait4."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *command], capture_output=True, text=True, check=True
    )
    code, rss, cpu = done.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"failed ({code}): {' '.join(command)}")
    return int(rss), float(cpu)


def jitter_of(path: Path) -> float:
    with av.open(str(path)) as container:
        grey = [f.to_ndarray(format="gray").astype(np.float64) for f in container.decode(video=0)]
    size = 256
    window = cv2.createHanningWindow((size, size), cv2.CV_64F)
    figures = []
    for fx in (0.2, 0.5, 0.8):
        for fy in (0.25, 0.5, 0.75):
            x0, y0 = int(fx * WIDTH) - size // 2, int(fy * HEIGHT) - size // 2
            patches = [g[y0 : y0 + size, x0 : x0 + size] for g in grey]
            steps = np.array(
                [cv2.phaseCorrelate(a, b, window)[0] for a, b in itertools.pairwise(patches)]
            )
            figures.append(float(np.hypot(steps[:, 0].std(), steps[:, 1].std())))
    return float(np.mean(figures))


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def render_report(
    timings: dict[str, list[tuple[float, float]]],
    rss: tuple[float, float, int],
    jitter: dict[str, float],
    ffmpeg: str,
    load: float,
    rounds: int,
) -> str:
    wall = {name: statistics.median(w for w, _ in runs) for name, runs in timings.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in timings.items()}
    a, b, c1, c2 = wall["a"], wall["b"], wall["c1"], wall["c2"]
    s = DEFAULT_SETTINGS
    ffmpeg_version = subprocess.run(
        [ffmpeg, "-version"], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    rows = [
        ("(a) encode only, 121 pre-rendered I420 frames (floor)", "a", "-"),
        ("(a') encode only, the same frames as RGB (converted by the encoder)", "a_rgb", "-"),
        ("(b) `i2v generate` end to end (in-process `generate_video`)", "b", f"{jitter['b']:.3f}"),
        ("(c) ffmpeg zoompan, plain", "c1", f"{jitter['c1']:.3f}"),
        ("(c') ffmpeg `scale=8000:-1,zoompan` (upscale first)", "c2", f"{jitter['c2']:.3f}"),
        ("`i2v generate` CLI as a fresh process (with Python start-up and imports)", "cli", "-"),
    ]
    table = [
        "| Run (1080p, 121 frames, push-in) | wall s | CPU s | jitter px |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {wall[k]:.2f} | {cpu[k]:.2f} | {j} |" for label, k, j in rows),
    ]
    targets = [
        "| Target | Met | Measured |",
        "|---|---|---|",
        f"| b/a <= 1.3 | {_yes(b / a <= 1.3)} | {b / a:.2f} (CPU {cpu['b'] / cpu['a']:.2f}); "
        f"over the RGB floor (a'): {b / wall['a_rgb']:.2f} (CPU {cpu['b'] / cpu['a_rgb']:.2f}) |",
        f"| CLI (fresh process)/a <= 1.3 | {_yes(wall['cli'] / a <= 1.3)} "
        f"| {wall['cli'] / a:.2f} (CPU {cpu['cli'] / cpu['a']:.2f}) |",
        f"| b faster than plain zoompan | {_yes(b < c1)} | b/c = {b / c1:.2f} |",
        f"| b faster than upscale-first zoompan | {_yes(b < c2)} | b/c' = {b / c2:.2f} |",
        f"| peak RSS of the CLI at 241 frames <= 400 MB | {_yes(rss[2] <= 400e6)} "
        f"| {rss[2] / 1e6:.0f} MB ({rss[0]:.1f} s wall) |",
        f"| jitter of b >= 10x lower than plain zoompan | {_yes(jitter['c1'] >= 10 * jitter['b'])} "
        f"| {jitter['c1'] / max(jitter['b'], 1e-9):.0f}x lower "
        f"(upscale-first: {jitter['c2'] / max(jitter['b'], 1e-9):.1f}x) |",
    ]
    command = " ".join(zoompan_command("ffmpeg", Path("coffee.jpg"), Path("out.mp4"), False))
    today = datetime.date.today().isoformat()
    return "\n".join(
        [
            HEADING,
            "",
            "Measured with `python bench/engine.py` (also run by `make bench`) on "
            f"{machine()}, {today}; 1-minute load average "
            f"{load:.1f} when measuring began (other work shared the machine, so wall times are "
            "noisy; CPU seconds much less so). "
            f"Median of {rounds} interleaved rounds. Input: the bundled `coffee.jpg` (600x338). "
            f"Encoder for every row: libx264 `{s.preset}`, crf {s.crf}, {s.threads} frame "
            f"threads, `{s.x264_params}`, yuv420p, `+faststart`; ffmpeg from imageio-ffmpeg "
            f"({ffmpeg_version}).",
            "",
            "(b) is the function the `i2v generate` command calls, run in the benchmark "
            "process (decode the JPEG, render, encode, probe), with the motion engine's "
            "default I420 output going to the encoder unconverted, as in the CLI and the "
            "service; the CLI subprocess row adds "
            "interpreter start-up and imports. (c) uses the engine's zoom curve, "
            f"{END_ZOOM}^(n/120) about the centre (the engine zooms about a seed-chosen point "
            "within 6 % of the centre). Plain zoompan command:",
            "",
            f"    {command}",
            "",
            "the upscale-first form puts `scale=8000:-1,` in front of the filter. CPU s of the "
            "in-process rows are this process's user+system time; of the children, wait4's.",
            "",
            *table,
            "",
            *targets,
            "",
            _speed_note(wall, cpu, jitter),
            "",
            JITTER,
            "",
        ]
    )


def _speed_note(wall: dict[str, float], cpu: dict[str, float], jitter: dict[str, float]) -> str:
    per_frame_ms = (cpu["b"] - cpu["a"]) / FRAMES * 1000
    ratio = f"b/c = {wall['b'] / wall['c1']:.2f}, CPU {cpu['b'] / cpu['c1']:.2f}"
    if wall["b"] < wall["c1"]:
        verdict = f"(b) beats plain zoompan in this run ({ratio})."
    elif wall["b"] < 1.02 * wall["c1"]:
        verdict = f"(b) ties with plain zoompan in this run ({ratio}), so the target is not met."
    else:
        verdict = f"(b) is slower than plain zoompan in this run ({ratio}): the target is missed."
    return (
        "Where the time goes: every row is dominated by the same x264 encode, which keeps "
        "both cores busy, so what a renderer costs shows up almost one for one in wall time. "
        "Plain zoompan's rendering is nearly free (it crops whole pixels of the small photo and "
        "lets swscale enlarge them), which is exactly where its jitter comes from. (b) spends "
        f"about {per_frame_ms:.1f} ms of CPU per frame over the I420 encoder floor (per frame, "
        "float-matrix bilinear `warpAffine`s of the Y plane at full size and of U and V at "
        "half size, written straight into the frame x264 takes; once, decoding the photo, "
        "preparing the source and converting it to I420 planes; then probing the output). "
        f"{verdict} In exchange its jitter is "
        f"{jitter['c1'] / max(jitter['b'], 1e-9):.0f}x lower than plain zoompan's; the "
        f"upscale-first form that fixes most of the jitter costs {wall['c2'] / wall['b']:.2f}x "
        "the time of (b) and still jitters "
        f"{jitter['c2'] / max(jitter['b'], 1e-9):.1f}x more. (b)'s own figure is mostly the "
        "phase-correlation estimator's sub-pixel bias, not the rendering: the engine's tests "
        "measure steps with a blob centroid and find them equal to a few hundredths of a pixel."
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
