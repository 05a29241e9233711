"""API keys: `Authorization: Bearer KEY` on every API route.

A key's owner id is the SHA-256 of the key, so predictions stay with their key
across restarts and the database never holds a usable key.
"""

from __future__ import annotations

import hashlib
import secrets

from i2v.domain.errors import AuthError
from i2v.store.sql import Store

KEY_PREFIX = "i2v_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Keys from settings (I2V_API_KEYS) plus keys created with `i2v keys create`."""

    def __init__(self, static_keys: list[str], store: Store) -> None:
        self._static = {hash_key(k) for k in static_keys}
        self._store = store

    def owner(self, authorization: str | None) -> str:
        if not authorization:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthError("malformed Authorization header: expected 'Bearer <key>'")
        digest = hash_key(key)
        if digest in self._static or self._store.find_key(digest) is not None:
            return digest
        raise AuthError("invalid API key")
