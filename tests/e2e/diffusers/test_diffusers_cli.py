"""`i2v models` and `i2v generate --engine wan|ltx` on tiny weights."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from i2v.cli import app


def _catalog(tmp_path: Path, local: Path) -> Path:
    text = f"""
[routes."i2v/motion"]
engine = "motion"

[routes."wan-2.2/ti2v-5b/720p"]
engine = "wan"
resolution = "720p"
[routes."wan-2.2/ti2v-5b/720p".options]
weights = "{local}"

[routes."wan-2.2/i2v-a14b/720p"]
engine = "wan"
[routes."wan-2.2/i2v-a14b/720p".options]
weights = "{tmp_path / "nowhere"}"

[routes."ltx-video/0.9.8-distilled"]
engine = "ltx"
[routes."ltx-video/0.9.8-distilled".options]
weights = "Lightricks/LTX-Video-0.9.8-13B-distilled"

[routes."wan-2.2/cached"]
engine = "wan"
[routes."wan-2.2/cached".options]
weights = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"

[routes."wan-2.2/unset"]
engine = "wan"
"""
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def _hf_cache(root: Path) -> Path:
    repo = root / "models--Wan-AI--Wan2.2-TI2V-5B-Diffusers"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    return root


def test_models_lists_routes_engines_and_weights(tmp_path: Path) -> None:
    local = tmp_path / "tiny-wan"
    local.mkdir()
    (local / "model_index.json").write_text("{}")
    catalog = _catalog(tmp_path, local)
    cache = _hf_cache(tmp_path / "hf")

    result = CliRunner().invoke(
        app, ["models", "--catalog", str(catalog), "--hf-cache", str(cache)]
    )

    assert result.exit_code == 0, result.output
    # ROUTE  ENGINE  VIDEO ("24 fps, 121/241 frames")  WEIGHTS  WHERE
    lines = {line.split()[0]: line.split(maxsplit=7)[1:] for line in result.output.splitlines()}
    assert lines["i2v/motion"][:5] == ["motion", "24", "fps,", "121/241", "frames"]
    assert lines["i2v/motion"][5] == "built"
    assert lines["wan-2.2/ti2v-5b/720p"][::5] == ["wan", "present"]
    assert lines["wan-2.2/i2v-a14b/720p"][::5] == ["wan", "missing"]
    assert lines["ltx-video/0.9.8-distilled"][::5] == ["ltx", "missing"]
    assert "huggingface-cli download" in lines["ltx-video/0.9.8-distilled"][6]
    assert lines["wan-2.2/cached"][::5] == ["wan", "present"]
    assert lines["wan-2.2/unset"][::5] == ["wan", "missing"]


def test_models_lists_the_built_in_catalog() -> None:
    result = CliRunner().invoke(app, ["models"])

    assert result.exit_code == 0, result.output
    assert "bytedance/dreamina-v3.0/image-to-video-1080p" in result.output
