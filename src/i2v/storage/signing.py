"""Capability URLs for media: HMAC-SHA256 over (key, expiry, issue time), checked in
constant time.

The API serves `GET /media/{key}?exp=...&iat=...&sig=...` without an API key. Keys contain
the prediction's random id, but the signature is what grants access: knowing an id (or a
key) is not enough, and changing the key, the expiry or the issue time breaks the signature.

Every link carries its issue time (`iat`), so turning a TTL on (or shortening it) also
expires links issued before: a link older than the TTL is refused even when it was issued
with no expiry. Links from before `iat` existed (`exp` and `sig` only) keep working while no
TTL is set; with a TTL on, only those whose remaining life fits in the TTL still pass.
Times are strict ASCII digits: no sign, no `_`, no other script's digits, at most 12.
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
_MAX_TIME_DIGITS = 12  # Unix seconds until the year 33658


def parse_time(value: str | int | None) -> int | None:
    """A Unix time from a link (`exp`, `iat`): ASCII digits only, else None. (`int()` would
    also take `-0`, `+5`, ` 5`, `0_0` and non-ASCII digits such as `٣`.)"""
    if isinstance(value, int):
        return value if value >= 0 else None
    if value is None or not value or len(value) > _MAX_TIME_DIGITS:
        return None
    if not (value.isascii() and value.isdigit()):
        return None
    return int(value)


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

    def signature(self, key: str, exp: int, iat: int) -> str:
        # "v2" keeps these messages apart from the old `exp\nkey` ones whatever the key holds.
        return self._mac(f"v2\n{exp}\n{iat}\n{key}")

    def _legacy_signature(self, key: str, exp: int) -> str:
        return self._mac(f"{exp}\n{key}")

    def _mac(self, message: str) -> str:
        return _b64(hmac.new(self._secret, message.encode(), hashlib.sha256).digest())

    def sign_parts(self, key: str, *, not_after: int | None = None) -> tuple[int, int, str]:
        """`(exp, iat, sig)` for `key`: the expiry (a Unix time, or 0 when URLs never
        expire), the issue time, and the signature over both and the key. `not_after`: a
        Unix time the link must not outlive (its object's expiry), whatever the TTL."""
        iat = int(self._clock())
        exp = iat + self._ttl if self._ttl else NEVER
        if not_after is not None:
            exp = max(1, min(exp, not_after) if exp != NEVER else not_after)
        return exp, iat, self.signature(key, exp, iat)

    def sign(self, key: str, *, not_after: int | None = None) -> str:
        """The query string granting access to `key`: `exp=...&iat=...&sig=...`."""
        exp, iat, sig = self.sign_parts(key, not_after=not_after)
        return f"exp={exp}&iat={iat}&sig={sig}"  # URL-safe as they are: integers, base64url

    def check(
        self,
        key: str,
        *,
        exp: str | int | None,
        sig: str | None,
        iat: str | int | None = None,
    ) -> bool:
        """Whether `exp`, `iat` and `sig` (as received in a request) grant access to `key`
        now. `iat=None` is a link from before issue times were signed (see the module)."""
        expires = parse_time(exp)
        if expires is None or sig is None:
            return False
        now = self._clock()
        if expires != NEVER and expires < now:
            return False
        if iat is None:
            # Its age is unknown: under a TTL it passes only if it could have been issued
            # under this TTL (it expires, and no later than a link issued now would).
            if self._ttl and (expires == NEVER or expires > now + self._ttl):
                return False
            expected = self._legacy_signature(key, expires)
        else:
            issued = parse_time(iat)
            if issued is None or (self._ttl and issued + self._ttl < now):
                return False
            expected = self.signature(key, expires, issued)
        return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace"))

    def verify(self, key: str, token: str) -> bool:
        """Whether the query string `token` (as made by `sign`) grants access to `key` now."""
        fields = parse_qs(token.lstrip("?"), keep_blank_values=True)
        exp, sig, iat = fields.get("exp", []), fields.get("sig", []), fields.get("iat", [])
        if len(exp) != 1 or len(sig) != 1 or len(iat) > 1:
            return False
        return self.check(key, exp=exp[0], sig=sig[0], iat=iat[0] if iat else None)


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
