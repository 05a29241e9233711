"""A catalog's mistakes stop `i2v serve` at start-up, naming the route and the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from i2v.cli.wiring import load_catalog
from i2v.domain.catalog import CatalogError
from server import write_catalog


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


def test_serve_exits_with_the_message(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "catalog.toml", {"m": {"engine": "nope"}})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "i2v",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--catalog",
            str(catalog),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "unknown engine 'nope'" in done.stderr
