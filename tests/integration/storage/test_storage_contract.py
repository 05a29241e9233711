"""What every Storage promises, checked on each: a local folder and a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from i2v.domain.errors import InputError, NotFound, StorageUnavailable
from i2v.storage import LocalStorage, S3Location, S3Storage, Storage
from s3server import S3Server
from server import free_port

VIDEO = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "media")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    yield S3Storage(server.location(server.new_bucket(), prefix="i2v/media"))


def test_put_get_size_exists_delete(storage: Storage) -> None:
    key = "outputs/abc/1.mp4"
    assert not storage.exists(key)
    storage.put_bytes(key, b"first")
    storage.put_bytes(key, VIDEO)  # an overwrite replaces the whole object
    assert storage.exists(key)
    assert storage.size(key) == len(VIDEO)
    assert storage.get_bytes(key) == VIDEO
    storage.delete(key)
    storage.delete(key)  # deleting a missing object is fine
    assert not storage.exists(key)


def test_missing_objects_are_not_found(storage: Storage) -> None:
    for call in (storage.get_bytes, storage.size, storage.read):
        with pytest.raises(NotFound):
            call("inputs/nothing.png")


def test_put_file_consumes_the_file(storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "render.mp4"
    big = VIDEO * 20  # 20 MiB: more than one multipart chunk on S3
    path.write_bytes(big)
    storage.put_file("outputs/abc/2.mp4", path)
    assert not path.exists()
    assert storage.size("outputs/abc/2.mp4") == len(big)
    assert storage.get_bytes("outputs/abc/2.mp4") == big


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, 1), (1000, 70_000), (len(VIDEO) - 10, None), (5, 5), (100, len(VIDEO))],
)
def test_read_streams_a_byte_range(storage: Storage, start: int, end: int | None) -> None:
    storage.put_bytes("outputs/abc/1.mp4", VIDEO)
    assert b"".join(storage.read("outputs/abc/1.mp4", start, end)) == VIDEO[start:end]


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "", "a/./b"])
def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InputError):
        storage.put_bytes(key, b"x")


def test_an_unreachable_s3_server_is_storage_unavailable_not_a_crash(tmp_path: Path) -> None:
    nobody = S3Storage(
        S3Location(bucket="b", endpoint=f"http://127.0.0.1:{free_port()}", retries=0)
    )
    with pytest.raises(StorageUnavailable, match="object storage failed"):
        nobody.put_bytes("outputs/abc/1.mp4", b"x")
    with pytest.raises(StorageUnavailable):
        nobody.get_bytes("outputs/abc/1.mp4")
