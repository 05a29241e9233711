"""Where a route's weights are, without loading them (and without importing torch).

`weights` is a local folder saved with `save_pretrained` (it has model_index.json)
or a Hugging Face repo id that `from_pretrained(..., local_files_only=True)` will
find in the local cache. Nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
