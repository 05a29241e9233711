"""Capability URLs for media: HMAC-SHA256 over (key, expiry), checked in constant time.

The API serves `GET /media/{key}?exp=...&sig=...` without an API key. Keys contain the
prediction's random id, but the signature is what grants access: knowing an id (or a key)
is not enough, and changing the key or the expiry breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

NEVER = 0  # `exp` value of URLs that do not expire
SECRET_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class UrlSigner:
    def __init__(
        self,
        secret: bytes,
        ttl_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError(f"url_secret: must be at least 16 bytes, got {len(secret)}")
        if ttl_seconds < 0:
            raise ValueError(f"url_ttl_seconds: must be 0 or more, got {ttl_seconds}")
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock

    def signature(self, key: str, exp: int) -> str:
        message = f"{exp}\n{key}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def sign_parts(self, key: str) -> tuple[int, str]:
        """`(exp, sig)` for `key`; exp is a Unix time, or 0 when URLs never expire."""
        exp = int(self._clock()) + self._ttl if self._ttl else NEVER
        return exp, self.signature(key, exp)

    def sign(self, key: str) -> str:
        """The query string granting access to `key`: `exp=...&sig=...`."""
        exp, sig = self.sign_parts(key)
        return f"exp={exp}&sig={sig}"  # both URL-safe as they are: an integer and base64url

    def check(self, key: str, *, exp: str | int | None, sig: str | None) -> bool:
        """Whether `exp` and `sig` (as received in a request) grant access to `key` now."""
        if exp is None or sig is None:
            return False
        try:
            expires = int(exp)
        except ValueError:
            return False
        if expires < 0 or (expires != NEVER and expires < self._clock()):
            return False
        expected = self.signature(key, expires)
        return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace"))

    def verify(self, key: str, token: str) -> bool:
        """Whether the query string `token` (as made by `sign`) grants access to `key` now."""
        fields = parse_qs(token.lstrip("?"), keep_blank_values=True)
        exp, sig = fields.get("exp", []), fields.get("sig", [])
        if len(exp) != 1 or len(sig) != 1:
            return False
        return self.check(key, exp=exp[0], sig=sig[0])


def load_or_create_secret(path: Path) -> bytes:
    """The signing secret kept in `path`, created (random, mode 0600) on first use.

    Creation is exclusive, so processes starting together agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return bytes.fromhex(text)
        time.sleep(0.01)  # another process created it and is still writing
    raise ValueError(f"url secret file {path} is empty")
