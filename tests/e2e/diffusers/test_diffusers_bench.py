"""bench/gpu.py: the no-CUDA path and one measurement through the real engine (tiny model)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from i2v.engines.diffusers import ProcessEngine

BENCH = Path(__file__).resolve().parents[3] / "bench" / "gpu.py"


def _bench() -> ModuleType:
    if str(BENCH.parent) not in sys.path:
        sys.path.append(str(BENCH.parent))  # as `python bench/gpu.py` has it: its `report`
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_and_leaves_a_pending_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Engine\n\nother helper's table\n")

    assert _bench().main(["--doc", str(doc)]) == 0

    text = doc.read_text()
    assert "## Engine\n\nother helper's table" in text
    assert "## GPU (bench/gpu.py)\n\nPending a GPU run" in text
    assert "python bench/gpu.py --model wan=DIR" in text


def test_a_measurement_row_and_the_table_section(tmp_path: Path, wan: ProcessEngine) -> None:
    bench = _bench()

    row = bench._measure("tiny", "wan", {}, "480p", "baseline", 3, frames=9, warm=wan)

    assert row.error == ""
    assert row.load_s > 0
    assert row.step_s > 0
    assert row.encode_s > 0
    doc = tmp_path / "benchmarks.md"
    doc.write_text("## GPU (bench/gpu.py)\n\nPending\n\n## After\n\nkept\n")
    bench.write_section(bench.SECTION, bench._table([row], "test GPU", 3), doc)
    text = doc.read_text()
    assert "| tiny | 480p | baseline |" in text
    assert "Pending" not in text
    assert text.endswith("## After\n\nkept\n")
