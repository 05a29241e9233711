"""What object storage offers: put/get by key, in a local folder or an S3 bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    """Objects addressed by `/`-separated relative keys (see `i2v.storage.keys.check_key`).

    Puts are atomic: a reader sees the whole old object, the whole new one, or none.
    Missing objects raise `i2v.domain.errors.NotFound`.
    """

    def put_bytes(self, key: str, data: bytes, *, sync: bool = True) -> None:
        """Store `data` under `key`. `sync=False` skips forcing it to stable storage: the
        object survives a process crash but maybe not a power loss (the same promise as
        the SQLite store's synchronous=NORMAL)."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key`, consuming it (it is moved when possible)."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes `start` up to `end` (exclusive; None: the end) in chunks, for streaming a
        range to a client. `NotFound` (at the call) for a missing object."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing one is not an error."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A file to stream the object from, or None for remote stores."""
        ...
