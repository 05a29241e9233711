"""`i2v generate --engine wan --weights DIR`: the one-shot CLI on a tiny Wan folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from i2v.cli import app
from i2v.video import probe


def test_generate_with_the_wan_engine_and_local_weights(
    tmp_path: Path, weights: dict[str, Path]
) -> None:
    image = tmp_path / "photo.png"
    pixels = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    out = tmp_path / "clip.mp4"

    result = CliRunner().invoke(
        app,
        [
            "generate",
            str(image),
            "--prompt",
            "the camera slowly pans over the city",
            "--out",
            str(out),
            "--resolution",
            "480p",
            "--seed",
            "3",
            "--engine",
            "wan",
            "--weights",
            str(weights["wan-ti2v"]),
            "--steps",
            "2",
            "--guidance",
            "1.0",
            "--option",
            "max_area=1024",
            "--option",
            "max_sequence_length=16",
        ],
    )

    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps) == (854, 480, 121, 24)


def test_generate_refuses_a_malformed_engine_option(tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    Image.new("RGB", (640, 360)).save(image)

    result = CliRunner().invoke(
        app,
        ["generate", str(image), "-p", "x", "-o", str(tmp_path / "o.mp4"), "--option", "steps"],
    )

    assert result.exit_code != 0
    assert "KEY=VALUE" in result.output
