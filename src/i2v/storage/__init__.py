"""Object storage (a local folder now; the protocol fits S3) and signed capability URLs."""

from __future__ import annotations

from i2v.storage.base import Storage
from i2v.storage.keys import check_key
from i2v.storage.local import LocalStorage
from i2v.storage.signing import UrlSigner, load_or_create_secret

__all__ = ["LocalStorage", "Storage", "UrlSigner", "check_key", "load_or_create_secret"]
