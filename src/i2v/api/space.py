"""Disk pressure: submits are refused while the media folder's disk is nearly full, with
a clear error at once, rather than accepted and failed later while writing their video."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from i2v.domain.errors import InsufficientStorage

MB = 1024 * 1024


def free_bytes(path: Path) -> int:
    """Free bytes on the disk holding `path` (its nearest existing folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


class DiskGuard:
    """`check()` raises `InsufficientStorage` when `folder` has under `min_free` bytes
    free. `free` is how free space is measured (tests pass their own)."""

    def __init__(
        self, folder: Path, min_free: int, *, free: Callable[[Path], int] = free_bytes
    ) -> None:
        self.folder = folder
        self.min_free = min_free
        self._free = free

    def check(self) -> None:
        available = self._free(self.folder)
        if available < self.min_free:
            raise InsufficientStorage(
                f"the server's media disk is nearly full ({available // MB} MB free, it keeps"
                f" at least {self.min_free // MB} MB); no new predictions until space is freed"
            )
