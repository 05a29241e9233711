"""Where a route's weights are, without loading them (and without importing torch).

`weights` is a local folder saved with `save_pretrained` (it has model_index.json)
or a Hugging Face repo id that `from_pretrained(..., local_files_only=True)` will
find in the local cache. Nothing here touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WeightsStatus:
    present: bool
    where: str  # the folder or cache file found, or why nothing was


def find_weights(weights: str, cache_dir: Path | None = None) -> WeightsStatus:
    path = Path(weights).expanduser()
    if path.exists():
        index = path / "model_index.json"
        if index.is_file():
            return WeightsStatus(True, str(path.resolve()))
        return WeightsStatus(False, f"{path} has no model_index.json")
    if weights.startswith(("/", ".", "~")) or weights.count("/") != 1:
        return WeightsStatus(False, f"no folder {weights}")
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return WeightsStatus(False, "huggingface_hub missing: pip install 'i2v[diffusers]'")
    found = try_to_load_from_cache(weights, "model_index.json", cache_dir=cache_dir)
    if isinstance(found, str):
        return WeightsStatus(True, str(Path(found).parent))
    return WeightsStatus(
        False, f"{weights} not in the Hugging Face cache (huggingface-cli download {weights})"
    )


@dataclass(frozen=True)
class ModelIndex:
    """What a diffusers folder's model_index.json says: the pipeline class and the
    components it has (a component saved as None, e.g. `transformer_2: [null, null]`,
    is absent)."""

    class_name: str
    components: frozenset[str]
    folder: Path  # where it was found (its component folders are beside it)
    # the pipeline's own config keys, e.g. `expand_timesteps`, `boundary_ratio`
    settings: Mapping[str, Any] = field(default_factory=dict)

    def has(self, component: str) -> bool:
        return component in self.components


def read_model_index(weights: str, cache_dir: str = "") -> ModelIndex | None:
    """The weights' model_index.json if it is on this machine (a folder or the Hugging
    Face cache); None when the weights are not here yet or the file is unreadable."""
    found = find_weights(weights, Path(cache_dir) if cache_dir else None)
    if not found.present:
        return None
    try:
        data = json.loads((Path(found.where) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # a component is [library, class] ([null, null] when saved as None); the rest is config
    listed = {name: value for name, value in data.items() if not name.startswith("_")}
    components = frozenset(
        name
        for name, value in listed.items()
        if isinstance(value, list) and any(part is not None for part in value)
    )
    settings = {name: value for name, value in listed.items() if not isinstance(value, list)}
    return ModelIndex(str(data.get("_class_name", "")), components, Path(found.where), settings)
