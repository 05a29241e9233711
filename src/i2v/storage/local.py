"""Object storage in a local folder: each key is a file under `root`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from i2v.domain.errors import NotFound
from i2v.storage.keys import check_key

READ_CHUNK = 1024 * 1024


class LocalStorage:
    """Atomic writes by temp file + rename in the target folder; fsync'd before the rename,
    so an object that exists after a crash is complete (outputs are marked done only after
    their object exists)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put_bytes(self, key: str, data: bytes, *, sync: bool = True) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        os.close(fd)
        try:
            try:
                os.replace(path, tmp)  # same filesystem: a rename, no copy
            except OSError:
                shutil.copyfile(path, tmp)
                os.unlink(path)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise NotFound(f"object {key!r} not found") from exc

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.local_path(key)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                f.seek(start)
                left = None if end is None else max(end - start, 0)
                while left is None or left > 0:
                    chunk = f.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk

        return chunks()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"object {key!r} not found")
        return path.stat().st_size

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Drop folders left empty (a prediction's `{id}/` once its last object is gone),
        # but never a top-level one (`inputs/`, `outputs/`): a concurrent put may have
        # just made it and be about to create its temp file there.
        parent = path.parent
        while parent != self.root and parent.parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def local_path(self, key: str) -> Path:
        """The object's file; `NotFound` if it does not exist."""
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"object {key!r} not found")
        return path

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"
