"""Object storage (a local folder, or an S3 bucket) and signed capability URLs."""

from __future__ import annotations

from i2v.storage.base import Storage
from i2v.storage.keys import check_key
from i2v.storage.local import LocalStorage
from i2v.storage.s3 import S3Location, S3Storage
from i2v.storage.signing import UrlSigner, load_or_create_secret

__all__ = [
    "LocalStorage",
    "S3Location",
    "S3Storage",
    "Storage",
    "UrlSigner",
    "check_key",
    "load_or_create_secret",
]
