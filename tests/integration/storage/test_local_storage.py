from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from i2v.domain.errors import InputError, NotFound
from i2v.storage import LocalStorage, Storage, check_key


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def test_put_get_exists_size_delete(storage: LocalStorage) -> None:
    key = "0123abcd/1/output.mp4"
    assert not storage.exists(key)
    storage.put_bytes(key, b"video bytes")
    assert storage.exists(key)
    assert storage.get_bytes(key) == b"video bytes"
    assert storage.size(key) == 11
    assert storage.local_path(key).read_bytes() == b"video bytes"
    storage.put_bytes(key, b"new")  # overwrite replaces the whole object
    assert storage.get_bytes(key) == b"new"
    storage.delete(key)
    storage.delete(key)  # idempotent
    assert not storage.exists(key)
    # Emptied folders go too, except the top-level one: a concurrent put into it may be
    # between its mkdir and its temp file.
    top = storage.root / "0123abcd"
    assert list(storage.root.iterdir()) == [top]
    assert list(top.iterdir()) == []


def test_missing_objects_are_not_found(storage: LocalStorage) -> None:
    with pytest.raises(NotFound, match="nope/x"):
        storage.get_bytes("nope/x")
    with pytest.raises(NotFound):
        storage.size("nope/x")
    with pytest.raises(NotFound):
        storage.local_path("nope/x")
    storage.put_bytes("dir/file", b"1")
    with pytest.raises(NotFound):
        storage.get_bytes("dir")  # a folder is not an object


def test_put_file_moves_the_file_in(storage: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "render.mp4"
    source.write_bytes(b"\x00" * 1000)
    storage.put_file("abc/2.mp4", source)
    assert not source.exists()
    assert storage.size("abc/2.mp4") == 1000


def test_writes_leave_no_temporary_files(storage: LocalStorage, tmp_path: Path) -> None:
    storage.put_bytes("a/b", b"x")
    source = tmp_path / "f"
    source.write_bytes(b"y")
    storage.put_file("a/c", source)
    assert sorted(p.name for p in (storage.root / "a").iterdir()) == ["b", "c"]


def test_failed_put_file_leaves_nothing(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        storage.put_file("a/b", tmp_path / "missing")
    assert not storage.exists("a/b")
    assert [p.name for p in (storage.root / "a").iterdir()] == []


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/", "a\\b", "C:/x", "a\x00b", "."],
)
def test_unsafe_keys_are_refused(storage: LocalStorage, key: str) -> None:
    with pytest.raises(InputError, match=r"^key: "):
        check_key(key)
    with pytest.raises(InputError):
        storage.put_bytes(key, b"x")
    with pytest.raises(InputError):
        storage.exists(key)


def test_keys_stay_inside_the_root(storage: LocalStorage) -> None:
    storage.put_bytes("deep/er/key.bin", b"k")
    path = storage.local_path("deep/er/key.bin")
    assert path.is_relative_to(storage.root)


def test_local_storage_satisfies_the_protocol(storage: LocalStorage) -> None:
    as_protocol: Storage = storage
    as_protocol.put_bytes("p", b"")
    assert as_protocol.size("p") == 0


def test_objects_are_readable_files(storage: LocalStorage) -> None:
    storage.put_bytes("perm/x", b"x")
    mode = os.stat(storage.local_path("perm/x")).st_mode
    assert stat.S_ISREG(mode)
    assert mode & stat.S_IRUSR
