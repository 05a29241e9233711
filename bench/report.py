"""What every benchmark's report shares: the machine line and its section of the doc."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """The machine a run measured, in words."""
    return (
        f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()}"
    )


def write_section(heading: str, text: str, doc: Path = DOC) -> None:
    """Replace the section starting with the line `heading` (or append it): each
    benchmark owns its own section and leaves the rest of the file alone."""
    current = doc.read_text() if doc.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        doc.write_text(current.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    doc.write_text(
        "".join(lines[:start]) + text.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, interpolated between samples; nan for none."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
