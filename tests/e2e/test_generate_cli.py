from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from i2v.cli import app
from i2v.cli.samples import SAMPLE_PHOTOS, sample_photo
from i2v.domain.geometry import snap_aspect
from i2v.video import probe

runner = CliRunner()


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_sample_photos_are_shippable_and_16_by_9(name: str) -> None:
    path = sample_photo(name)
    assert path.stat().st_size < 4_700_000
    with Image.open(path) as im:
        assert im.format == "JPEG"
        assert min(im.size) > 320
        assert snap_aspect(*im.size) == "16:9"
    assert (path.parent / "README.md").exists()


def test_generate_at_480p(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            str(sample_photo()),
            "--prompt",
            "slow push in on the coffee",
            "--out",
            str(out),
            "--resolution",
            "480p",
            "--seed",
            "7",
        ],
    )
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.width, info.height, info.frames, info.fps) == (854, 480, 121, 24)
    assert str(out) in result.stdout
    assert "854x480" in result.stdout
    assert "121 frames at 24 fps" in result.stdout
    assert "seed 7" in result.stdout


def test_generate_at_1080p_gives_full_hd(tmp_path: Path) -> None:
    out = tmp_path / "hd.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            str(sample_photo()),
            "-p",
            "pan right",
            "-o",
            str(out),
            "--resolution",
            "1080p",
        ],
    )
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.width, info.height, info.frames) == (1920, 1080, 121)
    assert (info.codec, info.pix_fmt, info.faststart) == ("h264", "yuv420p", True)


def test_same_seed_same_bytes_through_the_cli(tmp_path: Path) -> None:
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for out in outs:
        args = ["generate", str(sample_photo("rocket.jpg")), "-p", "a launch", "-o", str(out)]
        result = runner.invoke(app, [*args, "--resolution", "480p", "--seed", "3"])
        assert result.exit_code == 0, result.output
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frames", "100"], "must be 121 or 241"),
        (["--resolution", "4k"], "must be one of 480p, 720p, 1080p"),
        (["--engine", "nope"], "must be one of motion"),
        (["--seed", "-5"], "must be between 0 and"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, extra: list[str], message: str) -> None:
    args = ["generate", str(sample_photo()), "-p", "x", "-o", str(tmp_path / "x.mp4"), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_unreadable_image_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not a picture at all")
    result = runner.invoke(app, ["generate", str(bogus), "-p", "x", "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 1
    assert "image:" in result.output
    assert not (tmp_path / "x.mp4").exists()
