"""Tiny pipelines built once per session (every shape in `tiny.BUILDERS`), and one warm
Wan engine shared by tests.

The shared engine loads its weights by repo id from a Hugging Face cache laid out
as the hub does (`models--org--name/snapshots/<rev>`, `refs/main`), so every test
using it also goes through the cache path; the other folders load by path.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tiny
from i2v.engines.diffusers import ProcessEngine, create_wan_engine

# One intra-op thread: tiny models gain nothing from more, and on a shared CPU torch's
# spinning OpenMP threads tripled these tests' time. The engine children are spawned
# and inherit the variable; this process reads it when it first imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # imported already by an earlier test area
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

TINY = {"steps": 2, "max_sequence_length": 16, "cancel_silence_seconds": 20.0}
REPO = "tiny-org/wan-ti2v"


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-pipelines")
    cache = root / "hf-cache"
    repo = cache / "models--tiny-org--wan-ti2v"
    folders = {"hf-cache": cache}
    folders["wan-ti2v"] = tiny.build_tiny_wan_ti2v(repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    for name in tiny.BUILDERS.keys() - {"wan-ti2v"}:
        folders[name] = tiny.BUILDERS[name](root / name)
    return folders


@pytest.fixture(scope="session")
def wan(weights: dict[str, Path]) -> Iterator[ProcessEngine]:
    engine = create_wan_engine(
        {
            "weights": REPO,
            "cache_dir": str(weights["hf-cache"]),
            "max_area": 32 * 32,
            "max_frames_per_segment": 9,
        }
        | TINY
    )
    yield engine
    engine.close()
