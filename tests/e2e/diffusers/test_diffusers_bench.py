"""bench/gpu.py: the no-CUDA path, one measurement through the real engine (tiny model),
and its `--smoke` run of every option on the tiny models, here on the CPU; and
bench/model_memory.py's weights per offload mode on the real shapes."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from i2v.engines.diffusers import ProcessEngine

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _bench(script: str = "gpu") -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))  # as `python bench/gpu.py` has it: its `report`
    spec = importlib.util.spec_from_file_location(f"bench_{script}", BENCH / f"{script}.py")
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


def _rows(table: str) -> dict[tuple[str, str], str]:
    """(model, option) -> result from the smoke's printed table."""
    found = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[2] in ("ok", "refused", "skipped", "failed"):
            found[(cells[0], cells[1])] = cells[2]
    return found


def test_smoke_on_cpu_renders_each_option_and_skips_what_a_cpu_cannot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a subset: the whole smoke is every tiny model x every option (bench/gpu.py --smoke)
    argv = ["--smoke", "--device", "cpu", "--only", "wan-ti2v", "--jobs", "2"]
    argv += ["--options", "lora,fp8=layerwise,offload=group"]

    assert _bench().main(argv) == 0

    out = capsys.readouterr().out
    assert _rows(out) == {
        ("wan-ti2v", "lora"): "ok",
        ("wan-ti2v", "fp8=layerwise"): "ok",
        ("wan-ti2v", "offload=group"): "skipped",
    }
    assert "a CPU has no GPU" in out  # a skip says why
    assert "fp8=layerwise" in out.split("| wan-ti2v | fp8=layerwise | ok |")[1].splitlines()[0]


def test_smoke_case_refused_at_load_is_not_a_failure(weights: dict[str, Path]) -> None:
    bench = _bench()
    case = bench.SmokeCase(
        "wan-ti2v", bench.SmokeOption("typo", {"ofload": "model"}), weights["wan-ti2v"]
    )

    row = bench.smoke_case(case, "cpu")

    assert (row.result, row.option) == ("refused", "typo")
    assert "ofload" in row.detail
    assert bench.exit_status([row]) == 0


def test_smoke_case_that_fails_in_the_child_fails_the_run(
    weights: dict[str, Path], tmp_path: Path
) -> None:
    bench = _bench()
    broken = tmp_path / "wan-ti2v"
    shutil.copytree(weights["wan-ti2v"], broken)
    for path in (broken / "transformer").glob("*.safetensors"):
        path.unlink()  # the catalog accepts the folder; loading it fails
    case = bench.SmokeCase("wan-ti2v", bench.SmokeOption("bf16", {"dtype": "bfloat16"}), broken)

    row = bench.smoke_case(case, "cpu")

    assert row.result == "failed", row
    assert "EngineError" in row.detail
    assert bench.exit_status([row]) == 1


def test_smoke_case_past_its_timeout_has_its_child_killed(weights: dict[str, Path]) -> None:
    bench = _bench()
    case = bench.SmokeCase(
        "wan-ti2v", bench.SmokeOption("bf16", {"dtype": "bfloat16"}), weights["wan-ti2v"]
    )

    # timeout 0: the watchdog kills the child as soon as it exists, long before it loads
    [row] = bench._run_cases([case], "cpu", jobs=1, timeout=0.0)

    assert row.result == "failed", row
    assert row.detail.startswith("timed out after"), row.detail
    assert "EngineCrashed" in row.detail
    assert bench.exit_status([row]) == 1


def test_model_memory_counts_real_shapes_per_offload_mode(tmp_path: Path) -> None:
    memory = _bench("model_memory")
    by_name = {real.name: real for real in memory.REAL}

    ti2v = memory.measure(by_name["Wan2.2 TI2V-5B"])
    a14b = memory.measure(by_name["Wan2.2 I2V-A14B"])

    parts = {c.name: c for c in ti2v.components}
    assert set(parts) == {"text_encoder", "transformer", "vae"}
    assert 4.9e9 < parts["transformer"].params < 5.1e9  # "5B"
    assert (parts["transformer"].bytes_per_param, parts["vae"].bytes_per_param) == (2, 4)
    experts = [c for c in a14b.components if c.name.startswith("transformer")]
    assert len(experts) == 2
    assert 13.5e9 < experts[0].params < 14.5e9  # "A14B": two 14B experts
    # model offload holds one expert; group one block pair beside a whole text encoder
    assert a14b.model() == (experts[0].bytes, "transformer")
    assert a14b.none() == sum(c.bytes for c in a14b.components)
    assert a14b.transformer_group() < a14b.group()[0] < a14b.model()[0]
    # one layer: UMT5's 256k x 4096 token embedding, the largest single module
    assert a14b.sequential() == (256384 * 4096 * 2, "text_encoder")
    assert a14b.model(fp8=True)[0] == experts[0].params
    doc = tmp_path / "models.md"
    doc.write_text("# Models\n\n## Speed options\n\nkept\n")
    memory.write_section(memory.SECTION, memory.section([ti2v, a14b]), doc)
    text = doc.read_text()
    assert text.startswith("# Models\n\n## Speed options\n\nkept\n\n## GPU memory by offload mode")
    assert "| Wan2.2 I2V-A14B | 64.3 | 26.6 (transformer) |" in text
    assert "python bench/model_memory.py --write" in text
