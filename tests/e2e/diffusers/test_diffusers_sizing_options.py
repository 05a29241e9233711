"""Pure parts of the diffusers engines: sizing, segment plans, options, lazy import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from i2v.domain.catalog import CatalogError
from i2v.domain.errors import EngineError
from i2v.engines.diffusers import sizing
from i2v.engines.diffusers.options import parse_options


@pytest.mark.parametrize(
    ("frames", "max_frames", "step", "overlap", "segments"),
    [
        (121, 121, 4, 1, (121,)),
        (241, 121, 4, 1, (121, 121)),
        (241, 81, 4, 1, (81, 81, 81)),
        (161, 81, 4, 1, (81, 81)),  # 10 s of a 16-fps 14B model
        (121, 81, 4, 1, (61, 61)),
        (241, 257, 8, 1, (241,)),
        (10, 81, 4, 1, (13,)),
        (17, 9, 4, 1, (9, 9)),
        # LTX Condition: later segments share 9 frames (a video condition) with the last
        (241, 121, 8, 9, (89, 89, 89)),
        (481, 257, 8, 9, (249, 249)),
        (25, 17, 8, 9, (17, 17)),
    ],
)
def test_segment_plans_cover_the_frames_with_valid_lengths(
    frames: int, max_frames: int, step: int, overlap: int, segments: tuple[int, ...]
) -> None:
    plan = sizing.segment_plan(frames, max_frames, step, overlap)
    assert plan == segments
    assert all((n - 1) % step == 0 and n <= max_frames for n in plan)
    assert plan[0] + sum(n - overlap for n in plan[1:]) >= frames


def test_an_overlap_needs_room_for_new_frames() -> None:
    with pytest.raises(EngineError, match=r"max_frames_per_segment: must be at least 17 \(the 9"):
        sizing.segment_plan(241, 9, 8, overlap=9)


@pytest.mark.parametrize(
    ("size", "area", "multiple", "native"),
    [
        ((1920, 1080), sizing.WAN_TI2V_AREAS["720p"], 32, (1280, 704)),
        ((1080, 1920), sizing.WAN_TI2V_AREAS["720p"], 32, (704, 1280)),
        ((854, 480), sizing.WAN_14B_AREAS["480p"], 16, (848, 480)),
        ((1280, 720), sizing.WAN_14B_AREAS["720p"], 16, (1280, 720)),
        ((1920, 1080), sizing.LTX_AREAS["720p"], 32, (1248, 704)),
        ((64, 48), 32 * 32, 32, (32, 32)),
    ],
)
def test_native_size_keeps_the_aspect_on_the_model_grid(
    size: tuple[int, int], area: int, multiple: int, native: tuple[int, int]
) -> None:
    assert sizing.native_size(*size, area, multiple) == native


def test_resolution_tier_follows_the_short_side() -> None:
    assert sizing.resolution_tier(854, 480) == "480p"
    assert sizing.resolution_tier(1920, 1080) == "720p"
    assert sizing.resolution_tier(1920, 1080, "480p") == "480p"


def test_fit_covers_and_crops_without_stretching() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 50:150] = 255  # a white centre square
    fitted = sizing.fit(image, 50, 50)
    assert fitted.shape == (50, 50, 3)
    assert fitted.mean() > 250  # only the centre survives the crop


def test_options_need_weights_and_refuse_unknown_keys_and_values() -> None:
    with pytest.raises(CatalogError, match=r"options\.weights: required"):
        parse_options({}, "wan")
    with pytest.raises(CatalogError, match=r"unknown keys \['ofload'\]"):
        parse_options({"weights": "a/b", "ofload": "model"}, "wan")
    with pytest.raises(CatalogError, match=r"options\.offload: must be one of .* got 'gpu'"):
        parse_options({"weights": "a/b", "offload": "gpu"}, "wan")
    with pytest.raises(CatalogError, match=r"options\.steps: must be an integer, got '4'"):
        parse_options({"weights": "a/b", "steps": "4"}, "ltx")
    with pytest.raises(CatalogError, match=r"options\.device: must be auto, cpu or cuda"):
        parse_options({"weights": "a/b", "device": "tpu"}, "ltx")


def test_option_defaults() -> None:
    options = parse_options({"weights": "Wan-AI/Wan2.2-TI2V-5B-Diffusers"}, "wan")
    assert options.local_files_only is True
    assert (options.offload, options.dtype, options.device) == ("auto", "auto", "auto")
    assert options.vae_tiling is None
    assert parse_options({"weights": "x/y", "vae_tiling": "auto"}, "wan").vae_tiling is None
    assert parse_options({"weights": "x/y", "guidance_scale": 1}, "ltx").guidance_scale == 1.0


def test_importing_the_engines_does_not_import_torch() -> None:
    code = (
        "import sys, i2v.engines.diffusers as d; "
        "d.create_wan_engine({'weights': 'a/b'}); "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_out_of_memory_report_becomes_engine_crashed_with_the_flag() -> None:
    from i2v.domain.errors import EngineCrashed, EngineError
    from i2v.engines.diffusers import ProcessEngine, messages
    from i2v.engines.diffusers.options import parse_options

    engine = ProcessEngine("wan", parse_options({"weights": "a/b"}, "wan"))
    with pytest.raises(EngineCrashed) as crashed:
        engine._raise_failed(messages.Failed("CUDA out of memory", out_of_memory=True))
    assert crashed.value.out_of_memory is True
    assert "ran out of GPU memory" in crashed.value.message
    with pytest.raises(EngineError, match="wan engine failed: boom") as failed:
        engine._raise_failed(messages.Failed("boom"))
    assert not isinstance(failed.value, EngineCrashed)


def test_out_of_memory_errors_are_recognised() -> None:
    from i2v.engines.diffusers import loading

    assert loading.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not loading.is_out_of_memory(RuntimeError("shape mismatch"))


@pytest.mark.parametrize(
    ("size", "area", "multiple", "gpus"),
    [
        ((1280, 704), sizing.WAN_TI2V_AREAS["720p"], 32, 3),  # 40 x 22 cells: not by 3
        ((1024, 768), sizing.WAN_14B_AREAS["720p"], 16, 8),  # 69 x 52 cells: not by 8
        ((1024, 768), sizing.WAN_TI2V_AREAS["720p"], 32, 6),
        ((832, 480), sizing.WAN_14B_AREAS["480p"], 16, 4),
    ],
)
def test_a_split_over_gpus_gets_a_token_grid_they_divide(
    size: tuple[int, int], area: int, multiple: int, gpus: int
) -> None:
    width, height = sizing.native_size(*size, area, multiple, cells_divisor=gpus)
    assert width % multiple == 0
    assert height % multiple == 0
    assert (width // multiple) * (height // multiple) % gpus == 0
    # near the request's shape and the model's area
    assert abs(width / height - size[0] / size[1]) < 0.08
    assert abs(width * height / area - 1) < 0.07
    assert sizing.native_size(*size, area, multiple) == sizing.native_size(
        *size, area, multiple, cells_divisor=1
    )
