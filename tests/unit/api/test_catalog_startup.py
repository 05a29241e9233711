"""A catalog's mistakes stop `i2v serve` at start-up, naming the route and the key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import uvicorn

from i2v.cli import main
from i2v.cli.wiring import load_catalog
from i2v.domain.catalog import CatalogError
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
