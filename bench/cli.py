"""CLI start-up benchmark: wall time of `i2v` commands run as a user runs them.

    python bench/cli.py              # 15 runs of each command (~15 s)
    python bench/cli.py --runs 5

Each command runs as a fresh process through the `i2v` console script (or
`python -m i2v` where there is none), its output discarded; the commands take turns
so that other load on the machine falls on all of them alike. `python -c pass` is the
baseline measured in the same run: the interpreter's own start-up. Each row shows the
median, the fastest and the slowest run's wall time, and the median CPU time (user +
system), which other load on the machine moves far less than wall time. Results print
as a markdown table and replace the `## CLI start-up (bench/cli.py)` section of
docs/benchmarks.md (unless --no-doc). Exits 0 whether or not the target is met: the
table says.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from report import machine, write_section

SECTION = "## CLI start-up (bench/cli.py)"
HELP_TARGET_S = 0.3  # `i2v --help`, from the issue


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]


def i2v() -> list[str]:
    script = Path(sys.executable).with_name("i2v")
    return [str(script)] if script.exists() else [sys.executable, "-m", "i2v"]


def cases() -> list[Case]:
    command = i2v()
    return [
        Case("`python -c pass` (baseline)", [sys.executable, "-c", "pass"]),
        Case("`i2v --help`", [*command, "--help"]),
        Case("`i2v generate --help`", [*command, "generate", "--help"]),
        Case("`i2v models`", [*command, "models"]),
    ]


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float  # user + system time of the process


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(case: Case, cwd: Path) -> Sample:
    cpu = cpu_of_children()
    started = time.perf_counter()
    subprocess.run(
        case.argv,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=True,
    )
    return Sample(time.perf_counter() - started, cpu_of_children() - cpu)


def measure(runs: int) -> dict[str, list[Sample]]:
    """Every run, per case; one untimed run of each first (cold file cache)."""
    times: dict[str, list[Sample]] = {case.label: [] for case in cases()}
    with tempfile.TemporaryDirectory(prefix="i2v-bench-cli-") as folder:
        cwd = Path(folder)
        for case in cases():
            time_once(case, cwd)
        for _ in range(runs):
            for case in cases():
                times[case.label].append(time_once(case, cwd))
    return times


def table(times: dict[str, list[Sample]]) -> str:
    baseline = statistics.median(s.wall_s for s in next(iter(times.values())))
    lines = [
        "| Command | Median s | Fastest s | Slowest s | Median above baseline s | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for label, samples in times.items():
        walls = [s.wall_s for s in samples]
        median = statistics.median(walls)
        cpu = statistics.median(s.cpu_s for s in samples)
        lines.append(
            f"| {label} | {median:.3f} | {min(walls):.3f} | {max(walls):.3f} | "
            f"{median - baseline:.3f} | {cpu:.3f} |"
        )
    help_median = statistics.median(s.wall_s for s in times[cases()[1].label])
    met = "yes" if help_median <= HELP_TARGET_S else "**no**"
    lines += [
        "",
        "| Target | Met | Measured |",
        "|---|---|---|",
        f"| `i2v --help` <= {HELP_TARGET_S} s | {met} | {help_median:.3f} s (median) |",
    ]
    return "\n".join(lines)


def section(times: dict[str, list[Sample]], runs: int, load: float) -> str:
    return f"""{SECTION}

Measured with `python bench/cli.py` (also run by `make bench`)
on {machine()}, {time.strftime("%Y-%m-%d")};
1-minute load average {load:.1f} when measuring began.
Each command ran {runs} times as a fresh process (the console script, output
discarded), the commands taking turns; `python -c pass` is the interpreter's own
start-up in the same run. Wall times are seconds from start to exit; CPU s is the
median user + system time of the process, which other load moves far less.

{table(times)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave the doc")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    text = section(measure(args.runs), args.runs, load)
    print(text)
    if not args.no_doc:
        write_section(SECTION, text)
        print(f"wrote the {SECTION!r} section of docs/benchmarks.md", file=sys.stderr)


if __name__ == "__main__":
    main()
