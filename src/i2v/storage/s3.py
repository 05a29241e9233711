"""Object storage in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2, Ceph RGW...).

This is what lets workers run on other machines: inputs written at submit and outputs
written by a worker live in the bucket, not on a disk one machine owns. S3 PUTs are
atomic (a reader sees the old object, the new one, or none) and durable once answered,
which is everything the Storage protocol promises, so `sync` has nothing to add.

The client is obstore (Rust's object_store): one small dependency, streaming multipart
uploads for videos, and ranged reads for players that seek.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2v.domain.errors import ConfigError, NotFound, StorageUnavailable
from i2v.storage.keys import check_key

if TYPE_CHECKING:
    from obstore import GetOptions  # in the type stubs only

MULTIPART_CHUNK = 8 * 1024 * 1024
CONNECT_TIMEOUT_S = 5.0
RETRY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class S3Location:
    """Where objects go: `s3://bucket/prefix` on `endpoint` (empty: AWS itself)."""

    bucket: str
    prefix: str = ""
    endpoint: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    retries: int = 3

    @classmethod
    def parse(cls, url: str, **fields: Any) -> S3Location:
        if not url.startswith("s3://") or not url[5:].strip("/"):
            raise ConfigError(f"storage_url: must look like s3://bucket[/prefix], got {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        return cls(bucket=bucket, prefix=prefix.strip("/"), **fields)


class S3Storage:
    def __init__(self, location: S3Location) -> None:
        from obstore.store import S3Store  # optional dependency: only S3 deployments need it

        config: dict[str, Any] = {"region": location.region}
        if location.endpoint:
            config["endpoint"] = location.endpoint
            config["virtual_hosted_style_request"] = False  # path style: what local servers speak
        if location.access_key_id:
            config["access_key_id"] = location.access_key_id
            config["secret_access_key"] = location.secret_access_key
        self.location = location
        self._store = S3Store(
            location.bucket,
            prefix=location.prefix or None,
            client_options={
                "allow_http": location.endpoint.startswith("http://"),
                "connect_timeout": timedelta(seconds=CONNECT_TIMEOUT_S),
            },
            # A few quick retries ride out a blip; past that a client polling for its video
            # should hear 503 rather than hang (object_store's default is up to 3 minutes).
            retry_config={
                "max_retries": location.retries,
                "retry_timeout": timedelta(seconds=RETRY_TIMEOUT_S),
            },
            **config,
        )

    def put_bytes(self, key: str, data: bytes, *, sync: bool = True) -> None:
        import obstore

        with _domain_errors(key):
            obstore.put(self._store, check_key(key), data)

    def put_file(self, key: str, path: Path) -> None:
        import obstore

        with path.open("rb") as f, _domain_errors(key):  # multipart, streamed from the file
            obstore.put(self._store, check_key(key), f, chunk_size=MULTIPART_CHUNK)
        path.unlink()

    def get_bytes(self, key: str) -> bytes:
        import obstore

        with _domain_errors(key):
            return bytes(obstore.get(self._store, check_key(key)).bytes())

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        import obstore

        if end is not None and end <= start:
            self.size(key)  # still NotFound for a missing object
            return iter(())
        options: GetOptions = {"range": {"offset": start} if end is None else (start, end)}
        with _domain_errors(key):
            result = obstore.get(self._store, check_key(key), options=options)
        return (bytes(chunk) for chunk in result)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        import obstore

        with _domain_errors(key):
            return int(obstore.head(self._store, check_key(key))["size"])

    def delete(self, key: str) -> None:
        import obstore

        with contextlib.suppress(NotFound), _domain_errors(key):
            obstore.delete(self._store, check_key(key))

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None


@contextlib.contextmanager
def _domain_errors(key: str) -> Iterator[None]:
    """The client's errors in the domain's terms: a missing object is `NotFound`; anything
    else (unreachable, denied, a server error) is `StorageUnavailable`."""
    from obstore.exceptions import BaseError, NotFoundError

    try:
        yield
    except (NotFoundError, FileNotFoundError):
        raise NotFound(f"no object at {key!r}") from None
    except (BaseError, OSError) as exc:
        raise StorageUnavailable(f"object storage failed on {key!r}: {exc}") from exc
