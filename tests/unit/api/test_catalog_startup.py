"""A catalog's mistakes stop `i2v serve` at start-up, naming the route and the key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import uvicorn

from i2v.cli import main
from i2v.cli.wiring import load_catalog
from i2v.domain.catalog import CatalogError
from model_configs import wan_config_folder
from service_api import write_catalog


def test_unknown_gpu_option_is_refused_at_start_up(tmp_path: Path) -> None:
    catalog = write_catalog(
        tmp_path / "catalog.toml",
        {"wan/x": {"engine": "wan", "options": {"weights": str(tmp_path), "ofload": "model"}}},
    )
    with pytest.raises(CatalogError, match=r"route 'wan/x'.*unknown keys \['ofload'\]"):
        load_catalog(catalog)


def test_bad_motion_option_is_refused_at_start_up(tmp_path: Path) -> None:
    catalog = write_catalog(
        tmp_path / "catalog.toml", {"m": {"engine": "motion", "options": {"easing": "wobbly"}}}
    )
    with pytest.raises(CatalogError, match=r"route 'm'.*easing: must be one of"):
        load_catalog(catalog)


def test_serve_exits_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.toml", {"m": {"engine": "nope"}})
    argv = ["i2v", "serve", "--data-dir", str(tmp_path / "d"), "--catalog", str(catalog)]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # never serve here
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code != 0
    assert "unknown engine 'nope'" in capsys.readouterr().err


def test_a_route_must_play_a_wan_model_at_its_training_fps(tmp_path: Path) -> None:
    a14b = wan_config_folder(tmp_path / "a14b", two_experts=True, ti2v=False)
    ti2v = wan_config_folder(tmp_path / "ti2v", two_experts=False, ti2v=True)
    at_24 = {"engine": "wan", "options": {"weights": str(a14b)}}  # the catalog's default fps
    with pytest.raises(CatalogError) as refused:
        load_catalog(write_catalog(tmp_path / "a.toml", {"wan/a14b": at_24}))
    message = refused.value.message
    assert "route 'wan/a14b': fps: Wan2.2 I2V-A14B was trained at 16 fps" in message
    assert "got fps = 24" in message
    assert "fps = 16 and frames = [81, 161]" in message

    at_16 = at_24 | {"fps": 16, "frames": [81, 161]}
    assert load_catalog(write_catalog(tmp_path / "b.toml", {"wan/a14b": at_16}))
    # TI2V-5B is a 24-fps model; weights not here yet are checked by the engine at render
    ti2v_route = {"engine": "wan", "options": {"weights": str(ti2v)}}
    absent = {"engine": "wan", "options": {"weights": "org/not-downloaded"}}
    assert load_catalog(write_catalog(tmp_path / "c.toml", {"t": ti2v_route, "x": absent}))


def test_the_gpu_catalog_loads_and_plays_each_model_at_its_training_rate(tmp_path: Path) -> None:
    catalog = load_catalog(Path("gpu"))  # a built-in name, not a file here
    rates = {route.path: (route.fps, route.frames) for route in catalog}
    assert rates["wan-2.2/ti2v-5b/720p"] == (24, (121, 241))
    assert rates["wan-2.2/i2v-a14b/720p"] == (16, (81, 161))
    assert rates["wan-2.1/flf2v-14b/720p"] == (16, (81,))
    presets = {route.options.get("preset", "") for route in catalog}
    assert {"dmd", "lightx2v", "distilled"} <= presets
    for route in catalog:  # 5 s and 10 s at the route's own rate
        assert {(n - 1) / route.fps for n in route.frames} <= {5.0, 10.0}


def test_a_last_image_input_needs_a_model_that_takes_one(tmp_path: Path) -> None:
    ti2v = wan_config_folder(tmp_path / "ti2v", two_experts=False, ti2v=True)
    a14b = wan_config_folder(tmp_path / "a14b", two_experts=True, ti2v=False)
    route = {"engine": "wan", "inputs": ["last_image"], "options": {"weights": str(ti2v)}}
    with pytest.raises(CatalogError, match=r"inputs: Wan2.2 TI2V-5B does not take a last frame"):
        load_catalog(write_catalog(tmp_path / "a.toml", {"t": route}))
    route = {"engine": "wan", "fps": 16, "frames": [81], "inputs": ["last_image"]}
    route["options"] = {"weights": str(a14b)}
    assert load_catalog(write_catalog(tmp_path / "b.toml", {"a": route}))
