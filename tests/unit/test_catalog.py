"""A catalog's route table: the frame rate and frames it promises are checked when it is
read, and an input the route's engine cannot take is refused when it loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2v.cli.wiring import load_catalog
from i2v.domain.catalog import CatalogError, parse_catalog
from service_api import write_catalog


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("fps = 0", r"'fps' must be an integer from 1 to 120, got 0"),
        ("fps = -24", r"'fps' must be an integer from 1 to 120, got -24"),
        ('fps = "x"', r"'fps' must be an integer from 1 to 120, got 'x'"),
        ("fps = true", r"'fps' must be an integer from 1 to 120, got True"),
        ("fps = 24.7", r"'fps' must be an integer from 1 to 120, got 24.7"),
        ("frames = [true]", r"'frames' must be positive integers, got \[True\]"),
    ],
)
def test_a_route_promises_a_real_frame_rate_and_frame_counts(line: str, message: str) -> None:
    text = f'[routes."r"]\nengine = "motion"\n{line}\n'
    with pytest.raises(CatalogError, match=message):
        parse_catalog(text)


@pytest.mark.parametrize(
    ("engine", "value"), [("ltx", "flow_shift"), ("motion", "loras"), ("ltx", "last_image")]
)
def test_an_input_the_engine_cannot_take_is_refused_at_load(
    tmp_path: Path, engine: str, value: str
) -> None:
    options = {"weights": "org/not-here"} if engine == "ltx" else {}
    route = {"engine": engine, "inputs": [value], "options": options}
    with pytest.raises(CatalogError) as refused:
        load_catalog(write_catalog(tmp_path / "c.toml", {"r": route}))
    assert f"route 'r': inputs: the {engine} engine does not take {value}" in refused.value.message
