"""What `i2v generate` puts in the job: `--lora FILE[:SCALE]` (repeatable) as the job's
LoRAs, the user's own files joining the engine's allowlist (no operator list applies
locally); and the model's own frame rate, 5 s by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

import i2v.pipeline
from i2v.cli import app
from i2v.domain.errors import EngineError
from i2v.domain.job import Lora
from model_configs import wan_config_folder


def _invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Any, list[Any]]:
    image = tmp_path / "photo.png"
    Image.new("RGB", (640, 360)).save(image)
    seen: list[Any] = []

    def fake_generate(request: Any, engine: str, out: Path, **_: Any) -> Any:
        seen.append((request, engine))
        raise EngineError("stopped by the test")

    monkeypatch.setattr(i2v.pipeline, "generate_video", fake_generate)
    result = CliRunner().invoke(
        app,
        ["generate", str(image), "-p", "a cat", "-o", str(tmp_path / "o.mp4"), *args],
    )
    return result, seen


def test_loras_reach_the_job_and_the_allowlist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.write_bytes(b"x")
    second.write_bytes(b"x")
    result, seen = _invoke(
        tmp_path,
        monkeypatch,
        "--engine",
        "wan",
        "--weights",
        "some/model",
        "--lora",
        str(first),
        "--lora",
        f"{second}:0.5",
    )
    assert "stopped by the test" in result.output
    ((request, engine),) = seen
    assert engine == "wan"
    assert request.spec.loras == (Lora(str(first.resolve()), 1.0), Lora(str(second.resolve()), 0.5))
    assert request.spec.engine_options["lora_allowlist"] == [
        str(first.resolve()),
        str(second.resolve()),
    ]


def test_missing_lora_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, seen = _invoke(
        tmp_path, monkeypatch, "--engine", "wan", "--lora", str(tmp_path / "nope.safetensors:2")
    )
    assert result.exit_code != 0
    assert "FILE[:SCALE]" in result.output
    assert not seen


def test_lora_needs_a_generative_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lora = tmp_path / "a.safetensors"
    lora.write_bytes(b"x")
    result, seen = _invoke(tmp_path, monkeypatch, "--engine", "motion", "--lora", str(lora))
    assert result.exit_code != 0
    assert "LoRA" in result.output
    assert not seen


def test_a_16_fps_model_renders_5_s_at_16_fps_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a14b = wan_config_folder(tmp_path / "a14b", two_experts=True, ti2v=False)
    result, seen = _invoke(tmp_path, monkeypatch, "--engine", "wan", "--weights", str(a14b))
    assert result.exit_code == 1  # the fake render stops it
    spec = seen[0][0].spec
    assert (spec.fps, spec.frames) == (16, 81)

    monkeypatch.setenv("COLUMNS", "300")  # the error box on one line
    refused, _ = _invoke(
        tmp_path, monkeypatch, "--engine", "wan", "--weights", str(a14b), "--frames", "121"
    )
    assert refused.exit_code == 2
    assert "must be 81 or 161 (5 s or 10 s at 16 fps), got 121" in refused.output


def test_other_engines_render_at_24_fps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ti2v = wan_config_folder(tmp_path / "ti2v", two_experts=False, ti2v=True)
    _, seen = _invoke(tmp_path, monkeypatch, "--engine", "wan", "--weights", str(ti2v))
    _, motion = _invoke(tmp_path, monkeypatch, "--frames", "241")
    assert (seen[0][0].spec.fps, seen[0][0].spec.frames) == (24, 121)
    assert (motion[0][0].spec.fps, motion[0][0].spec.frames) == (24, 241)
