"""API keys: `Authorization: Bearer KEY` on every API route.

A key's owner id is the SHA-256 of the key, so predictions stay with their key
across restarts and the database never holds a usable key.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from i2v.domain.errors import AuthError
from i2v.store import Store

KEY_PREFIX = "i2v_"
KEY_CACHE_SECONDS = 5.0  # a revoked key stops working within this long


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Keys from settings (I2V_API_KEYS) plus keys created with `i2v keys create`.

    Keys found in the database are remembered for KEY_CACHE_SECONDS, so the hot
    read paths (polling a result) do not query the database for every request.
    """

    def __init__(self, static_keys: list[str], store: Store) -> None:
        self._static = {hash_key(k) for k in static_keys}
        self._store = store
        self._recent: dict[str, float] = {}  # digest -> monotonic expiry

    def known_owner(self, authorization: str | None) -> str | None:
        """The owner, when it is decidable without the database; raises for bad headers."""
        digest = self._digest(authorization)
        if digest in self._static or self._recent.get(digest, 0.0) > time.monotonic():
            return digest
        return None

    def owner(self, authorization: str | None) -> str:
        digest = self._digest(authorization)
        if digest in self._static:
            return digest
        if self._store.keys.find(digest) is None:
            raise AuthError("invalid API key")
        self._recent[digest] = time.monotonic() + KEY_CACHE_SECONDS
        return digest

    @staticmethod
    def _digest(authorization: str | None) -> str:
        if not authorization:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthError("malformed Authorization header: expected 'Bearer <key>'")
        return hash_key(key)
